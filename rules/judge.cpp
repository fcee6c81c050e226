#include "rules/judge.hpp"

#include "rules/path.hpp"

namespace sluice::rules {

ConnectionJudge::ConnectionJudge(const Policy& policy, std::shared_ptr<LuaPolicy> lua, ConnectionFacts facts)
    : policy_(policy), lua_(std::move(lua)), facts_(std::move(facts)) {
  if (lua_ && !lua_->has_any()) lua_.reset();
  lua_conn_.facts = &facts_;
}

ConnectionJudge::~ConnectionJudge() {
  if (lua_) lua_->release(lua_conn_);
}

Verdict ConnectionJudge::from_hook(const HookResult& r, Hook hook) const {
  Verdict v;
  v.policy = policy_.name;
  v.rule = r.script;
  v.hook = hook_name(hook);
  v.message = r.reason;
  switch (r.kind) {
    case HookResult::Kind::Allow:
      v.action = Action::Allow;
      v.reason = Reason::AllowedByScript;
      break;
    case HookResult::Kind::Deny:
      v.action = Action::Deny;
      v.reason = Reason::DeniedByScript;
      break;
    case HookResult::Kind::Ask:
      v.action = Action::Ask;
      v.reason = Reason::AskByScript;
      break;
    case HookResult::Kind::Error:
    case HookResult::Kind::None:
      v.action = policy_.on_error == Action::Allow ? Action::Allow : Action::Deny;
      v.reason = v.action == Action::Allow ? Reason::AllowedOnScriptError : Reason::ScriptError;
      v.error = r.error;
      break;
  }
  return v;
}

// Report mode: the refusal is recorded, the connection goes ahead.
Verdict ConnectionJudge::finish(Verdict v) const {
  if (policy_.mode == Policy::Mode::Report && !v.allowed()) {
    v.would_deny = true;
    v.action = Action::Allow;
  }
  return v;
}

void ConnectionJudge::set_target(const CanonicalHost& host, uint16_t port) {
  judged_ = true;
  lua_conn_.scheme = {};
  if (lua_conn_.host != host.text) lua_conn_.host = host.text;
  lua_conn_.port = port;
}

Verdict ConnectionJudge::judge_connect(const CanonicalHost& host, uint16_t port, bool can_inspect) {
  if (can_inspect && policy_.inspects(host, port)) return inspected_tunnel(host, port, judge_host(host, port));
  return opaque_tunnel(host, port, judge_host(host, port));
}

// The host's verdict stands for the requests inside (judge_request reuses it, so on_connect
// runs once); a host that only path-scoped allow entries could allow goes ahead to be judged
// per request.
Verdict ConnectionJudge::inspected_tunnel(const CanonicalHost& host, uint16_t port, Verdict v) {
  target_key_ = host.text + ":" + std::to_string(port);
  target_verdict_ = v;
  target_verdict_.error.clear();
  const bool by_default = v.reason == Reason::NotInAllowlist || v.reason == Reason::AskByDefault;
  if (by_default)
    if (const PathEntry* e = match_path_host(policy_.allow_paths, host, port))
      v = Verdict::of(Action::Allow, Reason::AllowedForInspection, e->source, policy_.name);
  if (v.action != Action::Deny) v.inspect = true;
  return v;
}

// A tunnel shows no paths: a host that path-scoped entries decide cannot be judged through one,
// nor can the git guard judge git requests to a host it guards (fail closed: no CA, no git).
Verdict ConnectionJudge::opaque_tunnel(const CanonicalHost& host, uint16_t port, Verdict v) const {
  if (v.allowed() && !v.would_deny && policy_.guards_git(host, port))
    if (const GitRule* g = match_git_host(policy_.git, host, port)) {
      Verdict d = Verdict::of(Action::Deny, Reason::NeedsInspection, g->host_source, policy_.name);
      d.message = "git";
      return finish(d);
    }
  if (policy_.allow_paths.empty() && policy_.deny_paths.empty()) return v;
  if (v.allowed() && !v.would_deny) {
    if (const PathEntry* e = match_path_host(policy_.deny_paths, host, port))
      return finish(Verdict::of(Action::Deny, Reason::NeedsInspection, e->source, policy_.name));
    return v;
  }
  if (v.reason == Reason::NotInAllowlist)
    if (const PathEntry* e = match_path_host(policy_.allow_paths, host, port))
      return finish(Verdict::of(Action::Deny, Reason::NeedsInspection, e->source, policy_.name));
  return v;
}

// Per request: deny entries with a path win, then the host's verdict, then allow entries with a
// path for a host the lists alone would not allow. Paths are compared normalised (rules/path.hpp).
Verdict ConnectionJudge::request_paths(const CanonicalHost& host, uint16_t port, const RequestFacts& request,
                                       Verdict first) const {
  if (policy_.allow_paths.empty() && policy_.deny_paths.empty()) return first;
  if (!match_path_host(policy_.deny_paths, host, port) && !match_path_host(policy_.allow_paths, host, port))
    return first;
  const bool by_default = first.reason == Reason::NotInAllowlist || first.reason == Reason::AskByDefault;
  if (!first.allowed() && !by_default) return first;  // refused by a deny entry or a script already
  auto path = normalize_path(request.path);
  if (!path) {
    Verdict v = Verdict::of(Action::Deny, Reason::AmbiguousPath, "path", policy_.name);
    v.message = path.error();
    return finish(v);
  }
  if (const PathEntry* e = match_path_entry(policy_.deny_paths, host, port, request.method, path.value()))
    return finish(Verdict::of(Action::Deny, Reason::DeniedByRule, e->source, policy_.name));
  if (by_default)
    if (const PathEntry* e = match_path_entry(policy_.allow_paths, host, port, request.method, path.value()))
      return Verdict::of(Action::Allow, Reason::AllowedByRule, e->source, policy_.name);
  return first;
}

Verdict ConnectionJudge::judge_host(const CanonicalHost& host, uint16_t port) {
  set_target(host, port);
  if (const HostPattern* p = PolicyOverlay::match_deny(policy_, overlay_, host, port))
    return finish(Verdict::of(Action::Deny, Reason::DeniedByRule, p->source, policy_.name));
  if (lua_ && lua_->has(Hook::Connect)) {
    HookResult r = lua_->on_connect(lua_conn_);
    if (r.kind != HookResult::Kind::None)
      return finish(overlay_remembered(from_hook(r, Hook::Connect), remembered_, host.text, port));
  }
  return finish(overlay_remembered(policy_.judge(host, port, overlay_), remembered_, host.text, port));
}

Verdict ConnectionJudge::answered(const CanonicalHost& host, uint16_t port, const Verdict& human,
                                  const RequestFacts* request, std::vector<HeaderEdit>* edits) {
  set_target(host, port);
  target_key_ = host.text + ":" + std::to_string(port);
  target_verdict_ = human;
  if (request == nullptr) return human;
  Verdict v = run_on_request(human, *request, edits);
  // A script that asks again about this request has its answer already.
  return v.action == Action::Ask ? human : v;
}

Verdict ConnectionJudge::judge_request(const CanonicalHost& host, uint16_t port, const RequestFacts& request,
                                       std::vector<HeaderEdit>* edits) {
  std::string key = host.text + ":" + std::to_string(port);
  Verdict first;
  if (key != target_key_) {
    target_verdict_ = judge_host(host, port);
    target_key_ = std::move(key);
    first = target_verdict_;
  } else {
    first = target_verdict_;
    first.error.clear();  // a script error is reported by the call that had it, not by every reuse
  }
  set_target(host, port);
  return run_on_request(request_paths(host, port, request, std::move(first)), request, edits);
}

Verdict ConnectionJudge::run_on_request(const Verdict& first, const RequestFacts& request,
                                        std::vector<HeaderEdit>* edits) {
  if (!first.allowed() || !lua_ || !lua_->has(Hook::Request)) return first;
  lua_conn_.scheme = request.scheme;
  HookResult r = lua_->on_request(lua_conn_, request, edits);
  if (r.kind == HookResult::Kind::None) return first;
  Verdict second = finish(overlay_remembered(from_hook(r, Hook::Request), remembered_, lua_conn_.host, lua_conn_.port));
  // The record shows the first refusal (or would-deny); otherwise the last opinion.
  if (!second.allowed() || second.would_deny || !first.would_deny) return second;
  return first;
}

std::optional<Verdict> ConnectionJudge::judge_resolved(const std::vector<IpAddr>& addrs) {
  if (!lua_ || !lua_->has(Hook::Resolved)) return std::nullopt;
  HookResult r = lua_->on_resolved(lua_conn_, addrs);
  // "allow" cannot let an address through that the check refused: the list is already checked.
  if (r.kind == HookResult::Kind::None || r.kind == HookResult::Kind::Allow) return std::nullopt;
  Verdict v = finish(from_hook(r, Hook::Resolved));
  if (v.allowed() && !v.would_deny && v.error.empty()) return std::nullopt;
  return v;
}

std::vector<std::string> ConnectionJudge::close(const CloseStats& stats) {
  if (closed_ || !judged_ || !lua_ || !lua_->has(Hook::Close)) return {};
  closed_ = true;
  return lua_->on_close(lua_conn_, stats);
}

}  // namespace sluice::rules
