// Transparent mode's resolver decides before any connection exists, so before the
// port is known and before a Lua hook could see the connection. This is the policy's
// host-level view of a name: could any connection to it be allowed (or asked about)?
// Then the jail gets a fake address, and the connection is judged in full later.
// If no connection to it could ever be allowed, the name does not exist for the jail.
#pragma once
#include <string>

#include "rules/host.hpp"
#include "rules/policy.hpp"

namespace sluice::rules {

struct DnsVerdict {
  bool resolve = false;  // answer with a fake address; false: NXDOMAIN
  // "denied-by-rule", "not-in-allowlist", "allowed-by-rule", "default-allow",
  // "ask-by-default", "script-decides"; "not-a-name" for an IP literal.
  std::string reason;
  std::string rule;         // the pattern as written, "default", or "" (scripts, literals)
  bool would_deny = false;  // report mode: resolved although enforce mode would not
};

// In order: a deny entry for the host on every port (no port given) -> NXDOMAIN;
// the policy has Lua rules -> resolve (a hook decides per connection); an allow entry
// for the host on some port -> resolve; default allow or ask -> resolve; else NXDOMAIN.
// A deny entry for one port does not hide the name (other ports may be allowed).
// A sandbox's `overlay` (may be null) adds its deny and allow entries to the policy's.
DnsVerdict dns_verdict(const Policy& policy, const CanonicalHost& host, const PolicyOverlay* overlay = nullptr);

}  // namespace sluice::rules
