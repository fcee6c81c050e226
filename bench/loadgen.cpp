// The load generator: divides the load over threads (one libuv loop and Runner each, see
// loadgen_runner.hpp), measures the proxy around it, and merges the parts into one Result.
#include "bench/loadgen.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <memory>
#include <thread>

#include "bench/loadgen_runner.hpp"

namespace sluice::bench {

namespace {

template <typename T>
T share(T total, int parts, int index) {
  return total / static_cast<T>(parts) + (static_cast<T>(index) < total % static_cast<T>(parts) ? 1 : 0);
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

bool uses_socks(Scenario s) { return s == Scenario::SocksStorm || s == Scenario::SocksThroughput; }

Scenario tunnel_twin(Scenario s) {
  if (s == Scenario::SocksStorm) return Scenario::ConnectStorm;
  if (s == Scenario::SocksThroughput) return Scenario::TunnelThroughput;
  return s;
}

std::optional<Scenario> parse_scenario(std::string_view name) {
  if (name == "socks-storm") return Scenario::SocksStorm;
  if (name == "socks-throughput") return Scenario::SocksThroughput;
  if (name == "connect-storm") return Scenario::ConnectStorm;
  if (name == "tunnel-throughput") return Scenario::TunnelThroughput;
  if (name == "http-forward") return Scenario::HttpForward;
  if (name == "idle-tunnels") return Scenario::IdleTunnels;
  return std::nullopt;
}

const char* scenario_name(Scenario s) {
  switch (s) {
    case Scenario::ConnectStorm: return "connect-storm";
    case Scenario::TunnelThroughput: return "tunnel-throughput";
    case Scenario::HttpForward: return "http-forward";
    case Scenario::IdleTunnels: return "idle-tunnels";
    case Scenario::SocksStorm: return "socks-storm";
    case Scenario::SocksThroughput: return "socks-throughput";
  }
  return "?";
}

std::string finalize(Options& o, std::vector<std::string>& notes) {
  auto clamp_note = [&](auto& v, auto lo, auto hi, const char* name) {
    using V = std::remove_reference_t<decltype(v)>;
    V old = v;
    v = std::clamp<V>(v, static_cast<V>(lo), static_cast<V>(hi));
    if (v != old) notes.push_back(std::string(name) + " clamped to " + std::to_string(v));
  };
  const Scenario kind = tunnel_twin(o.scenario);
  if (!(o.duration_s > 0)) return "--duration must be positive";
  if (o.rate < 0) return "--rate must not be negative";
  if (o.timeout_ms <= 0) return "--timeout must be positive";
  if (kind == Scenario::HttpForward && !o.direct && o.proxy.kind == Endpoint::Kind::Tcp && o.proxy.port == 0)
    return "no proxy given";
  if (kind == Scenario::IdleTunnels && o.rate > 0) return "idle-tunnels has no --rate";
  if (kind == Scenario::TunnelThroughput && o.rate > 0) return "tunnel-throughput has no --rate";
  if (o.tls() && o.upload) return "--upload has no TLS variant (--ca)";
  if (o.tls() && kind == Scenario::IdleTunnels) return "idle-tunnels has no TLS variant (--ca)";
  if (!o.tls() && !o.sni.empty()) return "--sni needs --ca";
  if (!o.name.empty() && !o.sni.empty()) return "give one of --name and --sni (with --ca, --sni names the target)";
  if (o.concurrency == 0) {
    switch (kind) {
      case Scenario::ConnectStorm:
      case Scenario::HttpForward: o.concurrency = o.rate > 0 ? 512 : 16; break;
      case Scenario::TunnelThroughput: o.concurrency = 1; break;
      case Scenario::IdleTunnels: o.concurrency = 1000; break;
      default: o.concurrency = 16; break;
    }
  }
  if (kind == Scenario::TunnelThroughput && o.requests == 0) {
    o.requests = static_cast<uint64_t>(std::max(o.concurrency, 1));  // one transfer per tunnel
  }
  if (kind == Scenario::IdleTunnels) {
    o.threads = 1;
    o.requests = static_cast<uint64_t>(std::max(o.concurrency, 1));
  }
  clamp_note(o.duration_s, 0.001, Caps::kMaxDurationS, "--duration");
  if (o.requests == 0) o.requests = Caps::kMaxRequests;
  clamp_note(o.requests, 1, Caps::kMaxRequests, "--requests");
  clamp_note(o.concurrency, 1, Caps::kMaxConcurrency, "--concurrency");
  clamp_note(o.threads, 1, Caps::kMaxThreads, "--threads");
  if (o.threads > o.concurrency) o.threads = o.concurrency;
  clamp_note(o.rate, 0.0, Caps::kMaxRate, "--rate");
  clamp_note(o.size, 0, Caps::kMaxSize, "--size");
  clamp_note(o.timeout_ms, 1, Caps::kMaxTimeoutMs, "--timeout");
  clamp_note(o.hold_s, 0.0, Caps::kMaxHoldS, "--hold");
  return "";
}

double Result::rss_per_tunnel() const {
  if (!proxy_measured || !proxy_at_hold.ok || tunnels_held == 0) return -1;
  return (static_cast<double>(proxy_at_hold.rss_kib) - static_cast<double>(proxy_before.rss_kib)) * 1024.0 /
         static_cast<double>(tunnels_held);
}

Result run(const Options& o) {
  raise_fd_limit();
  Result total;
  total.options = o;
  SslCtx tls_ctx;
  if (o.tls()) {
    tls_ctx = make_tls_client_ctx(o.ca_file, total.setup_error);
    if (!tls_ctx) return total;
  }
  if (!o.pids.empty()) {
    total.proxy_before = sample_procs(o.pids);
    if (!total.proxy_before.ok) total.proxy_error = total.proxy_before.error;
  }
  double cpu0 = self_cpu_seconds();

  const int threads = std::max(1, o.threads);
  std::vector<std::unique_ptr<loadgen_detail::Runner>> runners;
  for (int i = 0; i < threads; ++i) {
    int conc = share(o.concurrency, threads, i);
    uint64_t ops = share(o.requests, static_cast<uint64_t>(threads), static_cast<uint64_t>(i));
    runners.push_back(std::make_unique<loadgen_detail::Runner>(o, conc, ops, o.rate / threads, tls_ctx.get()));
  }
  if (threads == 1) {
    runners[0]->run();
  } else {
    std::vector<std::thread> ts;
    for (auto& r : runners) ts.emplace_back([&r] { r->run(); });
    for (auto& t : ts) t.join();
  }

  total.client_cpu_s = self_cpu_seconds() - cpu0;
  if (!o.pids.empty()) {
    total.proxy_after = sample_procs(o.pids);
    if (!total.proxy_after.ok && total.proxy_error.empty()) total.proxy_error = total.proxy_after.error;
    total.proxy_measured = total.proxy_before.ok && total.proxy_after.ok;
  }
  for (auto& r : runners) {
    const Result& p = r->part;
    total.elapsed_s = std::max(total.elapsed_s, p.elapsed_s);
    total.ops_ok += p.ops_ok;
    total.ops_failed += p.ops_failed;
    total.aborted += p.aborted;
    total.unsent += p.unsent;
    total.retries += p.retries;
    total.bytes += p.bytes;
    total.latency.merge(p.latency);
    total.service.merge(p.service);
    total.errors.merge(p.errors);
    total.tunnels_held += p.tunnels_held;
    if (p.proxy_at_hold.ok) total.proxy_at_hold = p.proxy_at_hold;
  }
  return total;
}

}  // namespace sluice::bench
