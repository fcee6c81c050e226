#include "bench/report.hpp"

#include <cmath>
#include <cstdio>

#include "rules/json_escape.hpp"

namespace sluice::bench {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string json_str(const std::string& s) {
  std::string o;
  rules::append_json_string(o, s);
  return o;
}

std::string json_num(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt("%.6g", v);
}

// A SOCKS5 scenario names its TCP proxy as socks5h://; the same endpoint serves both.
std::string proxy_name(const Options& o) {
  std::string d = o.proxy.describe();
  if (uses_socks(o.scenario) && d.rfind("http://", 0) == 0) return "socks5h://" + d.substr(7);
  return d;
}

std::string where(const Result& r) {
  const Options& o = r.options;
  std::string tls = o.tls() ? " (TLS" + (o.sni.empty() ? std::string() : ", SNI " + o.sni) + ")" : "";
  return (o.direct ? "direct -> " : "via " + proxy_name(o) + " -> ") + o.target.authority() + tls;
}

std::string latency_row(const Histogram& h) {
  if (h.count() == 0) return "no samples";
  return "p50 " + fmt("%.1f", us(h.percentile(50))) + "  p90 " + fmt("%.1f", us(h.percentile(90))) + "  p99 " +
         fmt("%.1f", us(h.percentile(99))) + "  p99.9 " + fmt("%.1f", us(h.percentile(99.9))) + "  max " +
         fmt("%.1f", us(h.max())) + "  mean " + fmt("%.1f", h.mean() / 1000.0);
}

std::string latency_json(const Histogram& h) {
  return "{\"count\":" + std::to_string(h.count()) + ",\"p50\":" + json_num(us(h.percentile(50))) +
         ",\"p90\":" + json_num(us(h.percentile(90))) + ",\"p99\":" + json_num(us(h.percentile(99))) +
         ",\"p99_9\":" + json_num(us(h.percentile(99.9))) + ",\"max\":" + json_num(us(h.max())) +
         ",\"mean\":" + json_num(h.mean() / 1000.0) + "}";
}

double per_10k(double cpu, uint64_t ops) { return ops ? cpu / static_cast<double>(ops) * 1e4 : NAN; }
double per_gib(double cpu, uint64_t bytes) { return bytes ? cpu / (static_cast<double>(bytes) / kGiB) : NAN; }

}  // namespace

std::string render_text(const Result& r) {
  const Options& o = r.options;
  std::string t;
  t += std::string("sluice bench ") + scenario_name(o.scenario) + "  " + where(r) + "\n";
  t += "load        " +
       std::string(o.rate > 0 ? "open loop at " + fmt("%.0f", o.rate) + " ops/s, up to " : "closed loop, ") +
       std::to_string(o.concurrency) + " connections, " + std::to_string(o.threads) + " thread(s), " +
       fmt("%.1f", o.duration_s) + " s limit\n";
  t += "done        " + std::to_string(r.ops_ok) + " ok, " + std::to_string(r.ops_failed) + " failed, " +
       std::to_string(r.aborted) + " cut off at the end";
  if (o.rate > 0) t += ", " + std::to_string(r.unsent) + " scheduled but never sent";
  if (r.retries) t += ", " + std::to_string(r.retries) + " resent after a silent keep-alive close";
  t += " in " + fmt("%.2f", r.elapsed_s) + " s\n";
  t += "rate        " + fmt("%.1f", r.ops_per_s()) + " ops/s, " + fmt("%.1f", r.mb_per_s()) + " MB/s of body (" +
       std::to_string(r.bytes) + " bytes)\n";
  t += "latency us  " + latency_row(r.latency) + "\n";
  if (o.rate > 0) t += "service us  " + latency_row(r.service) + "   (from the actual send: hides queueing)\n";
  t += "errors      ";
  if (r.errors.total == 0) {
    t += "none";
  } else {
    bool first = true;
    for (const auto& [k, n] : r.errors.by_key) {
      t += (first ? "" : ", ") + k + ": " + std::to_string(n);
      first = false;
    }
  }
  t += "\n";
  if (!o.pids.empty()) {
    if (!r.proxy_measured) {
      t += "proxy       not measured: " + r.proxy_error + "\n";
    } else {
      double cpu = r.proxy_cpu_s();
      t += "proxy       CPU " + fmt("%.3f", cpu) + " s: " + fmt("%.3f", per_10k(cpu, r.ops_ok)) + " CPU-s per 10k ops";
      if (r.bytes) t += ", " + fmt("%.3f", per_gib(cpu, r.bytes)) + " CPU-s per GiB";
      t += "; RSS " + fmt("%.1f", static_cast<double>(r.proxy_after.rss_kib) / 1024.0) + " MiB, peak " +
           fmt("%.1f", static_cast<double>(r.proxy_after.hwm_kib) / 1024.0) + " MiB\n";
      if (o.scenario == Scenario::IdleTunnels) {
        t += "idle        " + std::to_string(r.tunnels_held) + " tunnels held; proxy RSS " +
             fmt("%.1f", static_cast<double>(r.proxy_before.rss_kib) / 1024.0) + " -> " +
             fmt("%.1f", static_cast<double>(r.proxy_at_hold.rss_kib) / 1024.0) +
             " MiB: " + fmt("%.0f", r.rss_per_tunnel()) + " bytes per tunnel\n";
      }
    }
  }
  t += "client      CPU " + fmt("%.3f", r.client_cpu_s) + " s\n";
  return t;
}

std::string render_json(const Result& r) {
  const Options& o = r.options;
  std::string j = "{";
  j += "\"scenario\":" + json_str(scenario_name(o.scenario));
  j += ",\"mode\":" + json_str(o.direct ? "direct" : "proxy");
  j += std::string(",\"tls\":") + (o.tls() ? "true" : "false");
  j += ",\"proxy\":" + (o.direct ? std::string("null") : json_str(proxy_name(o)));
  j += ",\"target\":" + json_str(o.target.authority());
  j += ",\"loop\":" + json_str(o.rate > 0 ? "open" : "closed");
  j += ",\"rate\":" + json_num(o.rate);
  j += ",\"concurrency\":" + std::to_string(o.concurrency);
  j += ",\"threads\":" + std::to_string(o.threads);
  j += ",\"duration_limit_s\":" + json_num(o.duration_s);
  j += ",\"size\":" + std::to_string(o.size);
  j += ",\"elapsed_s\":" + json_num(r.elapsed_s);
  j += ",\"ops\":" + std::to_string(r.ops_ok);
  j += ",\"failed\":" + std::to_string(r.ops_failed);
  j += ",\"aborted\":" + std::to_string(r.aborted);
  j += ",\"unsent\":" + std::to_string(r.unsent);
  j += ",\"keepalive_retries\":" + std::to_string(r.retries);
  j += ",\"ops_per_s\":" + json_num(r.ops_per_s());
  j += ",\"bytes\":" + std::to_string(r.bytes);
  j += ",\"mb_per_s\":" + json_num(r.mb_per_s());
  j += ",\"latency_us\":" + latency_json(r.latency);
  j += ",\"service_us\":" + latency_json(r.service);
  j += ",\"errors\":{";
  bool first = true;
  for (const auto& [k, n] : r.errors.by_key) {
    j += (first ? "" : ",") + json_str(k) + ":" + std::to_string(n);
    first = false;
  }
  j += "}";
  j += ",\"client_cpu_s\":" + json_num(r.client_cpu_s);
  if (r.proxy_measured) {
    double cpu = r.proxy_cpu_s();
    j += ",\"proxy_cpu_s\":" + json_num(cpu);
    j += ",\"proxy_cpu_s_per_10k_ops\":" + json_num(per_10k(cpu, r.ops_ok));
    j += ",\"proxy_cpu_s_per_gib\":" + json_num(per_gib(cpu, r.bytes));
    j += ",\"proxy_rss_before_kib\":" + std::to_string(r.proxy_before.rss_kib);
    j += ",\"proxy_rss_after_kib\":" + std::to_string(r.proxy_after.rss_kib);
    j += ",\"proxy_peak_rss_kib\":" + std::to_string(r.proxy_after.hwm_kib);
    if (o.scenario == Scenario::IdleTunnels) {
      j += ",\"tunnels_held\":" + std::to_string(r.tunnels_held);
      j += ",\"proxy_rss_held_kib\":" + std::to_string(r.proxy_at_hold.rss_kib);
      j += ",\"rss_per_tunnel_bytes\":" + json_num(r.rss_per_tunnel());
    }
  } else if (!o.pids.empty()) {
    j += ",\"proxy_error\":" + json_str(r.proxy_error);
  }
  j += "}";
  return j;
}

}  // namespace sluice::bench
