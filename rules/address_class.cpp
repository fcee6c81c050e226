#include "rules/address_class.hpp"

#include <algorithm>

namespace sluice::rules {

const char* to_string(AddressClass c) {
  switch (c) {
    case AddressClass::Global: return "global";
    case AddressClass::Loopback: return "loopback";
    case AddressClass::Unspecified: return "unspecified";
    case AddressClass::LinkLocal: return "link-local";
    case AddressClass::Multicast: return "multicast";
    case AddressClass::Broadcast: return "broadcast";
    case AddressClass::Metadata: return "cloud metadata";
    case AddressClass::Cgnat: return "carrier-grade NAT";
    case AddressClass::Private: return "private";
    case AddressClass::Reserved: return "reserved";
    case AddressClass::Self: return "this host";
    case AddressClass::Configured: return "denied range";
  }
  return "?";
}

namespace {

struct Range {
  Cidr cidr;
  AddressClass cls;
};

std::vector<Range> ranges(std::initializer_list<std::pair<const char*, AddressClass>> list) {
  std::vector<Range> out;
  for (const auto& [text, cls] : list) out.push_back({*Cidr::parse(text), cls});
  return out;
}

// First match wins: specific endpoints before the blocks that contain them.
const std::vector<Range>& v4_ranges() {
  static const std::vector<Range> r = ranges({
      {"0.0.0.0/8", AddressClass::Unspecified},
      {"127.0.0.0/8", AddressClass::Loopback},
      {"169.254.0.0/16", AddressClass::LinkLocal},
      {"224.0.0.0/4", AddressClass::Multicast},
      {"255.255.255.255/32", AddressClass::Broadcast},
      {"240.0.0.0/4", AddressClass::Reserved},
      {"100.100.100.200/32", AddressClass::Metadata},  // Alibaba Cloud
      {"168.63.129.16/32", AddressClass::Metadata},    // Azure wireserver
      {"192.0.0.192/32", AddressClass::Metadata},      // Oracle Cloud
      {"100.64.0.0/10", AddressClass::Cgnat},
      {"10.0.0.0/8", AddressClass::Private},
      {"172.16.0.0/12", AddressClass::Private},
      {"192.168.0.0/16", AddressClass::Private},
  });
  return r;
}

const std::vector<Range>& v6_ranges() {
  static const std::vector<Range> r = ranges({
      {"::/128", AddressClass::Unspecified},
      {"::1/128", AddressClass::Loopback},
      {"fe80::/10", AddressClass::LinkLocal},
      {"ff00::/8", AddressClass::Multicast},
      {"fd00:ec2::254/128", AddressClass::Metadata},  // AWS over IPv6
      {"fc00::/7", AddressClass::Private},
      {"fec0::/10", AddressClass::Reserved},  // deprecated site-local
  });
  return r;
}

AddressClass lookup(const std::vector<Range>& table, const IpAddr& a) {
  for (const auto& r : table)
    if (r.cidr.contains(a)) return r.cls;
  return AddressClass::Global;
}

bool in(const IpAddr& a, const Cidr& c) { return c.contains(a); }

}  // namespace

std::optional<IpAddr> embedded_ipv4(const IpAddr& a) {
  if (!a.v6) return std::nullopt;
  static const Cidr mapped = *Cidr::parse("::ffff:0:0/96"), nat64 = *Cidr::parse("64:ff9b::/96"),
                    nat64_local = *Cidr::parse("64:ff9b:1::/48"), compat = *Cidr::parse("::/96"),
                    low = *Cidr::parse("::/127"), six_to_four = *Cidr::parse("2002::/16"),
                    teredo = *Cidr::parse("2001::/32");
  auto from = [&](size_t offset, bool flip) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(a.bytes[offset + i] ^ (flip ? 0xff : 0));
    return IpAddr::v4(v);
  };
  if (in(a, mapped) || in(a, nat64) || in(a, nat64_local)) return from(12, false);
  if (in(a, compat) && !in(a, low)) return from(12, false);  // v4-compatible (not :: or ::1)
  if (in(a, six_to_four)) return from(2, false);
  if (in(a, teredo)) return from(12, true);  // Teredo: the client's address, inverted
  return std::nullopt;
}

AddressClass classify(const IpAddr& a) {
  if (!a.v6) return lookup(v4_ranges(), a);
  AddressClass c = lookup(v6_ranges(), a);
  if (c != AddressClass::Global) return c;
  if (auto v4 = embedded_ipv4(a)) return lookup(v4_ranges(), *v4);
  return c;
}

std::optional<AddressClass> refuse_address(const IpAddr& a, bool allow_private, const std::vector<Cidr>& deny,
                                           const std::vector<IpAddr>& self) {
  auto v4 = embedded_ipv4(a);
  for (const auto& c : deny)
    if (c.contains(a) || (v4 && c.contains(*v4))) return AddressClass::Configured;
  // The range's own class reads best ("loopback"); "this host" covers the rest.
  AddressClass c = classify(a);
  if (c != AddressClass::Global && !(c == AddressClass::Private && allow_private)) return c;
  for (const auto& s : self)
    if (s == a || (v4 && s == *v4)) return AddressClass::Self;
  return std::nullopt;
}

}  // namespace sluice::rules
