// Canonical form of a requested host, the only form policy ever matches.
#pragma once
#include <string>
#include <string_view>

#include "rules/ip.hpp"
#include "rules/result.hpp"

namespace sluice::rules {

enum class HostKind { Name, Ip };

struct CanonicalHost {
  HostKind kind = HostKind::Name;
  // Name: lower case, one trailing dot removed. Ip: IpAddr::to_string().
  std::string text;
  IpAddr addr;  // meaningful when kind == Ip
};

// Accepts what a client may put in CONNECT authority or a URL host:
// "Example.COM.", "127.0.0.1", "[::1]" (brackets optional for IPv6).
// Rejects empty names, labels > 63 bytes, names > 253 bytes, and bytes outside
// [A-Za-z0-9-_.] with a one-line reason.
Result<CanonicalHost> canonicalize_host(std::string_view raw);

// The one splitter of "host", "host:port", "[v6]" and "[v6]:port" in sluice: every parser of
// such text (CONNECT targets, URLs, patterns, listen addresses, proxy URLs, bench targets, Lua)
// uses it, so two parsers can never read one input two ways. `bare_ipv6`: text with several
// colons and no brackets is one IPv6 address without a port (patterns, Lua); otherwise it is an
// error ("IPv6 address needs brackets"). What brackets may hold is the caller's rule. The port is returned
// as written (digits checked by the caller, whose range differs: 0 may mean "any").
struct Authority {
  std::string_view host;  // brackets stripped
  std::string_view port;  // empty when has_port is false
  bool has_port = false;
  bool bracketed = false;
};
Result<Authority> split_authority(std::string_view text, bool bare_ipv6);

// Splits "host:port" / "[v6]:port" (CONNECT authority). Port must be 1..65535.
struct HostPort {
  std::string host;  // still raw (brackets stripped)
  uint16_t port = 0;
};
Result<HostPort> split_host_port(std::string_view authority);

}  // namespace sluice::rules
