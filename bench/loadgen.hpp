// The load generator: scenarios run against a proxy (TCP or unix socket) or directly against
// the target (the baseline), on one or a few libuv loops. Every run is bounded in time and in
// count: finalize() clamps the options to hard caps whatever the user asked for.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/errors.hpp"
#include "bench/histogram.hpp"
#include "bench/net.hpp"
#include "bench/procstat.hpp"

namespace sluice::bench {

enum class Scenario { ConnectStorm, TunnelThroughput, HttpForward, IdleTunnels, SocksStorm, SocksThroughput };

std::optional<Scenario> parse_scenario(std::string_view name);
const char* scenario_name(Scenario s);
// The SOCKS5 scenarios are their CONNECT twins with another tunnel handshake.
bool uses_socks(Scenario s);
Scenario tunnel_twin(Scenario s);  // SocksStorm -> ConnectStorm, SocksThroughput -> TunnelThroughput

// Hard caps, applied whatever the command line says.
struct Caps {
  static constexpr double kMaxDurationS = 300;
  static constexpr uint64_t kMaxRequests = 100'000'000;
  static constexpr int kMaxConcurrency = 20'000;
  static constexpr int kMaxThreads = 16;
  static constexpr double kMaxRate = 1'000'000;
  static constexpr uint64_t kMaxSize = uint64_t{64} << 30;
  static constexpr int kMaxTimeoutMs = 60'000;
  static constexpr double kMaxHoldS = 60;
};

struct Options {
  Scenario scenario = Scenario::ConnectStorm;
  bool direct = false;  // no proxy: the same load straight at the target
  Endpoint proxy;       // unused when direct
  Endpoint target;      // the upstream, as the proxy is asked to reach it
  int concurrency = 0;  // 0: the scenario's default (see finalize)
  int threads = 1;      // client loops; idle-tunnels always uses one
  double duration_s = 10;
  uint64_t requests = 0;              // 0: no count limit of its own (the duration and kMaxRequests bound it)
  double rate = 0;                    // offered ops/s (open loop); 0: closed loop
  uint64_t size = uint64_t{1} << 30;  // tunnel-throughput: bytes per transfer
  bool upload = false;                // tunnel-throughput: POST /sink instead of GET /bytes
  bool upstream_close = false;        // tunnel-throughput: the upstream closes right after the last byte
  int timeout_ms = 10'000;            // per-operation inactivity timeout
  double hold_s = 1;                  // idle-tunnels: how long to hold once all are open
  std::vector<int> pids;              // proxy processes to measure (CPU, RSS)
  // TLS inside the tunnel (or straight to the target with --direct), trusting ca_file only:
  // connect-storm makes a new TLS connection per operation, http-forward keeps one TLS
  // connection per worker and sends origin-form requests inside it, tunnel-throughput
  // downloads through it. Empty: no TLS.
  std::string ca_file;
  // The name the client uses for the target, as in https://NAME:PORT/: the CONNECT authority,
  // the Host header, the SNI and the name checked in the certificate (the bench still dials the
  // proxy, or the target's IP with --direct). Empty: the target's IP everywhere, no SNI sent,
  // and the IP checked against the certificate's IP SANs.
  std::string sni;
  // Without TLS: the name the client uses for the target, as in http://NAME:PORT/: the CONNECT
  // authority and the Host header (the bench still dials the proxy, or the target's IP with
  // --direct). Empty: the target's IP. With --ca, --sni is that name.
  std::string name;
  bool tls() const { return !ca_file.empty(); }
};

// Applies scenario defaults and the hard caps. Returns "" or an error; `notes` receives one line
// per value that was clamped.
std::string finalize(Options& o, std::vector<std::string>& notes);

struct Result {
  Options options;
  std::string setup_error;  // the run could not start (e.g. an unreadable --ca); nothing measured
  double elapsed_s = 0;
  uint64_t ops_ok = 0;
  uint64_t ops_failed = 0;
  uint64_t aborted = 0;  // operations cut off by the end of the run (not errors)
  uint64_t unsent = 0;   // open loop: operations scheduled before the end but never started
  uint64_t retries = 0;  // http-forward: requests resent on a new connection because the proxy
                         // closed a kept-alive one without answering (what HTTP clients do)
  uint64_t bytes = 0;    // body bytes moved: downloaded, or uploaded and acknowledged
  Histogram latency;     // nanoseconds, from the scheduled start (open loop) or the actual start
  Histogram service;     // nanoseconds, from the actual start: what a closed-loop tool would show
  ErrorCounts errors;
  uint64_t tunnels_held = 0;  // idle-tunnels: open and idle when the proxy was measured
  double client_cpu_s = 0;

  bool proxy_measured = false;
  std::string proxy_error;
  ProcSample proxy_before, proxy_after;
  ProcSample proxy_at_hold;  // idle-tunnels: with every tunnel open

  double ops_per_s() const { return elapsed_s > 0 ? static_cast<double>(ops_ok) / elapsed_s : 0; }
  double mb_per_s() const { return elapsed_s > 0 ? static_cast<double>(bytes) / 1e6 / elapsed_s : 0; }
  double proxy_cpu_s() const { return proxy_after.cpu_s - proxy_before.cpu_s; }
  // Idle-tunnels: proxy RSS growth per held tunnel, in bytes; negative when unmeasured.
  double rss_per_tunnel() const;
};

// Runs the scenario to completion (blocking). The options must have been finalized.
Result run(const Options& options);

}  // namespace sluice::bench
