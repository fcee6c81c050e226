// The resolved-address check as a pure function: one row per way an address is kept or dropped.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rules/config.hpp"
#include "rules/resolved_check.hpp"

using namespace sluice::rules;

namespace {
IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }
}  // namespace

TEST_CASE("resolved addresses: deny list, allow list, classes, order") {
  auto policy = make_policy("p", Action::Deny, {"127.0.0.2", "10.9.0.0/16", "name.test"}, {"198.51.100.7"}).value();
  ResolverConfig rc;
  rc.deny_cidrs = {Cidr::parse("203.0.113.0/24").value()};
  const std::vector<IpAddr> self = {ip("192.0.2.10")};
  struct Row {
    std::vector<const char*> addrs;
    std::vector<const char*> dialable;
    const char* refused_class;
  };
  const Row rows[] = {
      {{"93.184.216.34"}, {"93.184.216.34"}, ""},
      {{"127.0.0.1"}, {}, "loopback"},
      {{"127.0.0.2"}, {"127.0.0.2"}, ""},  // listed in the allow list: an explicit choice
      {{"10.9.1.1"}, {"10.9.1.1"}, ""},
      {{"10.8.1.1"}, {}, "private"},
      {{"198.51.100.7", "93.184.216.34"}, {"93.184.216.34"}, "deny-listed"},
      {{"203.0.113.5"}, {}, "denied range"},
      {{"192.0.2.10"}, {}, "this host"},
      {{"169.254.169.254", "127.0.0.1"}, {}, "link-local"},  // the first refusal is reported
      {{"::ffff:127.0.0.1"}, {}, "loopback"},
      {{"93.184.216.34", "::1", "2606:4700::1"}, {"93.184.216.34", "2606:4700::1"}, "loopback"},
  };
  for (const auto& r : rows) {
    std::vector<IpAddr> addrs;
    for (const char* a : r.addrs) addrs.push_back(ip(a));
    CAPTURE(r.addrs.front());
    auto got = check_resolved(*policy, rc, self, addrs, 443);
    std::vector<std::string> want, have;
    for (const char* a : r.dialable) want.push_back(a);
    for (const auto& a : got.dialable) have.push_back(a.to_string());
    CHECK(have == want);
    CHECK(got.refused_class == r.refused_class);
  }
  rc.check_addresses = false;
  auto off = check_resolved(*policy, rc, self, {ip("127.0.0.1"), ip("198.51.100.7")}, 443);
  REQUIRE(off.dialable.size() == 1);  // the deny list still applies with the check off
  CHECK(off.dialable[0].to_string() == "127.0.0.1");
}
