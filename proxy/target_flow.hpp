// The way to one target, the same for every protocol: judge it (rules), ask a person
// when the verdict is Ask, then resolve, check the addresses and dial. A session (HTTP,
// SOCKS5, and the paths to come) only parses its protocol, starts a flow for the target
// it read, and turns the one outcome into its protocol's bytes:
//
//   start() -> judge -> [asking] -> [before_dial: keep-alive reuse?] -> dialing -> outcome
//
//   Refused     the policy, its scripts or a person said no (also: nobody answered, or
//               nobody could be asked); the verdict is in the decision
//   DialFailed  allowed, but the target could not be reached (DNS, address check, connect,
//               parent proxy)
//   Connected   a connected upstream stream, owned by the caller from here on
//   Reused      allowed, and before_dial said the owner already holds a connection to it
//   Broken      sluice itself failed on the way (out of memory): the owner closes
//
// The flow fills in the decision's verdict, ask and dial fields; the owner writes the
// decision line, because only it knows what its client was told.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <uv.h>

#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision.hpp"
#include "proxy/dialer.hpp"
#include "proxy/judge.hpp"
#include "proxy/termination.hpp"
#include "proxy/worker_context.hpp"
#include "rules/config.hpp"
#include "rules/rule_engine.hpp"

namespace sluice::proxy {

namespace flow {
struct Refused {
  rules::Reason reason;
  std::string detail;                        // one human line: which rule, and how to allow it
  Termination cause = Termination::Refused;  // AskTimeout when nobody answered in time
};
struct DialFailed {
  rules::Reason reason;
  std::string detail;  // one human line naming the target and the error
  int uv_error = 0;    // a failed connect's libuv error (SOCKS5 has a reply code for some)
};
struct Connected {
  UvHandle<AnyStream> stream{UvHandle<AnyStream>::Empty{}};  // the owner sets its data pointer
};
struct Reused {};
struct Broken {};
}  // namespace flow

using FlowOutcome = std::variant<flow::Refused, flow::DialFailed, flow::Connected, flow::Reused, flow::Broken>;

// The listener's config entry for a connection: a sandbox's travels with its listener; a
// config file's is found by name in the snapshot (null when a reload removed it).
const rules::ListenerConfig* find_listener(const rules::Config& config, const ListenerInfo& listener);

class TargetFlow {
 public:
  enum class Phase { Idle, Judging, Asking, Dialing };

  struct Target {
    rules::CanonicalHost host;
    uint16_t port = 0;
    // Plain HTTP: the request, judged by on_request, which may add header edits (cleared
    // first, applied by the owner once allowed). Null: a CONNECT-like target.
    const rules::RequestFacts* request = nullptr;
    std::vector<rules::HeaderEdit>* edits = nullptr;
    Dialer::Use use = Dialer::Use::Tunnel;
    // A CA is at hand: a tunnel to a host the policy inspects is allowed with the verdict's
    // `inspect` set (the owner terminates its TLS) instead of being judged as opaque.
    bool can_inspect = false;
    // Runs once the target is allowed, before any dialing: true when the owner will use a
    // connection it already holds to this target (keep-alive); the outcome is then Reused.
    std::function<bool()> before_dial;
  };
  // The one outcome of a run, on the loop (or before start() returns). Must not throw.
  using Done = std::function<void(FlowOutcome&)>;
  // Each phase change while the run goes on (the owner reads its client while Asking only
  // to notice it leaving).
  using PhaseChange = std::function<void(Phase)>;

  // `config`, `client` and `policy` outlive the flow (the session holds them).
  // `policy` null: everything is denied. `rules` may be null.
  TargetFlow(WorkerContext& worker, const rules::Config& config, const ClientInfo& client, const rules::Policy* policy,
             std::shared_ptr<rules::WorkerRules> rules, Done done, PhaseChange phase_change = {});
  ~TargetFlow();
  TargetFlow(const TargetFlow&) = delete;
  TargetFlow& operator=(const TargetFlow&) = delete;

  // Runs the flow for `target`, recording into `decision` (kept alive by the owner until
  // the outcome, or stop()). A judgment that throws propagates out of start().
  void start(Target target, Decision& decision);
  // Abandons the run: an open question is left (not as a timeout), a dial cancelled; no
  // outcome follows. Safe at any time, also from inside the Done callback.
  void stop();

  Phase phase() const { return phase_; }
  const rules::Policy* policy() const { return policy_; }
  // After a Forward dial through an http parent: that parent (see Dialer::forward_via).
  const rules::UpstreamProxy* forward_via() const { return forward_via_; }
  // Frees the dialer (its address list, attempt state and handles; ~0.9 KiB) once a run has
  // its outcome and the owner dials no more, e.g. a tunnel that relays. The next dial makes a
  // new one. Call it from a callback of the owner's own, never from inside the flow's `done`:
  // the dialer's frames may still be on the stack there. A no-op while a dial is under way.
  void release_dialer();
  bool holds_dialer() const { return dialer_ != nullptr; }
  // The connection's judge, for its close (on_close hooks and accounting).
  SessionJudge& judge() { return judge_; }

 private:
  void judge_target();
  void ask();
  void on_answer(const AskAnswer& a);
  void on_ask_timeout();
  void act_on_verdict();
  void on_dialed(Dialer::Outcome& o);
  void set_phase(Phase p);
  void finish(FlowOutcome o);
  void refuse();
  void fail(rules::Reason reason, std::string detail, int uv_error = 0);
  void broken();  // an exception on a loop callback
  static void on_timer(uv_timer_t* t);

  WorkerContext& worker_;
  const rules::Config& config_;
  const ClientInfo& client_;
  const rules::Policy* policy_;
  SessionJudge judge_;
  std::unique_ptr<Dialer> dialer_;  // made by the first dial, freed by release_dialer()
  const rules::UpstreamProxy* forward_via_ = nullptr;
  Done done_;
  PhaseChange phase_change_;

  Phase phase_ = Phase::Idle;
  Target target_;
  Decision* decision_ = nullptr;
  Termination refusal_cause_ = Termination::Refused;
  uint64_t ask_ticket_ = 0;  // Asking: the worker's ticket for the question
  uint64_t ask_started_ms_ = 0;
  UvHandle<uv_timer_t> ask_timer_{UvHandle<uv_timer_t>::Empty{}};  // made at the first ask
};

}  // namespace sluice::proxy
