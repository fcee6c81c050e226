// The judgment of one client connection, in one place for every session kind
// (CONNECT, plain HTTP, SOCKS):
//
//   judge_connect   deny entries -> each script's on_connect, in order, first
//                   non-nil verdict wins -> allow entries -> the default; a host
//                   that path-scoped entries decide is refused (needs-inspection):
//                   a tunnel shows no paths. With a CA (TLS inspection) such a host,
//                   and one the policy's `inspect` names, is allowed with `inspect`
//                   set instead, and each request inside meets judge_request
//   judge_request   plain HTTP, per request: the same for the request's target
//                   (run again only when the target changes), then path-scoped
//                   entries on the normalised path (deny ones win; allow ones
//                   widen only a default refusal), then each script's on_request,
//                   which may refuse the request or edit its headers, never widen
//                   what came before
//   judge_resolved  after DNS, on the addresses that passed the resolved-address
//                   check: on_resolved may refuse
//   close           on_close, return values ignored
//
// A failing hook (error, instruction budget, memory cap) answers with the
// policy's on_error verdict. In report mode every refusal becomes an allow
// with would_deny set. An Ask verdict (the default, or a script's "ask") that an
// answer remembered from an earlier ask settles becomes that answer
// (remembered-allow / remembered-deny); otherwise it is the caller's to ask.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rules/host.hpp"
#include "rules/ip.hpp"
#include "rules/lua_policy.hpp"
#include "rules/policy.hpp"
#include "rules/remembered.hpp"

namespace sluice::rules {

class ConnectionJudge {
 public:
  // `lua` is the worker's state for this policy, or null when it has no rules.
  ConnectionJudge(const Policy& policy, std::shared_ptr<LuaPolicy> lua, ConnectionFacts facts);
  ~ConnectionJudge();
  ConnectionJudge(const ConnectionJudge&) = delete;
  ConnectionJudge& operator=(const ConnectionJudge&) = delete;

  // Answers remembered from earlier asks; they settle Ask verdicts. May be null.
  void set_remembered(const Remembered* r) { remembered_ = r; }
  // The sandbox's own entries on top of the policy (rules/policy.hpp); may be null. Outlives this.
  void set_overlay(const PolicyOverlay* o) { overlay_ = o; }
  // `can_inspect`: a CA is configured, so a tunnel to a host the policy inspects is
  // terminated (the verdict's `inspect` set) and its requests judged by judge_request.
  Verdict judge_connect(const CanonicalHost& host, uint16_t port, bool can_inspect = false);
  // A human answered an Ask verdict for host:port: `human` stands as the target's verdict
  // for the rest of the connection (later requests to it reuse it). For a plain-HTTP
  // request (`request` set) an allow still runs on_request, which may refuse or edit.
  Verdict answered(const CanonicalHost& host, uint16_t port, const Verdict& human, const RequestFacts* request,
                   std::vector<HeaderEdit>* edits);
  // Header edits are appended to `edits`; apply them only when the verdict allows.
  // Verdict::error is set only when a hook failed during this call.
  Verdict judge_request(const CanonicalHost& host, uint16_t port, const RequestFacts& request,
                        std::vector<HeaderEdit>* edits);
  // Empty: no script objected. A verdict: a refusal, or (report mode, on_error allow)
  // an allow that must be logged.
  std::optional<Verdict> judge_resolved(const std::vector<IpAddr>& addrs);
  // Runs on_close once, if the connection was ever judged. Returns script errors.
  std::vector<std::string> close(const CloseStats& stats);

  const Policy& policy() const { return policy_; }
  const ConnectionFacts& facts() const { return facts_; }

 private:
  Verdict from_hook(const HookResult& r, Hook hook) const;
  Verdict finish(Verdict v) const;
  Verdict judge_host(const CanonicalHost& host, uint16_t port);  // deny, scripts, allow, default
  Verdict opaque_tunnel(const CanonicalHost& host, uint16_t port, Verdict v) const;
  Verdict inspected_tunnel(const CanonicalHost& host, uint16_t port, Verdict v);
  Verdict request_paths(const CanonicalHost& host, uint16_t port, const RequestFacts& request, Verdict first) const;
  Verdict run_on_request(const Verdict& first, const RequestFacts& request, std::vector<HeaderEdit>* edits);
  void set_target(const CanonicalHost& host, uint16_t port);

  const Policy& policy_;
  std::shared_ptr<LuaPolicy> lua_;
  const Remembered* remembered_ = nullptr;
  const PolicyOverlay* overlay_ = nullptr;
  ConnectionFacts facts_;
  LuaConnection lua_conn_;
  bool judged_ = false;
  bool closed_ = false;
  // Plain HTTP: the target judge_connect last judged, and its verdict.
  std::string target_key_;
  Verdict target_verdict_;
};

}  // namespace sluice::rules
