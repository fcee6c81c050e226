// IP text in and out, CIDR blocks: one table per concern.
#include <doctest/doctest.h>

#include "rules/ip.hpp"

using namespace sluice::rules;

TEST_CASE("IpAddr::parse and to_string: table") {
  struct Row {
    const char* in;
    const char* canonical;  // nullptr: refused
  };
  const Row rows[] = {
      // IPv4: strict dotted quad only.
      {"1.2.3.4", "1.2.3.4"},
      {"0.0.0.0", "0.0.0.0"},
      {"255.255.255.255", "255.255.255.255"},
      {"10.0.0.10", "10.0.0.10"},
      {"256.1.1.1", nullptr},
      {"1.2.3.256", nullptr},
      {"01.2.3.4", nullptr},  // octal to some parsers
      {"1.2.3.04", nullptr},
      {"00.0.0.0", nullptr},
      {"1.2.3", nullptr},
      {"1.2.3.4.5", nullptr},
      {"1.2.3.4.", nullptr},
      {".1.2.3.4", nullptr},
      {"1..2.3", nullptr},
      {"1234.1.1.1", nullptr},
      {"127.1", nullptr},
      {"2130706433", nullptr},
      {"0x7f.0.0.1", nullptr},
      {"1.2.3.-4", nullptr},
      {"+1.2.3.4", nullptr},
      {" 1.2.3.4", nullptr},
      {"1.2.3.4 ", nullptr},
      {"", nullptr},
      // IPv6: RFC 4291 in, RFC 5952 out.
      {"::", "::"},
      {"::1", "::1"},
      {"1::", "1::"},
      {"2001:DB8::1", "2001:db8::1"},
      {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
      {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},     // first run on a tie
      {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},                 // longest run wins
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},  // one zero group is not compressed
      {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
      {"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"},
      {"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"},
      {"fe80::abcd:EF01", "fe80::abcd:ef01"},
      {"0:0:0:0:0:0:0:0", "::"},
      {"::ffff:1.2.3.4", "::ffff:1.2.3.4"},
      {"::FFFF:0102:0304", "::ffff:1.2.3.4"},  // IPv4-mapped always shown dotted
      {"::ffff:127.0.0.1", "::ffff:127.0.0.1"},
      {"::1.2.3.4", "::102:304"},  // deprecated IPv4-compatible: plain hex
      {"64:ff9b::1.2.3.4", "64:ff9b::102:304"},
      {"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"},
      {"fe80::1%eth0", nullptr},  // zone ids are not destinations
      {"[::1]", nullptr},
      {":::", nullptr},
      {":1::", nullptr},
      {"1:", nullptr},
      {":1", nullptr},
      {"1:::2", nullptr},
      {"1::2::3", nullptr},
      {"1:2:3:4:5:6:7", nullptr},
      {"1:2:3:4:5:6:7:8:9", nullptr},
      {"1::2:3:4:5:6:7:8", nullptr},  // "::" must stand for at least one group
      {"12345::", nullptr},
      {"g::", nullptr},
      {"::1.2.3", nullptr},
      {"::1.2.3.04", nullptr},
      {"1.2.3.4::", nullptr},
      {"::1.2.3.4:1", nullptr},
      {"1:2:3:4:5:6:7:1.2.3.4", nullptr},
      {"::ffff:1.2.3.4.5", nullptr},
  };
  for (const auto& row : rows) {
    CAPTURE(row.in);
    auto ip = IpAddr::parse(row.in);
    REQUIRE(ip.has_value() == (row.canonical != nullptr));
    if (!ip) continue;
    CHECK(ip->to_string() == row.canonical);
    // The canonical text reads back as the same address.
    auto again = IpAddr::parse(ip->to_string());
    REQUIRE(again.has_value());
    CHECK(*again == *ip);
  }
}

TEST_CASE("IpAddr::v4 and bits") {
  IpAddr a = IpAddr::v4(0x7f000001);
  CHECK_FALSE(a.v6);
  CHECK(a.to_string() == "127.0.0.1");
  CHECK(a == *IpAddr::parse("127.0.0.1"));
  CHECK(a.bits() == 32);
  CHECK(IpAddr::parse("::1")->bits() == 128);
}

TEST_CASE("Cidr::parse: table") {
  struct Row {
    const char* in;
    const char* canonical;  // nullptr: refused
  };
  const Row rows[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},
      {"10.1.2.0/24", "10.1.2.0/24"},
      {"10.1.2.0/23", "10.1.2.0/23"},
      {"0.0.0.0/0", "0.0.0.0/0"},
      {"1.2.3.4", "1.2.3.4/32"},
      {"1.2.3.4/32", "1.2.3.4/32"},
      {"2001:db8::/32", "2001:db8::/32"},
      {"2001:DB8:0::/48", "2001:db8::/48"},
      {"::/0", "::/0"},
      {"::1", "::1/128"},
      {"10.0.0.1/8", nullptr},  // host bits set
      {"10.1.3.0/23", nullptr},
      {"2001:db8::1/32", nullptr},
      {"10.0.0.0/33", nullptr},
      {"::/129", nullptr},
      {"10.0.0.0/08", nullptr},
      {"10.0.0.0/", nullptr},
      {"10.0.0.0/-1", nullptr},
      {"10.0.0.0/8/8", nullptr},
      {"10.0.0.0/x", nullptr},
      {"/8", nullptr},
      {"example.com/8", nullptr},
      {"", nullptr},
  };
  for (const auto& row : rows) {
    CAPTURE(row.in);
    auto c = Cidr::parse(row.in);
    REQUIRE(c.has_value() == (row.canonical != nullptr));
    if (c) CHECK(c->to_string() == row.canonical);
  }
}

TEST_CASE("Cidr::contains: table") {
  struct Row {
    const char* cidr;
    const char* addr;
    bool in;
  };
  const Row rows[] = {
      {"10.0.0.0/8", "10.0.0.0", true},
      {"10.0.0.0/8", "10.255.255.255", true},
      {"10.0.0.0/8", "11.0.0.0", false},
      {"10.0.0.0/8", "9.255.255.255", false},
      {"10.1.2.0/23", "10.1.3.255", true},
      {"10.1.2.0/23", "10.1.4.0", false},
      {"10.1.2.0/23", "10.1.1.255", false},
      {"1.2.3.4", "1.2.3.4", true},
      {"1.2.3.4", "1.2.3.5", false},
      {"0.0.0.0/0", "1.2.3.4", true},
      {"0.0.0.0/0", "::1", false},  // the family must match
      {"::/0", "1.2.3.4", false},
      {"::/0", "2001:db8::1", true},
      {"2001:db8::/32", "2001:db8:ffff::1", true},
      {"2001:db8::/32", "2001:db9::", false},
      {"::ffff:0:0/96", "::ffff:1.2.3.4", true},
      {"127.0.0.0/8", "::ffff:127.0.0.1", false},  // HostSet applies IPv4 entries to mapped addresses
  };
  for (const auto& row : rows) {
    CAPTURE(row.cidr);
    CAPTURE(row.addr);
    auto c = Cidr::parse(row.cidr);
    auto a = IpAddr::parse(row.addr);
    REQUIRE(c);
    REQUIRE(a);
    CHECK(c->contains(*a) == row.in);
  }
}
