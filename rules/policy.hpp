// A named policy: deny entries win, then allow entries, then the default.
#pragma once
#include <cstdint>
#include <string>

#include "rules/host.hpp"
#include "rules/host_set.hpp"

namespace sluice::rules {

enum class Action { Allow, Deny };
const char* to_string(Action a);

struct Verdict {
  Action action = Action::Deny;
  // Machine-readable code, sent to clients as X-Sluice-Reason on denial:
  // "denied-by-rule", "not-in-allowlist", "allowed-by-rule", "default-allow".
  std::string reason;
  std::string rule;    // the pattern as written, or "default"
  std::string policy;  // policy name
  bool allowed() const { return action == Action::Allow; }
};

struct Policy {
  std::string name;
  Action default_action = Action::Deny;
  HostSet allow;
  HostSet deny;
  // Opt-in: a SOCKS request for port 22 that this policy denies is answered "granted",
  // then sluice itself sends an SSH-2.0 disconnect carrying the denial reason, so ssh
  // and git print it. See docs/configuration.md for the trade-off.
  bool ssh_in_band_reason = false;

  Verdict judge(const CanonicalHost& host, uint16_t port) const;
};

}  // namespace sluice::rules
