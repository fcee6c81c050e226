#include "rules/policy.hpp"

namespace sluice::rules {

const char* to_string(Action a) {
  switch (a) {
    case Action::Allow: return "allow";
    case Action::Deny: return "deny";
    case Action::Ask: return "ask";
  }
  return "deny";
}

Verdict Policy::judge(const CanonicalHost& host, uint16_t port) const {
  if (const HostPattern* p = deny.match(host, port)) return Verdict::of(Action::Deny, "denied-by-rule", p->source, name);
  if (const HostPattern* p = allow.match(host, port)) return Verdict::of(Action::Allow, "allowed-by-rule", p->source, name);
  if (default_action == Action::Allow) return Verdict::of(Action::Allow, "default-allow", "default", name);
  return Verdict::of(Action::Deny, "not-in-allowlist", "default", name);
}

}  // namespace sluice::rules
