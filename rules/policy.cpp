#include "rules/policy.hpp"

namespace sluice::rules {

const char* to_string(Action a) { return a == Action::Allow ? "allow" : "deny"; }

Verdict Policy::judge(const CanonicalHost& host, uint16_t port) const {
  if (const HostPattern* p = deny.match(host, port)) return {Action::Deny, "denied-by-rule", p->source, name};
  if (const HostPattern* p = allow.match(host, port)) return {Action::Allow, "allowed-by-rule", p->source, name};
  if (default_action == Action::Allow) return {Action::Allow, "default-allow", "default", name};
  return {Action::Deny, "not-in-allowlist", "default", name};
}

}  // namespace sluice::rules
