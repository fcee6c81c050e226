#include "proxy/target_flow.hpp"

#include <utility>

#include "proxy/ask.hpp"
#include "proxy/net_address.hpp"

namespace sluice::proxy {

const rules::ListenerConfig* find_listener(const rules::Config& config, const ListenerInfo& listener) {
  if (listener.sandbox) return listener.sandbox.get();
  for (const auto& l : config.listeners)
    if (l.name == listener.name) return &l;
  return nullptr;
}

TargetFlow::TargetFlow(WorkerContext& worker, const rules::Config& config, const ClientInfo& client,
                       const rules::Policy* policy, std::shared_ptr<rules::WorkerRules> rules, Done done,
                       PhaseChange phase_change)
    : worker_(worker),
      config_(config),
      client_(client),
      policy_(policy),
      judge_(worker, client, policy, std::move(rules), config.remembered.get()),
      done_(std::move(done)),
      phase_change_(std::move(phase_change)) {}

TargetFlow::~TargetFlow() { stop(); }

void TargetFlow::start(Target target, Decision& decision) {
  stop();
  target_ = std::move(target);
  decision_ = &decision;
  refusal_cause_ = Termination::Refused;
  decision.host = target_.host.text;
  decision.port = target_.port;
  set_phase(Phase::Judging);
  judge_target();
}

void TargetFlow::stop() {
  if (ask_ticket_ != 0) worker_.cancel_ask(std::exchange(ask_ticket_, 0), false);
  if (ask_timer_.live()) uv_timer_stop(ask_timer_.get());
  if (dialer_) dialer_->cancel();
  phase_ = Phase::Idle;
  decision_ = nullptr;
}

// The whole judgment order lives in rules/judge.hpp: deny entries, Lua, allow entries, default.
void TargetFlow::judge_target() {
  Decision& d = *decision_;
  if (target_.request != nullptr) {
    target_.edits->clear();
    d.verdict = judge_.request(target_.host, target_.port, *target_.request, target_.edits);
  } else {
    d.verdict = judge_.connect(to_string(d.kind), target_.host, target_.port, target_.can_inspect);
  }
  if (d.verdict.action == rules::Action::Ask) return ask();
  act_on_verdict();
}

// ---- asking ------------------------------------------------------------------

void TargetFlow::ask() {
  Decision& d = *decision_;
  set_phase(Phase::Asking);
  AskRequest r{d.verdict.policy, client_.listener->name, to_string(d.kind), target_.host.text, target_.port,
               client_.id,       client_.addr,           client_.peer};
  ask_ticket_ = worker_.ask(
      r,
      [this](const AskAnswer& a) {
        try {
          on_answer(a);
        } catch (...) {
          broken();
        }
      },
      &d.question);
  if (ask_ticket_ == 0) {  // nobody can be asked: denied at once
    d.verdict.action = rules::Action::Deny;
    d.verdict.reason = rules::Reason::AskUnavailable;
    return act_on_verdict();
  }
  ask_started_ms_ = uv_now(worker_.loop());
  if (!ask_timer_.live()) {
    ask_timer_.init([&](uv_timer_t* t) { return uv_timer_init(worker_.loop(), t); });
    ask_timer_.get()->data = this;
  }
  uv_timer_start(ask_timer_.get(), on_timer, static_cast<uint64_t>(config_.limits.ask_timeout_ms), 0);
}

void TargetFlow::on_answer(const AskAnswer& a) {
  if (phase_ != Phase::Asking) return;
  ask_ticket_ = 0;
  uv_timer_stop(ask_timer_.get());
  Decision& d = *decision_;
  rules::Verdict human = d.verdict;
  human.action = a.action;
  const bool earlier = a.by == "remembered";
  if (a.action == rules::Action::Allow)
    human.reason = earlier ? rules::Reason::RememberedAllow : rules::Reason::AskAllowed;
  else
    human.reason = earlier ? rules::Reason::RememberedDeny : rules::Reason::AskDenied;
  human.rule = rules::to_string(a.remember);
  human.error.clear();
  if (a.question != 0) d.question = a.question;
  d.ask_ms = static_cast<double>(uv_now(worker_.loop()) - ask_started_ms_);
  // The answer stands for this target; a plain-HTTP request still meets on_request.
  if (target_.request != nullptr) target_.edits->clear();
  d.verdict = judge_.answered(target_.host, target_.port, human, target_.request, target_.edits);
  act_on_verdict();
}

void TargetFlow::on_ask_timeout() {
  if (phase_ != Phase::Asking) return;
  if (ask_ticket_ != 0) worker_.cancel_ask(std::exchange(ask_ticket_, 0), true);
  Decision& d = *decision_;
  refusal_cause_ = Termination::AskTimeout;
  d.verdict.action = rules::Action::Deny;
  d.verdict.reason = rules::Reason::AskTimeout;
  d.ask_ms = static_cast<double>(uv_now(worker_.loop()) - ask_started_ms_);
  act_on_verdict();
}

void TargetFlow::on_timer(uv_timer_t* t) {
  auto* f = static_cast<TargetFlow*>(t->data);
  try {
    f->on_ask_timeout();
  } catch (...) {
    f->broken();
  }
}

// ---- dialing -----------------------------------------------------------------

void TargetFlow::act_on_verdict() {
  if (!decision_->verdict.allowed()) return refuse();
  if (target_.before_dial && target_.before_dial()) return finish(flow::Reused{});
  set_phase(Phase::Dialing);
  if (!dialer_)
    dialer_ = std::make_unique<Dialer>(worker_, config_, policy_,
                                       client_.listener ? client_.listener->overlay.get() : nullptr);
  forward_via_ = nullptr;
  dialer_->dial(
      target_.host, target_.port,
      [this](Dialer::Outcome& o) {
        try {
          on_dialed(o);
        } catch (...) {
          broken();
        }
      },
      [this](const std::vector<rules::IpAddr>& addrs) { return judge_.resolved(addrs); }, target_.use);
}

void TargetFlow::release_dialer() {
  if (phase_ != Phase::Dialing) dialer_.reset();
}

void TargetFlow::on_dialed(Dialer::Outcome& o) {
  if (phase_ != Phase::Dialing) return;
  forward_via_ = dialer_->forward_via();
  Decision& d = *decision_;
  d.dns_ms = o.dns_ms;
  d.connect_ms = o.connect_ms;
  d.addr = o.addr;
  d.parent = o.parent;
  d.address_class = o.address_class;
  if (o.verdict) d.verdict = *o.verdict;  // on_resolved spoke
  const std::string& host = target_.host.text;
  const std::string target = host_port_text(target_.host, target_.port);
  const std::string connect_limit = std::to_string(config_.limits.connect_timeout_ms) + " ms";
  switch (o.failure) {
    case Dialer::Failure::DnsFailed:
      return fail(rules::Reason::DnsFailed, "sluice: cannot resolve " + host + ": " + o.error);
    case Dialer::Failure::AddressDenied:
      return fail(rules::Reason::ResolvedAddressDenied,
                  "sluice: " + host + " resolves only to " + o.address_class +
                      " addresses, which sluice does not dial; list the address or range in the allow list if you "
                      "mean to reach it");
    case Dialer::Failure::RefusedByRules: return refuse();
    case Dialer::Failure::ConnectFailed:
      return fail(rules::Reason::ConnectFailed, "sluice: cannot connect to " + target + ": " + o.error, o.uv_error);
    case Dialer::Failure::ConnectTimeout:
      return fail(rules::Reason::ConnectTimeout,
                  "sluice: connecting to " + target + " timed out after " + connect_limit);
    case Dialer::Failure::ParentFailed:
      return fail(rules::Reason::UpstreamProxyFailed, "sluice: upstream proxy failed for " + target + ": " + o.error);
    case Dialer::Failure::ParentAuth:
      return fail(rules::Reason::UpstreamProxyAuth,
                  "sluice: the upstream proxy refused sluice's credentials for " + target + ": " + o.error);
    case Dialer::Failure::ParentTimeout:
      return fail(rules::Reason::UpstreamProxyTimeout,
                  "sluice: the upstream proxy " + o.parent + " did not connect " + target + " within " + connect_limit);
    case Dialer::Failure::None: break;
  }
  finish(flow::Connected{std::move(o.stream)});
}

// ---- outcomes ------------------------------------------------------------------

void TargetFlow::refuse() {
  const rules::Verdict& v = decision_->verdict;
  finish(flow::Refused{v.reason, denial_message(v, target_.host, target_.port), refusal_cause_});
}

void TargetFlow::fail(rules::Reason reason, std::string detail, int uv_error) {
  finish(flow::DialFailed{reason, std::move(detail), uv_error});
}

void TargetFlow::broken() {
  if (phase_ == Phase::Idle) return;  // the outcome went out already: the owner's own failure
  finish(flow::Broken{});
}

// The run is over before the owner hears of it, so the owner may start the next one (or
// stop) from inside `done_`; nothing here touches a member after the call.
// The owner may even be deleted (a SOCKS5 session handing an inspected target to an HTTP
// session), so the callback runs from a copy, not from the member it might destroy.
void TargetFlow::finish(FlowOutcome o) {
  if (ask_timer_.live()) uv_timer_stop(ask_timer_.get());
  phase_ = Phase::Idle;
  decision_ = nullptr;
  Done done = done_;
  done(o);
}

void TargetFlow::set_phase(Phase p) {
  phase_ = p;
  if (phase_change_) phase_change_(p);
}

}  // namespace sluice::proxy
