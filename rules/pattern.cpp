// Pattern grammar:
//   pattern = host [ ":" port ]
//   host    = name | "*." name | ipv4 [ "/" prefix ] | ipv6 [ "/" prefix ]
//           | "[" ipv6 [ "/" prefix ] "]"
// A bare IPv6 address or CIDR has no port; to add one, bracket it: "[2001:db8::/32]:443".
#include "rules/pattern.hpp"

#include "rules/host.hpp"
#include "rules/text_detail.hpp"

namespace sluice::rules {

namespace {

Err bad(std::string_view text, const std::string& why) {
  return Err{"bad pattern \"" + detail::printable(text) + "\": " + why};
}

}  // namespace

Result<HostPattern> parse_pattern(std::string_view text) {
  HostPattern p;
  p.source = std::string(text);
  if (text.empty()) return bad(text, "empty");
  std::string_view host = text;
  std::string_view port;
  bool has_port = false;
  bool bracketed = false;
  if (host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return bad(text, "unclosed [");
    std::string_view after = host.substr(close + 1);
    host = host.substr(1, close - 1);
    bracketed = true;
    if (!after.empty()) {
      if (after.front() != ':') return bad(text, "expected :port after ]");
      has_port = true;
      port = after.substr(1);
    }
  } else if (size_t colon = host.find(':');
             colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
    // One colon: host:port. Several: a bare IPv6 address or CIDR, which takes no port.
    has_port = true;
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (has_port) {
    auto value = detail::parse_port(port);
    if (!value || *value == 0) return bad(text, "port must be a number from 1 to 65535");
    p.port = static_cast<uint16_t>(*value);
  }
  if (host.empty()) return bad(text, "empty host");

  bool is_cidr = host.find('/') != std::string_view::npos;
  auto ip = is_cidr ? std::nullopt : IpAddr::parse(host);
  if (bracketed && (host.find(':') == std::string_view::npos || (ip && !ip->v6)))
    return bad(text, "brackets are for IPv6 addresses");
  if (is_cidr || ip) {
    auto cidr = Cidr::parse(host);
    if (!cidr) {
      auto base = IpAddr::parse(host.substr(0, host.find('/')));
      if (!base) return bad(text, "not an IP address before '/'");
      return bad(text, "not a CIDR block: the prefix must be 0.." + std::to_string(base->bits()) +
                           " and the address must have no bits set below it (e.g. 10.1.2.0/24)");
    }
    p.kind = HostPattern::Kind::Cidr;
    p.cidr = *cidr;
    return p;
  }
  if (bracketed) return bad(text, "not a valid IPv6 address");
  if (host.find(':') != std::string_view::npos) return bad(text, "not a valid IPv6 address");

  if (host.size() >= 2 && host.substr(0, 2) == "*.") {
    p.kind = HostPattern::Kind::Subdomains;
    host.remove_prefix(2);
    if (host.empty() || host == ".") return bad(text, "'*.' needs a domain after it");
  }
  if (host.find('*') != std::string_view::npos)
    return bad(text, "'*' is only allowed as a whole first label: *.example.com");
  // "*.1.2.3.4" or "1.2.3.4.": a dotted quad is an address, never a suffix.
  if (auto trailing = host.back() == '.' ? IpAddr::parse(host.substr(0, host.size() - 1)) : std::nullopt) {
    if (p.kind == HostPattern::Kind::Subdomains) return bad(text, "'*.' takes a domain name, not an IP address");
    p.kind = HostPattern::Kind::Cidr;
    p.cidr = Cidr{*trailing, trailing->bits()};
    return p;
  }
  auto name = detail::canonical_name(host);
  if (!name) return bad(text, name.error());
  if (detail::numeric_name(name.value())) {
    if (p.kind == HostPattern::Kind::Subdomains && IpAddr::parse(name.value()))
      return bad(text, "'*.' takes a domain name, not an IP address");
    return bad(text, "looks like an IP address in a non-standard spelling; write it as a dotted quad");
  }
  p.name = std::move(name.value());
  return p;
}

}  // namespace sluice::rules
