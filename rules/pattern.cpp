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
  auto authority = split_authority(text, true);  // one colon: host:port; several: a bare IPv6/CIDR
  if (!authority) return bad(text, authority.error() == "junk after ]" ? "expected :port after ]" : authority.error());
  std::string_view host = authority->host;
  std::string_view port = authority->port;
  const bool has_port = authority->has_port;
  const bool bracketed = authority->bracketed;
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
