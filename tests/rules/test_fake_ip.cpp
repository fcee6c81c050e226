// Transparent mode's fake-address map: addresses handed out in order from both
// ranges, stable per name, found again by address, bounded with no reuse when full.
#include <doctest/doctest.h>

#include <string>

#include "rules/fake_ip.hpp"

using namespace sluice::rules;

namespace {

IpAddr ip(const char* text) { return *IpAddr::parse(text); }

TransparentConfig small(size_t max_names) {
  TransparentConfig c;
  c.max_names = max_names;
  return c;
}

}  // namespace

TEST_CASE("fake ip: names get the next pair of addresses, the same ones every time") {
  FakeIpMap map(TransparentConfig{});
  auto a = map.assign("a.test");
  auto b = map.assign("b.test");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->v4 == ip("198.18.0.1"));
  CHECK(a->v6 == ip("fd73:6c75:6963:6500::1"));
  CHECK(b->v4 == ip("198.18.0.2"));
  CHECK(b->v6 == ip("fd73:6c75:6963:6500::2"));
  auto again = map.assign("a.test");
  REQUIRE(again);
  CHECK(again->v4 == a->v4);
  CHECK(again->v6 == a->v6);
  CHECK(map.size() == 2);
  CHECK(map.find("b.test")->v4 == b->v4);
  CHECK_FALSE(map.find("c.test"));
  CHECK(map.size() == 2);  // find never assigns
}

TEST_CASE("fake ip: lookup by address, both families, only addresses handed out") {
  FakeIpMap map(TransparentConfig{});
  map.assign("a.test");
  map.assign("b.test");
  struct Row {
    const char* addr;
    const char* name;  // nullptr: none
  };
  const Row rows[] = {
      {"198.18.0.1", "a.test"},
      {"198.18.0.2", "b.test"},
      {"fd73:6c75:6963:6500::1", "a.test"},
      {"fd73:6c75:6963:6500::2", "b.test"},
      {"198.18.0.0", nullptr},  // the network address is never handed out
      {"198.18.0.3", nullptr},  // not yet handed out
      {"198.19.255.255", nullptr},
      {"198.20.0.1", nullptr},  // outside the range
      {"198.17.255.255", nullptr},
      {"10.0.0.1", nullptr},
      {"fd73:6c75:6963:6500::", nullptr},
      {"fd73:6c75:6963:6500::3", nullptr},
      {"fd73:6c75:6963:6501::1", nullptr},  // next /64
      {"::ffff:198.18.0.1", nullptr},       // v4-mapped is not the IPv4 address
  };
  for (const auto& r : rows) {
    CAPTURE(r.addr);
    auto got = map.name_of(ip(r.addr));
    if (r.name) {
      REQUIRE(got);
      CHECK(*got == r.name);
    } else {
      CHECK_FALSE(got);
    }
  }
}

TEST_CASE("fake ip: when full, new names are refused and live mappings kept") {
  FakeIpMap map(small(3));
  CHECK(map.capacity() == 3);
  REQUIRE(map.assign("a"));
  REQUIRE(map.assign("b"));
  REQUIRE(map.assign("c"));
  CHECK(map.full());
  CHECK_FALSE(map.assign("d"));
  CHECK_FALSE(map.name_of(ip("198.18.0.4")));
  // Known names still answer, with their own addresses.
  auto a = map.assign("a");
  REQUIRE(a);
  CHECK(a->v4 == ip("198.18.0.1"));
  CHECK(*map.name_of(ip("198.18.0.3")) == "c");
  CHECK(map.size() == 3);
}

TEST_CASE("fake ip: the smaller range bounds the capacity") {
  TransparentConfig c;
  c.fake_ipv4 = *Cidr::parse("10.9.9.0/30");  // .1 and .2 usable
  FakeIpMap v4_small(c);
  CHECK(v4_small.capacity() == 2);
  REQUIRE(v4_small.assign("x"));
  auto y = v4_small.assign("y");
  REQUIRE(y);
  CHECK(y->v4 == ip("10.9.9.2"));
  CHECK_FALSE(v4_small.assign("z"));  // never the broadcast address 10.9.9.3

  TransparentConfig d;
  d.fake_ipv6 = *Cidr::parse("fd00::/120");  // ::1 .. ::ff
  CHECK(FakeIpMap(d).capacity() == 255);
}

TEST_CASE("fake ip: range checks") {
  struct Row {
    const char* cidr;
    bool ok;
  };
  const Row rows[] = {
      {"198.18.0.0/15", true}, {"10.0.0.0/8", true},   {"10.0.0.0/30", true},   {"10.0.0.0/31", false},
      {"0.0.0.0/7", false},    {"127.0.0.0/8", false}, {"127.5.0.0/16", false}, {"fd00::/64", true},
      {"fd00::/120", true},    {"fd00::/121", false},  {"fd00::/63", false},    {"::/64", false},
  };
  for (const auto& r : rows) {
    CAPTURE(r.cidr);
    CHECK(fake_range_problem(*Cidr::parse(r.cidr)).empty() == r.ok);
  }
}
