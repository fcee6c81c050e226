#include "rules/dns_verdict.hpp"

namespace sluice::rules {

namespace {

DnsVerdict of(bool resolve, std::string reason, std::string rule) {
  DnsVerdict v;
  v.resolve = resolve;
  v.reason = std::move(reason);
  v.rule = std::move(rule);
  return v;
}

DnsVerdict enforce(const Policy& p, const CanonicalHost& host, const PolicyOverlay* o) {
  // A resolver is asked for names; an address literal is not one to map.
  if (host.kind == HostKind::Ip) return of(false, "not-a-name", "");
  if (const HostPattern* d = p.deny.match_every_port(host)) return of(false, "denied-by-rule", d->source);
  if (o != nullptr)
    if (const HostPattern* d = o->deny.match_every_port(host)) return of(false, "denied-by-rule", d->source);
  if (!p.rules.empty()) return of(true, "script-decides", "");
  if (const HostPattern* a = p.allow.match_some_port(host)) return of(true, "allowed-by-rule", a->source);
  if (o != nullptr)
    if (const HostPattern* a = o->allow.match_some_port(host)) return of(true, "allowed-by-rule", a->source);
  switch (p.default_action) {
    case Action::Allow: return of(true, "default-allow", "default");
    case Action::Ask: return of(true, "ask-by-default", "default");
    case Action::Deny: break;
  }
  return of(false, "not-in-allowlist", "default");
}

}  // namespace

DnsVerdict dns_verdict(const Policy& policy, const CanonicalHost& host, const PolicyOverlay* overlay) {
  DnsVerdict v = enforce(policy, host, overlay);
  if (!v.resolve && policy.mode == Policy::Mode::Report && host.kind == HostKind::Name) {
    v.resolve = true;
    v.would_deny = true;
  }
  return v;
}

}  // namespace sluice::rules
