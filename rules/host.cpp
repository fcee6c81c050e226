#include "rules/host.hpp"

#include <cstdio>

namespace sluice::rules {

namespace {

// Shows a hostile byte without echoing it raw into logs or replies.
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

Err bad(std::string_view raw, const std::string& why) { return Err{"bad host \"" + printable(raw) + "\": " + why}; }

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

Result<CanonicalHost> canonicalize_host(std::string_view raw) {
  std::string_view s = raw;
  bool bracketed = s.size() >= 2 && s.front() == '[' && s.back() == ']';
  if (bracketed) s = s.substr(1, s.size() - 2);
  if (s.empty()) return bad(raw, "empty");
  if (auto ip = IpAddr::parse(s)) {
    if (bracketed && !ip->v6) return bad(raw, "brackets are for IPv6 addresses");
    return CanonicalHost{HostKind::Ip, ip->to_string(), *ip};
  }
  if (bracketed || s.find(':') != std::string_view::npos) return bad(raw, "not a valid IPv6 address");
  if (s.back() == '.') s.remove_suffix(1);
  if (s.empty()) return bad(raw, "empty");
  if (s.size() > 253) return bad(raw, "longer than 253 bytes");
  std::string name;
  name.reserve(s.size());
  size_t label_len = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '.') {
      if (label_len == 0) return bad(raw, "empty label");
      label_len = 0;
      name += '.';
      continue;
    }
    if (++label_len > 63) return bad(raw, "label longer than 63 bytes");
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) {
      if (c == ' ') return bad(raw, "space not allowed");
      if (c < 0x20 || c == 0x7f) return bad(raw, "control character not allowed");
      if (c >= 0x80) return bad(raw, "non-ASCII name (use its punycode xn-- form)");
      return bad(raw, std::string("character '") + static_cast<char>(c) + "' not allowed");
    }
    name += static_cast<char>(c);
  }
  // A name whose last label is numeric, or hex like 0x7f, is an IP address in
  // some resolver's eyes (127.1, 2130706433, 0x7f.1): never match it as a name.
  std::string_view last = std::string_view(name).substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  if (all_digits(last) || (last.size() > 1 && last[0] == '0' && last[1] == 'x'))
    return bad(raw, "looks like an IP address in a non-standard spelling");
  return CanonicalHost{HostKind::Name, std::move(name), IpAddr{}};
}

Result<HostPort> split_host_port(std::string_view authority) {
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Err{"unclosed [ in \"" + printable(authority) + "\""};
    host = authority.substr(1, close - 1);
    if (close + 1 >= authority.size() || authority[close + 1] != ':')
      return Err{"missing :port in \"" + printable(authority) + "\""};
    port = authority.substr(close + 2);
  } else {
    size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) return Err{"missing :port in \"" + printable(authority) + "\""};
    host = authority.substr(0, colon);
    if (host.find(':') != std::string_view::npos)
      return Err{"IPv6 address needs brackets: \"" + printable(authority) + "\""};
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Err{"empty host in \"" + printable(authority) + "\""};
  if (!all_digits(port) || port.size() > 5) return Err{"bad port in \"" + printable(authority) + "\""};
  unsigned value = 0;
  for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value == 0 || value > 65535) return Err{"port out of range in \"" + printable(authority) + "\""};
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

}  // namespace sluice::rules
