#include "proxy/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "proxy/decision.hpp"

namespace sluice::proxy {

double LatencyHistogram::bound_seconds(size_t i) { return 0.0001 * static_cast<double>(1u << i); }

void LatencyHistogram::observe_ms(double ms) {
  if (!(ms >= 0)) return;  // also NaN
  double s = ms / 1000.0;
  size_t i = 0;
  while (i < kBuckets && s > bound_seconds(i)) ++i;
  ++counts[i];
  sum_seconds += s;
  ++count;
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
  sum_seconds += o.sum_seconds;
  count += o.count;
}

namespace {
size_t action_index(const Decision& d) {
  if (d.verdict.reason == rules::Reason::None) return 1;  // never judged: counted as a refusal
  switch (d.verdict.action) {
    case rules::Action::Allow: return 0;
    case rules::Action::Deny: return 1;
    case rules::Action::Ask: return 2;
  }
  return 1;
}
constexpr const char* kActionText[3] = {"allow", "deny", "ask"};
}  // namespace

void WorkerMetrics::decided(const std::string& listener, const Decision& d, const Outcome&) {
  const bool allowed = d.verdict.allowed();
  ++listeners[listener].decisions[static_cast<size_t>(d.kind)][action_index(d)];
  // Every request sluice refused itself, by the reason the client was given.
  if (!allowed || d.error != rules::Reason::None)
    ++denials[rules::index_of(d.error == rules::Reason::None ? d.verdict.reason : d.error)];
  if (d.dns_ms >= 0) dns.observe_ms(d.dns_ms);
  if (d.connect_ms >= 0) connect.observe_ms(d.connect_ms);
}

void WorkerMetrics::closed(const std::string& listener, uint64_t up, uint64_t down, Termination cause) {
  ++closes[static_cast<size_t>(cause)];
  auto& l = listeners[listener];
  l.bytes_up += up;
  l.bytes_down += down;
}

void WorkerMetrics::merge(const WorkerMetrics& o) {
  for (const auto& [name, l] : o.listeners) {
    auto& mine = listeners[name];
    mine.accepted += l.accepted;
    mine.bytes_up += l.bytes_up;
    mine.bytes_down += l.bytes_down;
    for (size_t k = 0; k < kConnKindCount; ++k)
      for (size_t a = 0; a < 3; ++a) mine.decisions[k][a] += l.decisions[k][a];
  }
  for (size_t i = 0; i < denials.size(); ++i) denials[i] += o.denials[i];
  for (size_t i = 0; i < closes.size(); ++i) closes[i] += o.closes[i];
  dns.merge(o.dns);
  connect.merge(o.connect);
  lua_errors += o.lua_errors;
  lua_budget_hits += o.lua_budget_hits;
  credential_misuse += o.credential_misuse;
  loop_lag.merge(o.loop_lag);
  loop_max.merge(o.loop_max);
  loop_probe = loop_probe || o.loop_probe;
}

std::string prometheus_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

namespace {

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // labels: already formatted `a="x",b="y"` (or empty)
  void sample(const std::string& name, const std::string& labels, double v) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    char buf[64];
    if (std::floor(v) == v && std::fabs(v) < 1e15)
      std::snprintf(buf, sizeof buf, " %lld\n", static_cast<long long>(v));
    else
      std::snprintf(buf, sizeof buf, " %.9g\n", v);
    out_ += buf;
  }
  void histogram(const char* name, const char* help, const LatencyHistogram& h) {
    family(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
      cumulative += h.counts[i];
      char le[32];
      std::snprintf(le, sizeof le, "le=\"%g\"", LatencyHistogram::bound_seconds(i));
      sample(std::string(name) + "_bucket", le, static_cast<double>(cumulative));
    }
    sample(std::string(name) + "_bucket", "le=\"+Inf\"", static_cast<double>(h.count));
    sample(std::string(name) + "_sum", "", h.sum_seconds);
    sample(std::string(name) + "_count", "", static_cast<double>(h.count));
  }
  std::string out_;
};

std::string label(const char* k, const std::string& v) { return std::string(k) + "=\"" + prometheus_label(v) + "\""; }

}  // namespace

std::string render_prometheus(const WorkerMetrics& m, const GlobalMetrics& g) {
  Writer w;
  // Sorted output: stable for readers and diffs.
  std::map<std::string, const ListenerMetrics*> listeners;
  for (const auto& [name, l] : m.listeners) listeners[name] = &l;

  w.family("sluice_info", "gauge", "Version of the running sluice.");
  w.sample("sluice_info", label("version", g.version), 1);
  w.family("sluice_uptime_seconds", "gauge", "Seconds since sluice started.");
  w.sample("sluice_uptime_seconds", "", std::floor(g.uptime_seconds * 1000) / 1000);
  w.family("sluice_workers", "gauge", "Worker event loops.");
  w.sample("sluice_workers", "", static_cast<double>(g.workers));

  w.family("sluice_connections_accepted_total", "counter", "Client connections accepted, by listener.");
  for (const auto& [name, l] : listeners)
    w.sample("sluice_connections_accepted_total", label("listener", name), static_cast<double>(l->accepted));
  w.family("sluice_connections_open", "gauge", "Client connections open now, by listener.");
  for (const auto& [name, n] : g.open_by_listener)
    w.sample("sluice_connections_open", label("listener", name), static_cast<double>(n));

  w.family("sluice_decisions_total", "counter",
           "Policy decisions (one per CONNECT, SOCKS5 request or plain-HTTP request), by listener, kind and verdict.");
  for (const auto& [name, l] : listeners) {
    // Sorted by kind text, then verdict text, as before: scrapes stay stable.
    std::map<std::string, uint64_t> sorted;
    for (size_t k = 0; k < kConnKindCount; ++k)
      for (size_t a = 0; a < 3; ++a)
        if (l->decisions[k][a] != 0)
          sorted[std::string(to_string(static_cast<ConnKind>(k))) + "|" + kActionText[a]] = l->decisions[k][a];
    for (const auto& [key, n] : sorted) {
      auto bar = key.find('|');
      w.sample("sluice_decisions_total",
               label("listener", name) + "," + label("kind", key.substr(0, bar)) + "," +
                   label("verdict", key.substr(bar + 1)),
               static_cast<double>(n));
    }
  }
  w.family("sluice_denials_total", "counter",
           "Requests sluice refused itself (policy, asks, upstream failures), by the X-Sluice-Reason sent.");
  std::map<std::string, uint64_t> denials_sorted;
  for (size_t i = 1; i < m.denials.size(); ++i)
    if (m.denials[i] != 0) denials_sorted[std::string(rules::to_string(static_cast<rules::Reason>(i)))] = m.denials[i];
  for (const auto& [reason, n] : denials_sorted)
    w.sample("sluice_denials_total", label("reason", reason), static_cast<double>(n));
  w.family("sluice_connections_closed_total", "counter",
           "Client connections closed, by termination cause (the close line's cause).");
  for (Termination t : kAllTerminations)
    if (m.closes[static_cast<size_t>(t)] != 0)
      w.sample("sluice_connections_closed_total", label("cause", termination_text(t)),
               static_cast<double>(m.closes[static_cast<size_t>(t)]));

  w.family("sluice_bytes_total", "counter",
           "Bytes relayed for closed connections, by listener and direction (up: client to upstream).");
  for (const auto& [name, l] : listeners) {
    w.sample("sluice_bytes_total", label("listener", name) + ",direction=\"up\"", static_cast<double>(l->bytes_up));
    w.sample("sluice_bytes_total", label("listener", name) + ",direction=\"down\"", static_cast<double>(l->bytes_down));
  }

  w.histogram("sluice_dns_duration_seconds", "Name resolution time of judged requests.", m.dns);
  w.histogram("sluice_connect_duration_seconds", "Upstream connect time of judged requests.", m.connect);

  w.family("sluice_lua_errors_total", "counter", "Lua rule hooks that failed (error, budget or memory cap).");
  w.sample("sluice_lua_errors_total", "", static_cast<double>(m.lua_errors));
  w.family("sluice_lua_budget_hits_total", "counter", "Lua rule hooks stopped by the instruction budget.");
  w.sample("sluice_lua_budget_hits_total", "", static_cast<double>(m.lua_budget_hits));
  w.family("sluice_credential_misuse_total", "counter",
           "Stand-in credentials refused where they are not honoured (credential-misuse).");
  w.sample("sluice_credential_misuse_total", "", static_cast<double>(m.credential_misuse));

  w.family("sluice_asks_pending", "gauge", "Questions waiting for an answer.");
  w.sample("sluice_asks_pending", "", static_cast<double>(g.asks_pending));
  w.family("sluice_asks_total", "counter", "Questions asked (connections asking for one host:port share one).");
  w.sample("sluice_asks_total", "", static_cast<double>(g.questions_total));
  w.family("sluice_ask_answers_total", "counter",
           "Questions answered or expired, by verdict, remember and who answered.");
  for (const auto& [key, n] : g.answers) {
    auto a = key.find('|'), b = key.find('|', a + 1);
    w.sample("sluice_ask_answers_total",
             label("verdict", key.substr(0, a)) + "," + label("remember", key.substr(a + 1, b - a - 1)) + "," +
                 label("by", key.substr(b + 1)),
             static_cast<double>(n));
  }

  w.family("sluice_event_readers", "gauge", "Readers of GET /v1/events now.");
  w.sample("sluice_event_readers", "", g.event_readers);
  w.family("sluice_event_readers_dropped_total", "counter", "Event readers disconnected for falling behind.");
  w.sample("sluice_event_readers_dropped_total", "", static_cast<double>(g.event_readers_dropped));
  w.family("sluice_events_dropped_total", "counter", "Event lines dropped because the control loop fell behind.");
  w.sample("sluice_events_dropped_total", "", static_cast<double>(g.events_dropped));

  w.family("sluice_policy_version", "gauge", "Version of each policy: bumped by every reload or list replacement.");
  for (const auto& [name, v] : g.policy_versions)
    w.sample("sluice_policy_version", label("policy", name), static_cast<double>(v));

  if (m.loop_probe) {
    w.histogram("sluice_loop_lag_seconds", "How late the loop-lag probe's timer fired, all workers.", m.loop_lag);
    w.family("sluice_loop_lag_max_seconds", "gauge",
             "Longest loop-lag probe delay since the previous scrape, by worker.");
    for (size_t i = 0; i < g.loop_max.size(); ++i)
      w.sample("sluice_loop_lag_max_seconds", label("worker", std::to_string(i)), g.loop_max[i].lag_ms / 1000.0);
    w.family("sluice_loop_busy_max_seconds", "gauge",
             "Most CPU time one loop turn took (the worker thread's, between two waits for events) since the previous "
             "scrape, by worker.");
    for (size_t i = 0; i < g.loop_max.size(); ++i)
      w.sample("sluice_loop_busy_max_seconds", label("worker", std::to_string(i)), g.loop_max[i].busy_ms / 1000.0);
  }
  return w.out_;
}

}  // namespace sluice::proxy
