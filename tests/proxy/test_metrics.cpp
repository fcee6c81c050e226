// Per-worker counters: fixed log buckets, what a decision counts as, merging
// workers' copies, and the Prometheus text.
#include <doctest/doctest.h>

#include <string>

#include "proxy/decision.hpp"
#include "proxy/metrics.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;

namespace {

Decision decision(ConnKind kind, rules::Action action, rules::Reason reason,
                  rules::Reason error = rules::Reason::None) {
  Decision d;
  d.kind = kind;
  d.verdict.action = action;
  d.verdict.reason = reason;
  d.error = error;
  return d;
}

uint64_t decisions(WorkerMetrics& m, const char* listener, ConnKind kind, size_t action) {
  return m.listeners[listener].decisions[static_cast<size_t>(kind)][action];
}

uint64_t denials(const WorkerMetrics& m, rules::Reason r) { return m.denials[rules::index_of(r)]; }

}  // namespace

TEST_CASE("LatencyHistogram: a value lands in the first bucket whose bound it does not exceed") {
  struct Row {
    double ms;
    size_t bucket;
  };
  const Row rows[] = {
      {0.0, 0}, {0.1, 0}, {0.1001, 1}, {0.2, 1}, {0.3, 2}, {1.0, 4}, {6553.6, 16}, {6553.7, 17}, {1e9, 17},
  };
  for (const auto& row : rows) {
    CAPTURE(row.ms);
    LatencyHistogram h;
    h.observe_ms(row.ms);
    CHECK(h.counts[row.bucket] == 1);
    CHECK(h.count == 1);
  }
  LatencyHistogram h;
  h.observe_ms(-1);  // not a latency
  CHECK(h.count == 0);
  CHECK(LatencyHistogram::bound_seconds(0) == doctest::Approx(0.0001));
  CHECK(LatencyHistogram::bound_seconds(16) == doctest::Approx(6.5536));
}

TEST_CASE("WorkerMetrics: decisions by listener, kind and verdict; refusals by reason; merge") {
  WorkerMetrics a, b;
  Outcome ok{"status", 200, false};
  Decision allowed = decision(ConnKind::Connect, rules::Action::Allow, rules::Reason::AllowedByRule);
  allowed.dns_ms = 1.5;
  allowed.connect_ms = 0.3;
  a.decided("l1", allowed, ok);
  a.decided("l1", decision(ConnKind::Http, rules::Action::Deny, rules::Reason::NotInAllowlist),
            Outcome{"status", 403, true});
  // Allowed by the policy, then failed: counted as an allow decision and as a refusal by its error.
  a.decided("l1",
            decision(ConnKind::Connect, rules::Action::Allow, rules::Reason::AllowedByRule, rules::Reason::DnsFailed),
            Outcome{"status", 502, false});
  // Refused before any verdict (a bad request): verdict "deny".
  a.decided("l2", decision(ConnKind::Http, rules::Action::Deny, rules::Reason::None, rules::Reason::BadRequest),
            Outcome{"status", 400, false});
  a.accepted("l1");
  a.closed("l1", 10, 20, Termination::ClientEof);
  b.decided("l1", decision(ConnKind::Connect, rules::Action::Allow, rules::Reason::AllowedByRule), ok);
  b.accepted("l1");
  b.closed("l1", 1, 2, Termination::Refused);
  b.loop_probe = true;
  b.loop_lag.observe_ms(2);
  b.loop_max = {2, 0.25};
  a.merge(b);
  CHECK(decisions(a, "l1", ConnKind::Connect, 0) == 3);  // allow
  CHECK(decisions(a, "l1", ConnKind::Http, 1) == 1);     // deny
  CHECK(decisions(a, "l2", ConnKind::Http, 1) == 1);
  CHECK(a.listeners["l1"].accepted == 2);
  CHECK(a.listeners["l1"].bytes_up == 11);
  CHECK(a.listeners["l1"].bytes_down == 22);
  CHECK(denials(a, rules::Reason::NotInAllowlist) == 1);
  CHECK(denials(a, rules::Reason::DnsFailed) == 1);
  CHECK(denials(a, rules::Reason::BadRequest) == 1);
  CHECK(denials(a, rules::Reason::AllowedByRule) == 0);
  CHECK(a.closes[static_cast<size_t>(Termination::ClientEof)] == 1);
  CHECK(a.closes[static_cast<size_t>(Termination::Refused)] == 1);
  CHECK(a.dns.count == 1);
  CHECK(a.connect.count == 1);
  CHECK(a.loop_probe);
  CHECK(a.loop_max.lag_ms == 2);
  CHECK(a.loop_max.busy_ms == 0.25);

  GlobalMetrics g;
  g.version = "1.2.3";
  g.workers = 2;
  g.open_by_listener = {{"l1", 4}};
  g.answers = {{"allow|once|api", 3}};
  g.policy_versions = {{"p", 7}};
  g.loop_max = {{2.0, 0.25}, {0.5, 0.125}};
  std::string text = render_prometheus(a, g);
  CHECK(text.find("# TYPE sluice_decisions_total counter\n") != std::string::npos);
  CHECK(text.find("sluice_decisions_total{listener=\"l1\",kind=\"connect\",verdict=\"allow\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("sluice_denials_total{reason=\"dns-failed\"} 1\n") != std::string::npos);
  CHECK(text.find("sluice_connections_closed_total{cause=\"client-eof\"} 1\n") != std::string::npos);
  CHECK(text.find("sluice_decisions_total{listener=\"l2\",kind=\"http\",verdict=\"deny\"} 1\n") != std::string::npos);
  CHECK(text.find("sluice_bytes_total{listener=\"l1\",direction=\"down\"} 22\n") != std::string::npos);
  CHECK(text.find("sluice_connections_open{listener=\"l1\"} 4\n") != std::string::npos);
  CHECK(text.find("sluice_dns_duration_seconds_bucket{le=\"0.0016\"} 1\n") != std::string::npos);  // 1.5 ms
  CHECK(text.find("sluice_dns_duration_seconds_bucket{le=\"0.0008\"} 0\n") != std::string::npos);
  CHECK(text.find("sluice_dns_duration_seconds_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
  CHECK(text.find("sluice_dns_duration_seconds_count 1\n") != std::string::npos);
  CHECK(text.find("sluice_ask_answers_total{verdict=\"allow\",remember=\"once\",by=\"api\"} 3\n") != std::string::npos);
  CHECK(text.find("sluice_policy_version{policy=\"p\"} 7\n") != std::string::npos);
  CHECK(text.find("sluice_loop_lag_max_seconds{worker=\"0\"} 0.002\n") != std::string::npos);
  CHECK(text.find("sluice_loop_busy_max_seconds{worker=\"1\"} 0.000125\n") != std::string::npos);
  CHECK(text.find("sluice_info{version=\"1.2.3\"} 1\n") != std::string::npos);
  WorkerMetrics none;
  CHECK(render_prometheus(none, g).find("sluice_loop_lag") == std::string::npos);  // no probe, no lag lines
}

TEST_CASE("prometheus_label escapes what the format requires") {
  CHECK(prometheus_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(prometheus_label("plain") == "plain");
}
