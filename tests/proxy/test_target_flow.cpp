// The target flow alone, on a real loop with the rig's worker: each typed outcome (refused,
// connected, dial failed, reused), an ask answered, timed out, unavailable or abandoned, and
// what the flow records in the decision.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "proxy/target_flow.hpp"
#include "rules/pattern.hpp"
#include "session_rig.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;

namespace {

struct Run {
  rig::TestWorker w;
  std::shared_ptr<rules::Config> cfg;
  ClientInfo client = rig::client_info(1);
  Decision d;
  std::vector<FlowOutcome> outcomes;
  std::vector<TargetFlow::Phase> phases;
  std::unique_ptr<TargetFlow> flow;

  explicit Run(std::shared_ptr<rules::Config> c) : cfg(std::move(c)) {
    w.table().answers["ask.test"] = "127.0.0.1";
    d.kind = ConnKind::Connect;
    flow = std::make_unique<TargetFlow>(
        w, *cfg, client, cfg->policy("p"), nullptr, [this](FlowOutcome& o) { outcomes.push_back(std::move(o)); },
        [this](TargetFlow::Phase p) { phases.push_back(p); });
  }
  void start(const char* host, uint16_t port, std::function<bool()> before_dial = {}) {
    TargetFlow::Target t;
    t.host = rules::canonicalize_host(host).value();
    t.port = port;
    t.before_dial = std::move(before_dial);
    flow->start(std::move(t), d);
  }
  void wait() {
    w.run_until([&] { return !outcomes.empty(); });
    REQUIRE(outcomes.size() == 1);
  }
  template <class T>
  T& outcome() {
    REQUIRE(outcomes.size() == 1);
    REQUIRE(std::holds_alternative<T>(outcomes[0]));
    return std::get<T>(outcomes[0]);
  }
};

using Phase = TargetFlow::Phase;

}  // namespace

TEST_CASE("target flow: a refusal is typed, carries the denial line, and dials nothing") {
  rig::Upstream up;
  Run r(rig::config(rules::Action::Deny, {"127.0.0.1"}, {"denied.test"}));
  r.start("denied.test", up.port);
  auto& refused = r.outcome<flow::Refused>();  // at once: no loop turn needed
  CHECK(refused.reason == rules::Reason::DeniedByRule);
  CHECK(refused.cause == Termination::Refused);
  CHECK(refused.detail.find("deny list of policy \"p\"") != std::string::npos);
  CHECK(r.d.host == "denied.test");
  CHECK(r.d.verdict.action == rules::Action::Deny);
  CHECK(r.phases == std::vector<Phase>{Phase::Judging});
  CHECK(r.flow->phase() == Phase::Idle);
  up.pump();
  CHECK(up.conns.empty());
}

TEST_CASE("target flow: connected, dial failures, reuse") {
  rig::Upstream up;
  SUBCASE("connected: the stream is the owner's, the decision has the address") {
    Run r(rig::config(rules::Action::Deny, {"127.0.0.1"}));
    r.start("127.0.0.1", up.port);
    r.wait();
    CHECK(r.outcome<flow::Connected>().stream.live());
    CHECK(r.d.addr == "127.0.0.1:" + std::to_string(up.port));
    CHECK(r.d.verdict.reason == rules::Reason::AllowedByRule);
    CHECK(r.phases == std::vector<Phase>{Phase::Judging, Phase::Dialing});
  }
  SUBCASE("connection refused: DialFailed with the libuv error") {
    uint16_t closed = 0;
    {
      rig::Upstream gone;
      closed = gone.port;
    }
    Run r(rig::config(rules::Action::Deny, {"127.0.0.1"}));
    r.start("127.0.0.1", closed);
    r.wait();
    auto& f = r.outcome<flow::DialFailed>();
    CHECK(f.reason == rules::Reason::ConnectFailed);
    CHECK(f.uv_error == UV_ECONNREFUSED);
    CHECK(f.detail.find("cannot connect to 127.0.0.1:" + std::to_string(closed)) != std::string::npos);
  }
  SUBCASE("a name that does not resolve") {
    Run r(rig::config(rules::Action::Deny, {"nowhere.test"}));
    r.start("nowhere.test", up.port);
    r.wait();
    auto& f = r.outcome<flow::DialFailed>();
    CHECK(f.reason == rules::Reason::DnsFailed);
    CHECK(f.detail == "sluice: cannot resolve nowhere.test: NXDOMAIN");
  }
  SUBCASE("before_dial keeps the owner's connection: Reused, nothing dialed") {
    Run r(rig::config(rules::Action::Deny, {"127.0.0.1"}));
    int asked = 0;
    r.start("127.0.0.1", up.port, [&] { return ++asked == 1; });
    r.outcome<flow::Reused>();
    CHECK(asked == 1);
    up.pump();
    CHECK(up.conns.empty());
  }
}

TEST_CASE("target flow: the dialer exists only from a dial until the owner releases it") {
  rig::Upstream up;
  SUBCASE("a refusal makes none") {
    Run r(rig::config(rules::Action::Deny, {"127.0.0.1"}, {"denied.test"}));
    r.start("denied.test", up.port);
    r.outcome<flow::Refused>();
    CHECK_FALSE(r.flow->holds_dialer());
  }
  SUBCASE("released after a connection; the next run dials with a new one") {
    Run r(rig::config(rules::Action::Deny, {"127.0.0.1"}));
    r.start("127.0.0.1", up.port);
    CHECK(r.flow->holds_dialer());
    r.flow->release_dialer();  // a no-op while dialing
    CHECK(r.flow->holds_dialer());
    r.wait();
    CHECK(r.outcome<flow::Connected>().stream.live());
    r.flow->release_dialer();
    CHECK_FALSE(r.flow->holds_dialer());
    r.outcomes.clear();
    r.start("127.0.0.1", up.port);
    r.wait();
    CHECK(r.outcome<flow::Connected>().stream.live());
    CHECK(r.flow->holds_dialer());
  }
}

TEST_CASE("target flow: ask answered allow dials, deny refuses") {
  rig::Upstream up;
  Run r(rig::config(rules::Action::Ask, {}));
  r.start("ask.test", up.port);
  CHECK(r.outcomes.empty());
  CHECK(r.flow->phase() == Phase::Asking);
  REQUIRE(r.w.asks.size() == 1);
  CHECK(r.w.asks[0].request.host == "ask.test");
  CHECK(r.w.asks[0].request.port == up.port);
  CHECK(r.w.asks[0].request.kind == "connect");
  CHECK(r.d.question == 101);
  SUBCASE("allow") {
    r.w.answer(rules::Action::Allow);
    r.wait();
    CHECK(r.outcome<flow::Connected>().stream.live());
    CHECK(r.d.verdict.reason == rules::Reason::AskAllowed);
    CHECK(r.d.ask_ms >= 0);
    CHECK(r.phases == std::vector<Phase>{Phase::Judging, Phase::Asking, Phase::Dialing});
  }
  SUBCASE("deny") {
    r.w.answer(rules::Action::Deny);
    auto& refused = r.outcome<flow::Refused>();
    CHECK(refused.reason == rules::Reason::AskDenied);
    CHECK(refused.cause == Termination::Refused);
    CHECK(r.w.cancelled.empty());  // an answered question is not left
  }
}

TEST_CASE("target flow: nobody answers in time, nobody can be asked, the owner stops") {
  auto cfg = rig::config(rules::Action::Ask, {});
  cfg->limits.ask_timeout_ms = 30;
  SUBCASE("ask timeout: refused with its own cause, the question left as a timeout") {
    Run r(cfg);
    r.start("ask.test", 443);
    r.wait();
    auto& refused = r.outcome<flow::Refused>();
    CHECK(refused.reason == rules::Reason::AskTimeout);
    CHECK(refused.cause == Termination::AskTimeout);
    REQUIRE(r.w.cancelled.size() == 1);
    CHECK(r.w.cancelled[0].timeout);
    CHECK(r.w.asks.empty());
    CHECK(r.d.ask_ms >= 25);
  }
  SUBCASE("nobody can be asked: refused at once") {
    Run r(cfg);
    r.w.answerable = false;
    r.start("ask.test", 443);
    CHECK(r.outcome<flow::Refused>().reason == rules::Reason::AskUnavailable);
  }
  SUBCASE("stop() while asking: the question is left (not as a timeout), no outcome follows") {
    Run r(cfg);
    r.start("ask.test", 443);
    r.flow->stop();
    REQUIRE(r.w.cancelled.size() == 1);
    CHECK_FALSE(r.w.cancelled[0].timeout);
    r.w.run_until([] { return false; }, 80);  // well past the ask timeout
    CHECK(r.outcomes.empty());
  }
}

TEST_CASE("target flow: a sandbox's listener carries its config and overlay, judged and dialed by them") {
  rig::Upstream up;
  auto overlay = std::make_shared<rules::PolicyOverlay>();
  overlay->allow.add(rules::parse_pattern("127.0.0.1").value());
  overlay->deny.add(rules::parse_pattern("denied-here.test").value());
  auto sandbox = std::make_shared<ListenerInfo>();
  sandbox->name = "sb";
  auto lc = std::make_shared<rules::ListenerConfig>();
  lc->name = "sb";
  lc->policy = "p";
  sandbox->sandbox = lc;
  sandbox->overlay = overlay;
  // Not in the snapshot's listeners: found through the listener itself.
  auto cfg = rig::config(rules::Action::Deny, {});
  CHECK(find_listener(*cfg, *sandbox) == lc.get());
  CHECK(find_listener(*cfg, *rig::client_info(1).listener) == &cfg->listeners[0]);

  SUBCASE("its allow entry: judged allowed, and the loopback address it names is dialed") {
    Run r(cfg);
    r.client.listener = sandbox;
    r.start("127.0.0.1", up.port);
    r.wait();
    CHECK(r.outcome<flow::Connected>().stream.live());
    CHECK(r.d.verdict.reason == rules::Reason::AllowedByRule);
    CHECK(r.d.verdict.rule == "127.0.0.1");
  }
  SUBCASE("another listener of the same policy: not allowed") {
    Run r(cfg);
    r.start("127.0.0.1", up.port);
    CHECK(r.outcome<flow::Refused>().reason == rules::Reason::NotInAllowlist);
  }
  SUBCASE("its deny entry wins over the policy's default allow") {
    Run r(rig::config(rules::Action::Allow, {}));
    r.client.listener = sandbox;
    r.start("denied-here.test", up.port);
    CHECK(r.outcome<flow::Refused>().reason == rules::Reason::DeniedByRule);
  }
}
