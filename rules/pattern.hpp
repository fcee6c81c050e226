// One allow/deny list entry, parsed: exact host, *.suffix, IP or CIDR, optional :port.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rules/ip.hpp"
#include "rules/result.hpp"

namespace sluice::rules {

struct HostPattern {
  enum class Kind { Exact, Subdomains, Cidr };
  Kind kind = Kind::Exact;
  std::string name;              // Exact: canonical host; Subdomains: the suffix without "*."
  Cidr cidr;                     // Cidr (an IP literal is a /32 or /128)
  std::optional<uint16_t> port;  // empty: any port
  std::string source;            // the entry as written, for "which rule decided"
};

// "github.com", "*.github.com", "api.example.com:443", "10.1.2.0/24",
// "[2001:db8::1]:443", "2001:db8::/32", "1.2.3.4:80".
Result<HostPattern> parse_pattern(std::string_view text);

}  // namespace sluice::rules
