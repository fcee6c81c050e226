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

  Verdict judge(const CanonicalHost& host, uint16_t port) const;
};

}  // namespace sluice::rules
