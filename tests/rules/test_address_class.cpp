// The resolved-address check: one row per range edge and per IPv4-in-IPv6 form.
#include <doctest/doctest.h>

#include <string>

#include "rules/address_class.hpp"

using namespace sluice::rules;

namespace {
IpAddr ip(const char* s) {
  auto a = IpAddr::parse(s);
  REQUIRE(a.has_value());
  return *a;
}
}  // namespace

TEST_CASE("address classes: table") {
  struct Row {
    const char* addr;
    AddressClass cls;
  };
  const Row rows[] = {
      {"0.0.0.0", AddressClass::Unspecified},
      {"0.255.255.255", AddressClass::Unspecified},
      {"1.0.0.0", AddressClass::Global},
      {"126.255.255.255", AddressClass::Global},
      {"127.0.0.0", AddressClass::Loopback},
      {"127.0.0.1", AddressClass::Loopback},
      {"127.255.255.255", AddressClass::Loopback},
      {"128.0.0.0", AddressClass::Global},
      {"9.255.255.255", AddressClass::Global},
      {"10.0.0.0", AddressClass::Private},
      {"10.255.255.255", AddressClass::Private},
      {"11.0.0.0", AddressClass::Global},
      {"100.63.255.255", AddressClass::Global},
      {"100.64.0.0", AddressClass::Cgnat},
      {"100.127.255.255", AddressClass::Cgnat},
      {"100.128.0.0", AddressClass::Global},
      {"100.100.100.200", AddressClass::Metadata},
      {"168.63.129.16", AddressClass::Metadata},
      {"168.63.129.17", AddressClass::Global},
      {"192.0.0.192", AddressClass::Metadata},
      {"169.253.255.255", AddressClass::Global},
      {"169.254.0.0", AddressClass::LinkLocal},
      {"169.254.169.254", AddressClass::LinkLocal},
      {"169.254.255.255", AddressClass::LinkLocal},
      {"169.255.0.0", AddressClass::Global},
      {"172.15.255.255", AddressClass::Global},
      {"172.16.0.0", AddressClass::Private},
      {"172.31.255.255", AddressClass::Private},
      {"172.32.0.0", AddressClass::Global},
      {"192.167.255.255", AddressClass::Global},
      {"192.168.0.0", AddressClass::Private},
      {"192.168.255.255", AddressClass::Private},
      {"192.169.0.0", AddressClass::Global},
      {"223.255.255.255", AddressClass::Global},
      {"224.0.0.0", AddressClass::Multicast},
      {"239.255.255.255", AddressClass::Multicast},
      {"240.0.0.0", AddressClass::Reserved},
      {"255.255.255.254", AddressClass::Reserved},
      {"255.255.255.255", AddressClass::Broadcast},
      {"8.8.8.8", AddressClass::Global},
      {"::", AddressClass::Unspecified},
      {"::1", AddressClass::Loopback},
      {"::2", AddressClass::Unspecified},  // deprecated v4-compatible form of 0.0.0.2
      {"fe7f:ffff::", AddressClass::Global},
      {"fe80::", AddressClass::LinkLocal},
      {"febf:ffff::1", AddressClass::LinkLocal},
      {"fec0::1", AddressClass::Reserved},
      {"fbff::1", AddressClass::Global},
      {"fc00::", AddressClass::Private},
      {"fdff:ffff::1", AddressClass::Private},
      {"fd00:ec2::254", AddressClass::Metadata},
      {"ff02::1", AddressClass::Multicast},
      {"2001:db8::1", AddressClass::Global},
      {"2606:4700::1111", AddressClass::Global},
      // IPv4 carried in IPv6 is judged by the IPv4 it carries.
      {"::ffff:127.0.0.1", AddressClass::Loopback},
      {"::ffff:7f00:1", AddressClass::Loopback},
      {"::ffff:169.254.169.254", AddressClass::LinkLocal},
      {"::ffff:8.8.8.8", AddressClass::Global},
      {"::127.0.0.1", AddressClass::Loopback},  // v4-compatible
      {"::10.1.2.3", AddressClass::Private},
      {"64:ff9b::7f00:1", AddressClass::Loopback},  // NAT64
      {"64:ff9b::a9fe:a9fe", AddressClass::LinkLocal},
      {"64:ff9b:1::a00:1", AddressClass::Private},  // local-use NAT64
      {"2002:7f00:1::", AddressClass::Loopback},    // 6to4
      {"2002:a9fe:a9fe::1", AddressClass::LinkLocal},
      {"2002:808:808::1", AddressClass::Global},
      {"2001:0:4136:e378:8000:63bf:80ff:fffe", AddressClass::Loopback},  // Teredo client 127.0.0.1
      {"2001:0:4136:e378:8000:63bf:f5ff:fff7", AddressClass::Private},   // Teredo client 10.0.0.8
  };
  for (const auto& row : rows) {
    INFO(std::string(row.addr));
    CHECK(classify(ip(row.addr)) == row.cls);
  }
}

TEST_CASE("embedded IPv4") {
  CHECK(embedded_ipv4(ip("::ffff:1.2.3.4")) == ip("1.2.3.4"));
  CHECK(embedded_ipv4(ip("64:ff9b::102:304")) == ip("1.2.3.4"));
  CHECK(embedded_ipv4(ip("2002:102:304::")) == ip("1.2.3.4"));
  CHECK(embedded_ipv4(ip("2001:0:4136:e378:8000:63bf:fefd:fcfb")) == ip("1.2.3.4"));
  CHECK_FALSE(embedded_ipv4(ip("1.2.3.4")).has_value());
  CHECK_FALSE(embedded_ipv4(ip("::1")).has_value());
  CHECK_FALSE(embedded_ipv4(ip("2606:4700::1111")).has_value());
}

TEST_CASE("refuse_address: configured ranges, this host, private opt-in") {
  std::vector<Cidr> deny = {*Cidr::parse("203.0.113.0/24")};
  std::vector<IpAddr> self = {ip("198.51.100.7")};
  CHECK(refuse_address(ip("8.8.8.8"), false, deny, self) == std::nullopt);
  CHECK(refuse_address(ip("203.0.113.9"), false, deny, self) == AddressClass::Configured);
  CHECK(refuse_address(ip("::ffff:203.0.113.9"), false, deny, self) == AddressClass::Configured);
  CHECK(refuse_address(ip("198.51.100.7"), false, deny, self) == AddressClass::Self);
  CHECK(refuse_address(ip("::ffff:198.51.100.7"), false, deny, self) == AddressClass::Self);
  CHECK(refuse_address(ip("10.1.2.3"), false, deny, self) == AddressClass::Private);
  CHECK(refuse_address(ip("10.1.2.3"), true, deny, self) == std::nullopt);
  CHECK(refuse_address(ip("fd12::1"), true, deny, self) == std::nullopt);
  CHECK(refuse_address(ip("127.0.0.1"), true, deny, self) == AddressClass::Loopback);  // never opt-in
  CHECK(refuse_address(ip("169.254.169.254"), true, deny, self) == AddressClass::LinkLocal);
  CHECK(refuse_address(ip("100.64.1.1"), true, deny, self) == AddressClass::Cgnat);
}
