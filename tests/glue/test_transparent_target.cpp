// Transparent mode: the CONNECT target the bridge sends for a redirected connection's
// original destination, and the jail's resolv.conf.
#include <doctest/doctest.h>

#include "sandbox-glue/transparent_target.hpp"

using namespace sluice::glue;
using sluice::rules::FakeIpMap;
using sluice::rules::IpAddr;
using sluice::rules::TransparentConfig;

TEST_CASE("a fake address becomes the name it was given to, with the original port") {
  TransparentConfig cfg;
  FakeIpMap map(cfg);
  auto a = map.assign("example.com");
  REQUIRE(a);
  CHECK(transparent_connect_target(a->v4, 443, map, cfg) == "example.com:443");
  CHECK(transparent_connect_target(a->v6, 22, map, cfg) == "example.com:22");
}

TEST_CASE("a real address stays an IP literal, IPv6 in brackets") {
  TransparentConfig cfg;
  FakeIpMap map(cfg);
  CHECK(transparent_connect_target(*IpAddr::parse("127.0.0.1"), 7, map, cfg) == "127.0.0.1:7");
  CHECK(transparent_connect_target(*IpAddr::parse("2001:db8::1"), 8080, map, cfg) == "[2001:db8::1]:8080");
  // Just outside 198.18.0.0/15: real.
  CHECK(transparent_connect_target(*IpAddr::parse("198.20.0.1"), 80, map, cfg) == "198.20.0.1:80");
}

TEST_CASE("a fake address no name holds is refused, never passed on as a literal") {
  TransparentConfig cfg;
  FakeIpMap map(cfg);
  map.assign("a.example");
  CHECK_FALSE(transparent_connect_target(*IpAddr::parse("198.19.255.254"), 80, map, cfg));
  CHECK_FALSE(transparent_connect_target(*IpAddr::parse("fd73:6c75:6963:6500::ffff"), 80, map, cfg));
}

TEST_CASE("the bridge's form: configured ranges and its own copy of the names") {
  // A jail whose config moved the ranges: the default 198.18/15 is a real address there.
  auto v4 = *sluice::rules::Cidr::parse("10.200.0.0/16");
  auto v6 = *sluice::rules::Cidr::parse("fd00:1::/64");
  auto lookup = [](const IpAddr& a) -> std::optional<std::string> {
    if (a.to_string() == "10.200.0.1") return "db.internal";
    return std::nullopt;
  };
  CHECK(transparent_connect_target(*IpAddr::parse("10.200.0.1"), 5432, v4, v6, lookup) == "db.internal:5432");
  CHECK_FALSE(transparent_connect_target(*IpAddr::parse("10.200.0.2"), 5432, v4, v6, lookup));
  CHECK_FALSE(transparent_connect_target(*IpAddr::parse("fd00:1::9"), 443, v4, v6, lookup));
  CHECK(transparent_connect_target(*IpAddr::parse("198.18.0.1"), 443, v4, v6, lookup) == "198.18.0.1:443");
}

TEST_CASE("resolv.conf names only the stub on the jail's loopback") {
  std::string r = transparent_resolv_conf();
  CHECK(r.find("nameserver 127.0.0.1\n") != std::string::npos);
  size_t count = 0;
  for (size_t at = r.find("nameserver"); at != std::string::npos; at = r.find("nameserver", at + 1)) ++count;
  CHECK(count == 1);
}
