// Counters for GET /v1/metrics. Each worker keeps its own WorkerMetrics and is
// the only thread that touches it (plain integers, no atomics, no locks on the
// data path); a scrape asks every worker for a copy through Worker::post and
// adds the copies up. Histograms have fixed log buckets, so copies merge by
// adding bucket counts.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/decision.hpp"
#include "proxy/termination.hpp"
#include "rules/reason.hpp"

namespace sluice::proxy {

struct Decision;
struct Outcome;

// Latencies in fixed power-of-two buckets: upper bounds 100 µs × 2^k (k = 0..16, so
// 0.1 ms to 6.55 s), then +Inf.
class LatencyHistogram {
 public:
  static constexpr size_t kBuckets = 17;
  static double bound_seconds(size_t i);  // upper bound of bucket i (< kBuckets)
  void observe_ms(double ms);
  void merge(const LatencyHistogram& o);
  // Per bucket (not cumulative); [kBuckets] holds what exceeds the last bound.
  std::array<uint64_t, kBuckets + 1> counts{};
  double sum_seconds = 0;
  uint64_t count = 0;
};

struct ListenerMetrics {
  uint64_t accepted = 0;
  uint64_t bytes_up = 0;    // client to upstream
  uint64_t bytes_down = 0;  // upstream to client
  // Decisions by connection kind and verdict (ConnKind x {allow, deny, ask}): one per CONNECT,
  // SOCKS request, or plain-HTTP request. Arrays indexed by the enums: no key built per decision.
  std::array<std::array<uint64_t, 3>, kConnKindCount> decisions{};
};

// One worker's loop-probe maxima since the previous scrape.
struct LoopMax {
  double lag_ms = 0;
  double busy_ms = 0;
  void merge(const LoopMax& o) {
    if (o.lag_ms > lag_ms) lag_ms = o.lag_ms;
    if (o.busy_ms > busy_ms) busy_ms = o.busy_ms;
  }
};

struct WorkerMetrics {
  std::unordered_map<std::string, ListenerMetrics> listeners;
  std::array<uint64_t, rules::kReasonCount> denials{};  // by the reason the client was given
  std::array<uint64_t, kTerminationCount> closes{};     // by termination cause
  LatencyHistogram dns;
  LatencyHistogram connect;
  uint64_t lua_errors = 0;
  uint64_t lua_budget_hits = 0;
  uint64_t credential_misuse = 0;  // stand-ins refused (credential-misuse), requests and tunnels
  // The loop-lag probe (serve --loop-probe-ms): how late its timer fired (this includes time
  // the thread waited for a CPU), and the most CPU time one loop turn took (what sluice's own
  // code held the loop for).
  LatencyHistogram loop_lag;
  LoopMax loop_max;  // since the last scrape
  bool loop_probe = false;

  void accepted(const std::string& listener) { ++listeners[listener].accepted; }
  void decided(const std::string& listener, const Decision& d, const Outcome& o);
  void closed(const std::string& listener, uint64_t up, uint64_t down, Termination cause);
  void merge(const WorkerMetrics& o);
};

// Process-wide values that are not per-worker counters.
struct GlobalMetrics {
  double uptime_seconds = 0;
  std::string version;
  size_t workers = 0;
  size_t open_connections = 0;
  std::vector<std::pair<std::string, size_t>> open_by_listener;
  size_t asks_pending = 0;
  uint64_t questions_total = 0;
  // "verdict|remember|by" -> answers (by: api, terminal, timeout)
  std::vector<std::pair<std::string, uint64_t>> answers;
  int event_readers = 0;
  uint64_t event_readers_dropped = 0;
  uint64_t events_dropped = 0;
  std::vector<std::pair<std::string, uint64_t>> policy_versions;
  std::vector<LoopMax> loop_max;  // per worker, when the probe runs
};

// The Prometheus text exposition format (version 0.0.4).
std::string render_prometheus(const WorkerMetrics& total, const GlobalMetrics& g);

// A label value with \, " and newline escaped.
std::string prometheus_label(const std::string& v);

}  // namespace sluice::proxy
