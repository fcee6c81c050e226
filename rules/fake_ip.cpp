#include "rules/fake_ip.hpp"

#include <algorithm>

namespace sluice::rules {

namespace {

// The last 8 bytes (IPv6) or 4 bytes (IPv4) as a number: the host part of every
// range accepted here lies inside them.
uint64_t low_bits(const IpAddr& a) {
  uint64_t v = 0;
  const size_t from = a.v6 ? 8 : 0, to = a.v6 ? 16 : 4;
  for (size_t i = from; i < to; ++i) v = (v << 8) | a.bytes[i];
  return v;
}

IpAddr plus(const IpAddr& base, uint64_t n) {
  IpAddr out = base;
  uint64_t v = low_bits(base) + n;
  const size_t from = base.v6 ? 8 : 0, to = base.v6 ? 16 : 4;
  for (size_t i = to; i-- > from;) {
    out.bytes[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  return out;
}

// Addresses a range can hand out: all but the network address (and, for IPv4, the
// broadcast address), so no answer is an address some stack treats specially.
uint64_t usable(const Cidr& c) {
  const int host_bits = c.base.bits() - c.prefix;
  const uint64_t all = host_bits >= 63 ? (uint64_t{1} << 62) : (uint64_t{1} << host_bits);
  return c.base.v6 ? all - 1 : all - 2;
}

}  // namespace

std::string fake_range_problem(const Cidr& c) {
  if (!c.base.v6 && (c.prefix < 8 || c.prefix > 30)) return "an IPv4 fake range needs a prefix from /8 to /30";
  if (c.base.v6 && (c.prefix < 64 || c.prefix > 120)) return "an IPv6 fake range needs a prefix from /64 to /120";
  const auto loopback = c.base.v6 ? *Cidr::parse("::1/128") : *Cidr::parse("127.0.0.0/8");
  if (c.contains(loopback.base) || loopback.contains(c.base)) return "a fake range must not overlap loopback";
  return {};
}

FakeIpMap::FakeIpMap(const TransparentConfig& cfg) : v4_(cfg.fake_ipv4), v6_(cfg.fake_ipv6) {
  capacity_ = static_cast<size_t>(std::min<uint64_t>({cfg.max_names, usable(v4_), usable(v6_)}));
}

FakeIpMap::Addresses FakeIpMap::addresses_at(size_t index) const {
  return {plus(v4_.base, index + 1), plus(v6_.base, index + 1)};
}

std::optional<FakeIpMap::Addresses> FakeIpMap::assign(std::string_view name) {
  if (auto known = find(name)) return known;
  if (full()) return std::nullopt;
  const size_t index = names_.size();
  names_.emplace_back(name);
  index_.emplace(names_.back(), index);
  return addresses_at(index);
}

std::optional<FakeIpMap::Addresses> FakeIpMap::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) return std::nullopt;
  return addresses_at(it->second);
}

std::optional<size_t> FakeIpMap::index_of(const IpAddr& addr) const {
  const Cidr& range = addr.v6 ? v6_ : v4_;
  if (!range.contains(addr)) return std::nullopt;
  const uint64_t offset = low_bits(addr) - low_bits(range.base);
  if (offset == 0 || offset > names_.size()) return std::nullopt;
  return static_cast<size_t>(offset - 1);
}

std::optional<std::string> FakeIpMap::name_of(const IpAddr& addr) const {
  auto i = index_of(addr);
  if (!i) return std::nullopt;
  return names_[*i];
}

}  // namespace sluice::rules
