#include "rules/ip.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace sluice::rules {

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  std::string s(text);
  IpAddr a;
  if (s.find(':') == std::string::npos) {
    // inet_pton(AF_INET) accepts exactly four decimal parts; refuse leading zeros,
    // which other parsers read as octal.
    size_t start = 0;
    for (int part = 0; part < 4; ++part) {
      size_t end = s.find('.', start);
      if (end == std::string::npos) end = s.size();
      if (end - start > 1 && s[start] == '0') return std::nullopt;
      start = end + 1;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) != 1) return std::nullopt;
    std::memcpy(a.bytes.data(), &v4, 4);
    return a;
  }
  if (s.find('%') != std::string::npos) return std::nullopt;  // zone ids are not destinations
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
  a.v6 = true;
  std::memcpy(a.bytes.data(), &v6, 16);
  return a;
}

IpAddr IpAddr::v4(uint32_t host_order) {
  IpAddr a;
  a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[3] = static_cast<uint8_t>(host_order);
  return a;
}

std::string IpAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);  // RFC 5952 form in glibc
  return buf;
}

namespace {

bool prefix_equal(const IpAddr& a, const IpAddr& b, int prefix) {
  int full = prefix / 8;
  if (std::memcmp(a.bytes.data(), b.bytes.data(), static_cast<size_t>(full)) != 0) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (b.bytes[full] & mask);
}

IpAddr masked(IpAddr a, int prefix) {
  for (int i = 0; i < 16; ++i) {
    int bit = i * 8;
    if (bit >= prefix) a.bytes[i] = 0;
    else if (bit + 8 > prefix) a.bytes[i] &= static_cast<uint8_t>(0xff << (8 - (prefix - bit)));
  }
  return a;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  int prefix = addr->bits();
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    prefix = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + (c - '0');
    }
    if (p.size() > 1 && p[0] == '0') return std::nullopt;
    if (prefix > addr->bits()) return std::nullopt;
  }
  if (!(masked(*addr, prefix) == *addr)) return std::nullopt;  // host bits set: almost surely a typo
  return Cidr{*addr, prefix};
}

bool Cidr::contains(const IpAddr& a) const { return a.v6 == base.v6 && prefix_equal(a, base, prefix); }

std::string Cidr::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

}  // namespace sluice::rules
