// `sluice bench`: the load generator front end and the built-in upstream. The logic is in bench/.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/http.hpp"
#include "bench/loadgen.hpp"
#include "bench/lua_calls.hpp"
#include "bench/report.hpp"
#include "bench/sandboxes.hpp"
#include "bench/upstream.hpp"
#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/control_client.hpp"

namespace sluice::cli {

namespace {

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "sluice bench: %s (see sluice bench --help)\n", msg.c_str());
  return 2;
}

bool parse_size(const std::string& s, uint64_t& out) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  auto n = bench::parse_u64(s.substr(0, digits));
  if (!n) return false;
  std::string suffix = s.substr(digits);
  int shift = 0;
  if (suffix.empty() || suffix == "B")
    shift = 0;
  else if (suffix == "K" || suffix == "k" || suffix == "KiB")
    shift = 10;
  else if (suffix == "M" || suffix == "MiB")
    shift = 20;
  else if (suffix == "G" || suffix == "GiB")
    shift = 30;
  else
    return false;
  if (*n > (UINT64_MAX >> shift)) return false;
  out = *n << shift;
  return true;
}

bool parse_double(const std::string& s, double& out) {
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end && *end == '\0';
}

bool parse_int(const std::string& s, int& out) {
  auto n = bench::parse_u64(s);
  if (!n || *n > 1'000'000'000) return false;
  out = static_cast<int>(*n);
  return true;
}

int lua_main(const Args& a) {
  bench::LuaCallOptions o;
  o.rules = a.all("--rules");
  if (o.rules.empty()) return usage_error("lua needs --rules FILE (repeatable)");
  if (a.has("--calls")) {
    auto n = bench::parse_u64(a.one("--calls"));
    if (!n) return usage_error("bad --calls");
    o.calls = *n;
  }
  if (a.has("--duration") && !parse_double(a.one("--duration"), o.max_seconds)) return usage_error("bad --duration");
  if (a.has("--hosts") && !parse_int(a.one("--hosts"), o.hosts)) return usage_error("bad --hosts");
  o.cold = a.has("--cold");
  if (o.cold && !a.has("--calls")) o.calls = 5000;
  bench::LuaCallResult r = bench::run_lua_calls(o);
  std::fputs((a.has("--json") ? bench::render_lua_json(o, r) + "\n" : bench::render_lua_text(o, r)).c_str(), stdout);
  return r.error.empty() ? 0 : 1;
}

int sandboxes_main(const Args& a) {
  bench::SandboxOptions o;
  if (!a.has("--control")) return usage_error("sandboxes needs --control SOCKET (a `sluice serve --control`)");
  if (a.one("--pid").empty() || !parse_int(a.one("--pid"), o.pid) || o.pid <= 0)
    return usage_error("sandboxes measures the proxy's memory: give --pid");
  bench::Endpoint target;
  if (!a.has("--target")) return usage_error("--target HOST:PORT is required");
  if (std::string err = bench::parse_target(a.one("--target"), target); !err.empty())
    return usage_error("--target: " + err);
  o.target_host = target.host;
  o.target_port = target.port;
  o.policy = a.one("--policy", "default");
  if (a.has("--sandboxes") && (!parse_int(a.one("--sandboxes"), o.sandboxes) || o.sandboxes < 1 || o.sandboxes > 20000))
    return usage_error("--sandboxes: 1 to 20000");
  if (a.has("--requests") && (!parse_int(a.one("--requests"), o.requests) || o.requests < 1 || o.requests > 1000000))
    return usage_error("bad --requests");
  if (a.has("--sample") && (!parse_int(a.one("--sample"), o.sample) || o.sample < 1))
    return usage_error("bad --sample");
  if (a.has("--concurrency") &&
      (!parse_int(a.one("--concurrency"), o.push_connections) || o.push_connections < 1 || o.push_connections > 1000))
    return usage_error("--concurrency: 1 to 1000");
  if (a.has("--duration") && !parse_double(a.one("--duration"), o.max_seconds)) return usage_error("bad --duration");
  ControlClient client(a.one("--control"));
  client.set_timeout_ms(30000);
  if (std::string err = client.connect(); !err.empty()) return usage_error(err);
  bench::SandboxResult r =
      bench::run_sandboxes(o, [&](const std::string& method, const std::string& path, const std::string& body) {
        ControlResponse rep = client.request(method, path, body);
        return bench::ControlReply{rep.status, rep.body};
      });
  std::fputs((a.has("--json") ? bench::render_sandboxes_json(o, r) + "\n" : bench::render_sandboxes_text(o, r)).c_str(),
             stdout);
  return r.error.empty() && r.create_failed == 0 && r.one.failed == 0 && r.many.failed == 0 &&
                 r.one_after.failed == 0 && r.push_dropped == 0 && r.push_status == 200 && r.removed == r.created
             ? 0
             : 1;
}

int upstream_main(const Args& a) {
  std::string listen = a.one("--listen", "127.0.0.1:0");
  bench::Endpoint ep;
  if (std::string err = bench::parse_target(listen, ep, true); !err.empty()) return usage_error("--listen: " + err);
  double lifetime = 3600;
  if (a.has("--lifetime") && !parse_double(a.one("--lifetime"), lifetime)) return usage_error("bad --lifetime");
  if (lifetime <= 0 || lifetime > 86400) lifetime = 86400;
  bench::Upstream up;
  if (a.has("--tls-cert") != a.has("--tls-key")) return usage_error("give both --tls-cert and --tls-key");
  double tickets = 0;
  if (a.has("--tls-tickets") && (!parse_double(a.one("--tls-tickets"), tickets) || tickets < 0 || tickets > 8 ||
                                 tickets != static_cast<int>(tickets)))
    return usage_error("--tls-tickets must be 0 to 8");
  if (a.has("--tls-tickets") && !a.has("--tls-cert")) return usage_error("--tls-tickets needs --tls-cert");
  if (a.has("--tls-cert")) {
    if (std::string err = up.use_tls(a.one("--tls-cert"), a.one("--tls-key"), static_cast<int>(tickets));
        !err.empty()) {
      std::fprintf(stderr, "sluice bench upstream: %s\n", err.c_str());
      return 1;
    }
  }
  if (std::string err = up.listen(ep.host, ep.port); !err.empty()) {
    std::fprintf(stderr, "sluice bench upstream: %s\n", err.c_str());
    return 1;
  }
  std::printf("%d\n", up.port());
  std::fflush(stdout);
  up.run(true, lifetime);
  return 0;
}

int bench_main(const Args& a) {
  if (a.positional.size() != 1) return usage_error("expected one SCENARIO");
  if (a.positional[0] == "upstream") return upstream_main(a);
  if (a.positional[0] == "lua") return lua_main(a);
  if (a.positional[0] == "sandboxes") return sandboxes_main(a);

  bench::Options o;
  auto scenario = bench::parse_scenario(a.positional[0]);
  if (!scenario) return usage_error("unknown scenario '" + a.positional[0] + "'");
  o.scenario = *scenario;
  o.direct = a.has("--direct");
  if (o.direct == a.has("--proxy")) return usage_error("give exactly one of --proxy URL and --direct");
  if (!o.direct) {
    if (std::string err = bench::parse_proxy(a.one("--proxy"), o.proxy); !err.empty())
      return usage_error("--proxy: " + err);
  }
  if (!a.has("--target")) return usage_error("--target HOST:PORT is required");
  if (std::string err = bench::parse_target(a.one("--target"), o.target); !err.empty())
    return usage_error("--target: " + err);
  if (a.has("--concurrency") && !parse_int(a.one("--concurrency"), o.concurrency))
    return usage_error("bad --concurrency");
  if (a.has("--threads") && !parse_int(a.one("--threads"), o.threads)) return usage_error("bad --threads");
  if (a.has("--duration") && !parse_double(a.one("--duration"), o.duration_s)) return usage_error("bad --duration");
  if (a.has("--requests")) {
    auto n = bench::parse_u64(a.one("--requests"));
    if (!n) return usage_error("bad --requests");
    o.requests = *n;
  }
  if (a.has("--rate") && !parse_double(a.one("--rate"), o.rate)) return usage_error("bad --rate");
  if (a.has("--size") && !parse_size(a.one("--size"), o.size)) return usage_error("bad --size");
  if (a.has("--timeout") && !parse_int(a.one("--timeout"), o.timeout_ms)) return usage_error("bad --timeout");
  if (a.has("--hold") && !parse_double(a.one("--hold"), o.hold_s)) return usage_error("bad --hold");
  o.upload = a.has("--upload");
  o.ca_file = a.one("--ca");
  o.sni = a.one("--sni");
  o.name = a.one("--name");
  if (a.has("--ca") && o.ca_file.empty()) return usage_error("--ca needs a file");
  o.upstream_close = a.has("--close");
  for (const auto& spec : a.all("--pid")) {
    size_t start = 0;
    while (start <= spec.size()) {
      size_t comma = spec.find(',', start);
      std::string one = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      int pid = 0;
      if (!parse_int(one, pid) || pid <= 0) return usage_error("bad --pid '" + one + "'");
      o.pids.push_back(pid);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (o.scenario == bench::Scenario::IdleTunnels && o.pids.empty())
    return usage_error("idle-tunnels measures the proxy's memory: give --pid");

  std::vector<std::string> notes;
  if (std::string err = bench::finalize(o, notes); !err.empty()) return usage_error(err);
  for (const auto& n : notes) std::fprintf(stderr, "sluice bench: %s\n", n.c_str());

  bench::Result r = bench::run(o);
  if (!r.setup_error.empty()) return usage_error(r.setup_error);
  std::fputs((a.has("--json") ? bench::render_json(r) + "\n" : bench::render_text(r)).c_str(), stdout);
  return r.errors.total == 0 ? 0 : 1;
}

}  // namespace

Subcommand bench_command(CLI::App& root) {
  auto c = std::make_shared<Command>(root, "bench", "load generator and built-in upstream");
  c->description(
       "sluice bench SCENARIO (--proxy URL | --direct) --target HOST:PORT [OPTIONS]\n"
       "sluice bench upstream --listen HOST:PORT [--lifetime S] [--tls-cert FILE --tls-key FILE\n"
       "       [--tls-tickets N]]\n"
       "sluice bench lua --rules FILE... [--calls N] [--duration S] [--hosts N] [--cold] [--json]\n"
       "sluice bench sandboxes --control SOCKET --pid PID --target HOST:PORT [--sandboxes N]\n"
       "       [--policy P] [--requests N] [--sample K] [--concurrency C] [--duration S] [--json]\n"
       "\n"
       "A load generator for egress proxies. Every address must be loopback (127.0.0.0/8, ::1),\n"
       "or in 198.18.0.0/15 (RFC 2544's benchmarking range: inside `sluice run --transparent`\n"
       "the jail's fake addresses, so the load reaches sluice through the jail's rules).\n"
       "\n"
       "scenarios:\n"
       "  connect-storm      connect, CONNECT, read the 200, GET / through the tunnel, read the\n"
       "                     reply, close; repeat. Closed loop, or open loop with --rate\n"
       "  tunnel-throughput  each connection tunnels one --size transfer (GET /bytes, or POST /sink\n"
       "                     with --upload); MB/s, byte counts checked exactly\n"
       "  http-forward       keep-alive absolute-form GETs through the proxy (origin-form direct)\n"
       "  socks-storm        connect-storm with a SOCKS5 handshake instead of CONNECT: greeting,\n"
       "                     method reply, CONNECT request (the target as an IP), reply\n"
       "  socks-throughput   tunnel-throughput through a SOCKS5 tunnel\n"
       "  idle-tunnels       open --concurrency tunnels, hold them, report the proxy's RSS per\n"
       "                     tunnel (needs --pid)\n"
       "  upstream           serve GET /, GET /bytes?n=N[&close=1], POST /sink; prints the port\n"
       "                     (over TLS with --tls-cert and --tls-key)\n"
       "  lua                no network: the cost of one on_connect call of the --rules scripts\n"
       "                     for a new connection and on one that has its c, and the same loop\n"
       "                     with no rules; medians of batches of 64 calls (default 200000 calls,\n"
       "                     --duration 30 s at most per measurement, --hosts 100 target names;\n"
       "                     --cold: 8 MiB of memory written before each call, each call timed)\n"
       "  sandboxes          against a running `sluice serve --control SOCKET` (PID): --requests\n"
       "                     plain-HTTP GETs to --target through one sandbox's listener (new\n"
       "                     connection each; p50/p99); create --sandboxes N (default 1000) through\n"
       "                     POST /v1/sandboxes, each with an overlay allowing the target (timed,\n"
       "                     RSS per sandbox); the same GETs over --sample K (default 100) of the N\n"
       "                     listeners; one policy push (PUT of --policy's allow list, 1000\n"
       "                     entries) while --concurrency C (default 32) keep-alive connections\n"
       "                     keep sending (failed requests are drops); remove all but the first\n"
       "                     (timed), the GETs on the first alone again, remove it.\n"
       "                     --duration S bounds each step (default 120). The policy must not\n"
       "                     allow the target itself; serve needs descriptors for N sockets.\n"
       "\n"
       "With --ca FILE, connect-storm, http-forward, tunnel-throughput and the SOCKS5 twins\n"
       "speak TLS inside the tunnel (or straight to the target with --direct), trusting only\n"
       "FILE: a new TLS connection per operation, keep-alive requests inside one TLS connection\n"
       "per worker, a download through TLS; a failed handshake counts as tls-failed.")
      .positionals("SCENARIO", "one of the scenarios above")
      .value("--proxy", "URL",
             "http://[USER:PASSWORD@]HOST:PORT (or socks5h://...), HOST:PORT or\n"
             "unix:PATH; credentials go out as Proxy-Authorization: Basic, or as\n"
             "SOCKS5 username/password (the scenario says which handshake)")
      .flag("--direct", "no proxy: the same load straight at the target (the baseline)")
      .value("--target", "HOST:PORT", "the upstream, e.g. one started with `sluice bench upstream`")
      .value("--concurrency", "N",
             "connections (default 16; 512 with --rate; 1 for tunnel-throughput;\n"
             "1000 for idle-tunnels); at most 20000")
      .value("--threads", "N", "client event loops (default 1)")
      .value("--duration", "S", "time limit in seconds (default 10, at most 300)")
      .value("--requests", "N",
             "operation limit (default: none but the time limit; tunnel-throughput:\n"
             "one transfer per connection)")
      .value("--rate", "R",
             "open loop at R operations/s; latency counts from each scheduled start,\n"
             "so a stalled proxy cannot hide its queue (coordinated omission)")
      .value("--size", "BYTES", "tunnel-throughput bytes per transfer (default 1G; K, M, G suffixes)")
      .flag("--upload", "tunnel-throughput: upload to the sink instead of downloading")
      .flag("--close", "tunnel-throughput: the upstream closes right after its last byte")
      .value("--timeout", "MS", "per-operation inactivity timeout (default 10000)")
      .value("--ca", "FILE", "TLS inside the tunnel (or direct), trusting the PEM certificates in FILE")
      .value("--sni", "NAME",
             "with --ca: the target's name, as in https://NAME:PORT/ (CONNECT, Host,\n"
             "SNI, certificate check; the target's IP is still what --direct dials);\n"
             "default: the IP, no SNI, the IP checked against the certificate")
      .value("--name", "NAME",
             "without --ca: the target's name, as in http://NAME:PORT/ (CONNECT and\n"
             "Host; the target's IP is still what --direct dials)")
      .value("--hold", "S", "idle-tunnels: how long to hold the tunnels once open (default 1)")
      .value("--pid", "PID[,PID]", "proxy processes: CPU seconds (per 10k ops, per GiB) and RSS (repeatable)", true)
      .flag("--json", "print one JSON object instead of the table")
      .value("--listen", "HOST:PORT", "upstream: where to listen (default 127.0.0.1:0)")
      .value("--lifetime", "S", "upstream: exit after S seconds (default 3600)")
      .value("--tls-cert", "FILE", "upstream: serve over TLS with this PEM certificate (chain)")
      .value("--tls-key", "FILE", "upstream: the PEM key of --tls-cert")
      .value("--tls-tickets", "N", "upstream: TLS 1.3 session tickets per full handshake (default 0)")
      .value("--rules", "FILE", "lua: a rule script (repeatable)", true)
      .value("--control", "SOCKET", "sandboxes: the control socket of the sluice serve to measure")
      .value("--sandboxes", "N", "sandboxes: how many to create (default 1000, at most 20000)")
      .value("--policy", "P", "sandboxes: the sandboxes' base policy, replaced in the push (default: default)")
      .value("--sample", "K", "sandboxes: listeners the latency and push steps use (default 100)")
      .value("--calls", "N", "lua: calls per measurement (default 200000; 5000 with --cold)")
      .value("--hosts", "N", "lua: distinct target names (default 100)")
      .flag("--cold", "lua: 8 MiB of memory written before each call, each call timed")
      .footer("Exit status: 0 when every operation succeeded, 1 when some failed, 2 on usage errors.");
  return {c, bench_main};
}

}  // namespace sluice::cli
