// IP addresses and CIDR blocks, family-aware, with no sockets involved.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::rules {

struct IpAddr {
  bool v6 = false;
  // IPv4 uses bytes[0..3] (network order); IPv6 uses all 16.
  std::array<uint8_t, 16> bytes{};

  // Strict textual forms only: dotted quad "1.2.3.4" or RFC 4291 IPv6 text
  // (no brackets, no zone id). Lenient IPv4 spellings are canonicalize_host's job.
  static std::optional<IpAddr> parse(std::string_view text);
  // The spellings inet_aton() and browsers accept: 1 to 4 parts, each decimal,
  // octal (leading 0) or hex (0x); the last part fills the remaining bytes
  // ("127.1", "2130706433", "0x7f.1", "017700000001"). Used to canonicalise
  // hosts that some resolver would read as an address.
  static std::optional<IpAddr> parse_lenient_v4(std::string_view text);
  static IpAddr v4(uint32_t host_order);
  // Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as ::).
  std::string to_string() const;
  int bits() const { return v6 ? 128 : 32; }
  bool operator==(const IpAddr&) const = default;
};

struct Cidr {
  IpAddr base;  // host bits zeroed
  int prefix = 0;

  // "10.0.0.0/8", "2001:db8::/32"; a bare address means a /32 or /128.
  // Host bits set below the prefix are an error ("10.0.0.1/8").
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddr& a) const;
  std::string to_string() const;
  bool operator==(const Cidr&) const = default;
};

}  // namespace sluice::rules
