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

// Splits "host:port" / "[v6]:port" (CONNECT authority). Port must be 1..65535.
struct HostPort {
  std::string host;  // still raw (brackets stripped)
  uint16_t port = 0;
};
Result<HostPort> split_host_port(std::string_view authority);

}  // namespace sluice::rules
