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

const HostPattern* PolicyOverlay::match_deny(const Policy& p, const PolicyOverlay* o, const CanonicalHost& host,
                                             uint16_t port) {
  if (const HostPattern* d = p.deny.match(host, port)) return d;
  return o != nullptr ? o->deny.match(host, port) : nullptr;
}

Verdict Policy::judge(const CanonicalHost& host, uint16_t port, const PolicyOverlay* overlay) const {
  if (const HostPattern* p = PolicyOverlay::match_deny(*this, overlay, host, port))
    return Verdict::of(Action::Deny, Reason::DeniedByRule, p->source, name);
  const HostPattern* a = allow.match(host, port);
  if (a == nullptr && overlay != nullptr) a = overlay->allow.match(host, port);
  if (a != nullptr) return Verdict::of(Action::Allow, Reason::AllowedByRule, a->source, name);
  if (default_action == Action::Allow) return Verdict::of(Action::Allow, Reason::DefaultAllow, "default", name);
  if (default_action == Action::Ask) return Verdict::of(Action::Ask, Reason::AskByDefault, "default", name);
  return Verdict::of(Action::Deny, Reason::NotInAllowlist, "default", name);
}

bool Policy::guards_git(const CanonicalHost& host, uint16_t port) const {
  const GitRule* g = match_git_host(git, host, port);
  return g != nullptr && (port == 443 || g->host->match(host, port)->port.has_value());
}

bool Policy::inspects(const CanonicalHost& host, uint16_t port) const {
  if (inspect_exclude.match(host, port) != nullptr) return false;
  return inspect.match(host, port) != nullptr || match_path_host(allow_paths, host, port) != nullptr ||
         match_path_host(deny_paths, host, port) != nullptr || guards_git(host, port);
}

const char* to_string(PolicyList l) { return l == PolicyList::Allow ? "allow" : "deny"; }

std::shared_ptr<Policy> with_list(const Policy& p, PolicyList which, HostSet entries) {
  auto out = std::make_shared<Policy>();
  out->name = p.name;
  out->default_action = p.default_action;
  out->ssh_in_band_reason = p.ssh_in_band_reason;
  out->rules = p.rules;
  out->on_error = p.on_error;
  out->mode = p.mode;
  out->upstream_proxy = p.upstream_proxy;
  out->direct_upstream = p.direct_upstream;
  out->allow_paths = p.allow_paths;  // entries share their immutable host sets
  out->deny_paths = p.deny_paths;
  out->git = p.git;  // rules share their immutable host sets
  out->allow = which == PolicyList::Allow ? std::move(entries) : p.allow.clone();
  out->deny = which == PolicyList::Deny ? std::move(entries) : p.deny.clone();
  out->inspect = p.inspect.clone();
  out->inspect_exclude = p.inspect_exclude.clone();
  out->credentials = p.credentials;
  return out;
}

}  // namespace sluice::rules
