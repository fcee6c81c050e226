#include "rules/host.hpp"

#include <idn2.h>

#include <cstdio>

#include "rules/text_detail.hpp"

namespace sluice::rules {

namespace detail {

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 80)) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 80) out += "...";
  return out;
}

std::optional<uint32_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return value;
}

// An internationalised name becomes its punycode (IDNA2008 with UTS #46
// mapping, as browsers do), so "bücher.de" and "xn--bcher-kva.de" are one name.
Result<std::string> to_punycode(std::string_view s) {
  std::string in(s);
  char* out = nullptr;
  int rc = idn2_to_ascii_8z(in.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  if (rc != IDN2_OK) return Err{std::string("invalid internationalised name: ") + idn2_strerror(rc)};
  std::string ascii(out);
  idn2_free(out);
  return ascii;
}

Result<std::string> canonical_name(std::string_view s) {
  std::string converted;
  for (unsigned char c : s) {
    if (c < 0x80) continue;
    auto ascii = to_punycode(s);
    if (!ascii) return Err{ascii.error()};
    converted = std::move(ascii.value());
    s = converted;
    break;
  }
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty()) return Err{"empty"};
  if (s.size() > 253) return Err{"longer than 253 bytes"};
  std::string name;
  name.reserve(s.size());
  size_t label_len = 0;
  for (unsigned char c : s) {
    if (c == '.') {
      if (label_len == 0) return Err{"empty label"};
      label_len = 0;
      name += '.';
      continue;
    }
    if (++label_len > 63) return Err{"label longer than 63 bytes"};
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) {
      if (c == ' ') return Err{"space not allowed"};
      if (c < 0x20 || c == 0x7f) return Err{"control character not allowed"};
      if (c >= 0x80) return Err{"non-ASCII byte left after IDNA conversion"};
      return Err{std::string("character '") + static_cast<char>(c) + "' not allowed"};
    }
    name += static_cast<char>(c);
  }
  if (label_len == 0) return Err{"empty label"};  // "a.." ends in an empty label
  return name;
}

bool numeric_name(std::string_view name) {
  size_t dot = name.rfind('.');
  std::string_view last = dot == std::string_view::npos ? name : name.substr(dot + 1);
  if (last.size() > 1 && last[0] == '0' && last[1] == 'x') return true;
  if (last.empty()) return false;
  for (char c : last)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace detail

namespace {

Err bad(std::string_view raw, const std::string& why) {
  return Err{"bad host \"" + detail::printable(raw) + "\": " + why};
}

CanonicalHost ip_host(const IpAddr& ip) { return CanonicalHost{HostKind::Ip, ip.to_string(), ip}; }

}  // namespace

Result<CanonicalHost> canonicalize_host(std::string_view raw) {
  std::string_view s = raw;
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
    s = s.substr(1, s.size() - 2);
    auto ip = IpAddr::parse(s);
    if (ip && ip->v6) return ip_host(*ip);
    if (ip) return bad(raw, "brackets are for IPv6 addresses");
    return bad(raw, "not a valid IPv6 address");
  }
  if (s.empty()) return bad(raw, "empty");
  if (auto ip = IpAddr::parse(s)) return ip_host(*ip);
  if (s.find(':') != std::string_view::npos) return bad(raw, "not a valid IPv6 address");
  if (s.find('[') != std::string_view::npos || s.find(']') != std::string_view::npos)
    return bad(raw, "unbalanced brackets");
  // "1.2.3.4." is the dotted quad, as DNS and browsers read it.
  if (s.back() == '.') {
    if (auto ip = IpAddr::parse(s.substr(0, s.size() - 1))) return ip_host(*ip);
  }
  auto name = detail::canonical_name(s);
  if (!name) return bad(raw, name.error());
  // 127.1, 2130706433, 0x7f.1 and friends are addresses to inet_aton() and browsers.
  // Matching them as names would let them slip past IP rules: they become the address
  // they spell, and a numeric-looking name that spells no address is refused.
  if (detail::numeric_name(name.value())) {
    if (auto ip = IpAddr::parse_lenient_v4(name.value())) return ip_host(*ip);
    return bad(raw, "looks like an IP address in a non-standard spelling");
  }
  return CanonicalHost{HostKind::Name, std::move(name.value()), IpAddr{}};
}

Result<Authority> split_authority(std::string_view text, bool bare_ipv6) {
  Authority a;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return Err{"unclosed ["};
    a.host = text.substr(1, close - 1);
    a.bracketed = true;
    std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Err{"junk after ]"};
      a.has_port = true;
      a.port = after.substr(1);
    }
    if (a.host.empty()) return Err{"empty host"};
    return a;  // what the brackets may hold (an address, a CIDR) is the caller's rule
  }
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    a.host = text;
  } else if (text.find(':', colon + 1) == std::string_view::npos) {
    a.host = text.substr(0, colon);
    a.has_port = true;
    a.port = text.substr(colon + 1);
  } else {
    if (!bare_ipv6) return Err{"IPv6 address needs brackets"};
    a.host = text;  // a bare IPv6 address (or CIDR): never a port
  }
  if (a.host.empty()) return Err{"empty host"};
  return a;
}

Result<HostPort> split_host_port(std::string_view authority) {
  auto fail = [&](const std::string& why) { return Err{why + " in \"" + detail::printable(authority) + "\""}; };
  if (authority.empty()) return fail("missing :port");
  auto a = split_authority(authority, false);
  if (!a) return fail(a.error());
  if (!a->has_port) return fail("missing :port");
  if (a->bracketed) {
    auto ip = IpAddr::parse(a->host);
    if (!ip || !ip->v6) return fail("brackets hold an IPv6 address only");
  }
  auto value = detail::parse_port(a->port);
  if (!value || *value == 0) return fail("bad port (1..65535)");
  return HostPort{std::string(a->host), static_cast<uint16_t>(*value)};
}

}  // namespace sluice::rules
