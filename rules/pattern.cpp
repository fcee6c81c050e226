#include "rules/pattern.hpp"

#include "rules/host.hpp"

namespace sluice::rules {

namespace {

Err bad(std::string_view text, const std::string& why) {
  return Err{"bad pattern \"" + std::string(text.substr(0, 100)) + "\": " + why};
}

}  // namespace

Result<HostPattern> parse_pattern(std::string_view text) {
  HostPattern p;
  p.source = std::string(text);
  if (text.empty()) return bad(text, "empty");
  std::string_view host = text;
  // Port: "[v6]:443", "[v6/48]:443", "host:443", "1.2.3.4:80". A bare IPv6 has several colons and no port.
  if (host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return bad(text, "unclosed [");
    std::string_view after = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad(text, "expected :port after ]");
      std::string with_host = "x";  // split_host_port wants host:port
      with_host.append(after);
      auto hp = split_host_port(with_host);
      if (!hp) return bad(text, "bad port");
      p.port = hp->port;
    }
    if (host.find(':') == std::string_view::npos) return bad(text, "brackets are for IPv6 addresses");
  } else if (size_t colon = host.find(':'); colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
    auto hp = split_host_port(host);
    if (!hp) return bad(text, "bad port");
    p.port = hp->port;
    host = host.substr(0, colon);
  }
  if (host.empty()) return bad(text, "empty host");
  if (host.find('/') != std::string_view::npos || IpAddr::parse(host)) {
    auto cidr = Cidr::parse(host);
    if (!cidr) {
      if (host.find('/') != std::string_view::npos)
        return bad(text, "not a CIDR block (address/prefix, no host bits set below the prefix)");
      return bad(text, "not an IP address");
    }
    p.kind = HostPattern::Kind::Cidr;
    p.cidr = *cidr;
    return p;
  }
  if (host.size() >= 2 && host.substr(0, 2) == "*.") {
    p.kind = HostPattern::Kind::Subdomains;
    host.remove_prefix(2);
  } else {
    p.kind = HostPattern::Kind::Exact;
  }
  if (host.find('*') != std::string_view::npos)
    return bad(text, "'*' is only allowed as a whole first label: *.example.com");
  auto canon = canonicalize_host(host);
  if (!canon) return bad(text, canon.error());
  if (canon->kind != HostKind::Name) return bad(text, "not a host name");
  p.name = canon->text;
  return p;
}

}  // namespace sluice::rules
