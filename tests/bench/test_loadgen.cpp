// Tiny bounded runs of the load generator against the built-in upstream (in-process, ephemeral
// port) and a fake proxy. Counts and byte totals are exact; nothing here asserts on timing.
#include <doctest/doctest.h>

#include <cstring>
#include <ctime>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/loadgen.hpp"
#include "bench/report.hpp"
#include "bench/upstream.hpp"
#include "fake_proxy.hpp"
#include "tests/loopback_listener.hpp"

using namespace sluice::bench;

namespace {

struct LiveUpstream {
  Upstream up;
  LiveUpstream() {
    REQUIRE(up.listen("127.0.0.1", 0).empty());
    up.start();
  }
  ~LiveUpstream() { up.stop(); }
  int port() const { return up.port(); }
};

Options direct_to(int port, Scenario s) {
  Options o;
  o.scenario = s;
  o.direct = true;
  REQUIRE(parse_target("127.0.0.1:" + std::to_string(port), o.target).empty());
  o.duration_s = 20;  // a bound, never reached: the request counts end these runs
  o.timeout_ms = 5000;
  return o;
}

Options via(const std::string& proxy, int port, Scenario s) {
  Options o = direct_to(port, s);
  o.direct = false;
  REQUIRE(parse_proxy(proxy, o.proxy).empty());
  return o;
}

Result run_checked(Options o) {
  std::vector<std::string> notes;
  REQUIRE(finalize(o, notes).empty());
  Result r = run(o);
  CHECK(r.latency.count() == r.ops_ok);
  // Both renderings work on every result.
  CHECK(render_text(r).find(scenario_name(o.scenario)) != std::string::npos);
  std::string j = render_json(r);
  CHECK(j.front() == '{');
  CHECK(j.back() == '}');
  return r;
}

// A port with nobody listening: bind, read the port, close.
int dead_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("loadgen: finalize applies defaults and hard caps") {
  Options o;
  o.scenario = Scenario::ConnectStorm;
  o.direct = true;
  o.duration_s = 1e9;
  o.concurrency = 1'000'000;
  o.requests = UINT64_MAX;
  o.rate = 1e12;
  o.threads = 1000;
  std::vector<std::string> notes;
  REQUIRE(finalize(o, notes).empty());
  CHECK(o.duration_s == Caps::kMaxDurationS);
  CHECK(o.concurrency == Caps::kMaxConcurrency);
  CHECK(o.requests == Caps::kMaxRequests);
  CHECK(o.rate == Caps::kMaxRate);
  CHECK(o.threads == Caps::kMaxThreads);
  CHECK(notes.size() == 5);

  Options d;
  d.direct = true;
  notes.clear();
  REQUIRE(finalize(d, notes).empty());
  CHECK(notes.empty());
  CHECK(d.concurrency == 16);
  CHECK(d.requests == Caps::kMaxRequests);  // no count of its own: the duration bounds it

  Options t;
  t.scenario = Scenario::TunnelThroughput;
  t.direct = true;
  t.concurrency = 3;
  REQUIRE(finalize(t, notes).empty());
  CHECK(t.requests == 3);  // one transfer per tunnel

  Options bad;
  bad.direct = true;
  bad.duration_s = 0;
  CHECK_FALSE(finalize(bad, notes).empty());
  CHECK(parse_scenario("connect-storm") == Scenario::ConnectStorm);
  CHECK(parse_scenario("socks-storm") == Scenario::SocksStorm);
  CHECK(parse_scenario("socks-throughput") == Scenario::SocksThroughput);
  CHECK(std::string(scenario_name(Scenario::SocksStorm)) == "socks-storm");
  CHECK(tunnel_twin(Scenario::SocksThroughput) == Scenario::TunnelThroughput);
  CHECK(uses_socks(Scenario::SocksStorm));
  CHECK_FALSE(uses_socks(Scenario::ConnectStorm));
  CHECK_FALSE(parse_scenario("nope"));
}

TEST_CASE("loadgen direct: connect-storm counts and bytes are exact") {
  LiveUpstream u;
  Options o = direct_to(u.port(), Scenario::ConnectStorm);
  o.requests = 50;
  o.concurrency = 4;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 50);
  CHECK(r.ops_failed == 0);
  CHECK(r.errors.total == 0);
  CHECK(r.bytes == 50 * kSmallBody.size());
  CHECK(u.up.stats().requests == 50);
  CHECK(u.up.stats().connections == 50);
}

TEST_CASE("loadgen direct: http-forward reuses keep-alive connections") {
  LiveUpstream u;
  Options o = direct_to(u.port(), Scenario::HttpForward);
  o.requests = 200;
  o.concurrency = 3;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 200);
  CHECK(r.errors.total == 0);
  CHECK(r.bytes == 200 * kSmallBody.size());
  CHECK(u.up.stats().connections == 3);
}

TEST_CASE("loadgen direct: tunnel-throughput downloads and uploads are byte-exact") {
  LiveUpstream u;
  Options o = direct_to(u.port(), Scenario::TunnelThroughput);
  o.size = (1 << 20) + 7;
  o.concurrency = 2;
  o.requests = 3;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 3);
  CHECK(r.errors.total == 0);
  CHECK(r.bytes == 3 * o.size);

  SUBCASE("the upstream closes right after its last byte") {
    Options c = o;
    c.upstream_close = true;
    c.size = 4 << 20;
    c.requests = 5;
    Result rc = run_checked(c);
    CHECK(rc.ops_ok == 5);
    CHECK(rc.errors.total == 0);
    CHECK(rc.bytes == 5 * c.size);
  }
  SUBCASE("upload to the sink") {
    Options up = o;
    up.upload = true;
    up.size = 3 * (1 << 20) + 1;
    up.requests = 2;
    uint64_t sunk = u.up.stats().sink_bytes;
    Result ru = run_checked(up);
    CHECK(ru.ops_ok == 2);
    CHECK(ru.errors.total == 0);
    CHECK(ru.bytes == 2 * up.size);
    CHECK(u.up.stats().sink_bytes - sunk == 2 * up.size);
  }
}

TEST_CASE("loadgen direct: open loop runs the scheduled count") {
  LiveUpstream u;
  Options o = direct_to(u.port(), Scenario::ConnectStorm);
  o.rate = 2000;
  o.requests = 40;
  o.concurrency = 8;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 40);
  CHECK(r.unsent == 0);
  CHECK(r.service.count() == 40);
}

TEST_CASE("loadgen direct: the duration ends a run with no count limit") {
  LiveUpstream u;
  Options o = direct_to(u.port(), Scenario::HttpForward);
  o.duration_s = 0.2;
  o.concurrency = 2;
  Result r = run_checked(o);
  CHECK(r.ops_ok > 0);
  CHECK(r.errors.total == 0);
}

TEST_CASE("loadgen: refused connections and timeouts are classified") {
  Options o = direct_to(dead_port(), Scenario::ConnectStorm);
  o.requests = 5;
  o.concurrency = 2;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 0);
  CHECK(r.ops_failed == 5);
  CHECK(r.errors.get("connect-refused") == 5);

  // A listener nobody accepts from: the kernel completes the handshake, nothing ever answers.
  sluice::test::LoopbackListener silent;
  Options t = direct_to(silent.port, Scenario::ConnectStorm);
  t.requests = 2;
  t.concurrency = 2;
  t.timeout_ms = 100;
  Result rt = run_checked(t);
  CHECK(rt.ops_ok == 0);
  CHECK(rt.errors.get("timeout") == 2);
}

TEST_CASE("loadgen direct: idle-tunnels holds every tunnel and measures a pid") {
  LiveUpstream u;
  Options o = direct_to(u.port(), Scenario::IdleTunnels);
  o.concurrency = 20;
  o.hold_s = 0;
  o.pids = {static_cast<int>(getpid())};
  // Spend a known amount of CPU first, so the "proxy" (this process) has CPU time to read.
  const std::clock_t spin_until = std::clock() + CLOCKS_PER_SEC / 20;  // 50 ms
  while (std::clock() < spin_until) {
  }
  Result r = run_checked(o);
  CHECK(r.ops_ok == 20);
  CHECK(r.tunnels_held == 20);
  CHECK(r.errors.total == 0);
  CHECK(r.proxy_measured);
  CHECK(r.proxy_at_hold.ok);
  CHECK(r.proxy_before.ok);
  CHECK(r.proxy_after.ok);
  CHECK(r.proxy_before.cpu_s >= 0.04);                 // the spin is seen (10 ms clock ticks)
  CHECK(r.proxy_after.cpu_s >= r.proxy_before.cpu_s);  // samples in order, not swapped
  CHECK(r.proxy_at_hold.rss_kib > 0);
  CHECK(render_json(r).find("\"rss_per_tunnel_bytes\"") != std::string::npos);
}

TEST_CASE("loadgen via a fake CONNECT proxy: connect-storm, tunnel-throughput, http-forward") {
  LiveUpstream u;
  bench_test::FakeProxy proxy(200);
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port());

  Options o = via(url, u.port(), Scenario::ConnectStorm);
  o.requests = 30;
  o.concurrency = 3;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 30);
  CHECK(r.errors.total == 0);
  CHECK(r.bytes == 30 * kSmallBody.size());

  Options t = via(url, u.port(), Scenario::TunnelThroughput);
  t.size = 2 << 20;
  t.upstream_close = true;
  t.requests = 3;
  t.concurrency = 1;
  Result rt = run_checked(t);
  CHECK(rt.ops_ok == 3);
  CHECK(rt.errors.total == 0);
  CHECK(rt.bytes == 3 * t.size);

  Options f = via(url, u.port(), Scenario::HttpForward);
  f.requests = 40;
  f.concurrency = 2;
  Result rf = run_checked(f);
  CHECK(rf.ops_ok == 40);
  CHECK(rf.errors.total == 0);
  CHECK(rf.bytes == 40 * kSmallBody.size());
  CHECK(proxy.connects() == 33);
  CHECK(proxy.forwards() == 2);  // two keep-alive connections carried all 40 requests
}

TEST_CASE("loadgen with --name: the name in CONNECT and Host, the IP dialed") {
  LiveUpstream u;
  bench_test::FakeProxy proxy(200);
  proxy.alias_loopback("bench.test");
  Options o = via("http://127.0.0.1:" + std::to_string(proxy.port()), u.port(), Scenario::ConnectStorm);
  o.name = "bench.test";
  o.requests = 3;
  o.concurrency = 1;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 3);
  CHECK(proxy.last_connect() == "bench.test:" + std::to_string(u.port()));
  std::vector<std::string> notes;
  o.sni = "other.test";
  CHECK_FALSE(finalize(o, notes).empty());  // one name, not two
}

TEST_CASE("loadgen via a fake SOCKS5 proxy: socks-storm and socks-throughput") {
  LiveUpstream u;
  bench_test::FakeProxy proxy(200);
  const std::string url = "socks5h://127.0.0.1:" + std::to_string(proxy.port());

  Options o = via(url, u.port(), Scenario::SocksStorm);
  o.requests = 30;
  o.concurrency = 3;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 30);
  CHECK(r.errors.total == 0);
  CHECK(r.bytes == 30 * kSmallBody.size());
  CHECK(render_text(r).find("via socks5h://127.0.0.1:") != std::string::npos);

  Options t = via(url, u.port(), Scenario::SocksThroughput);
  t.size = 2 << 20;
  t.requests = 3;
  t.concurrency = 1;
  Result rt = run_checked(t);
  CHECK(rt.ops_ok == 3);
  CHECK(rt.errors.total == 0);
  CHECK(rt.bytes == 3 * t.size);

  Options up = via(url, u.port(), Scenario::SocksThroughput);
  up.size = 1 << 20;
  up.upload = true;
  Result ru = run_checked(up);
  CHECK(ru.ops_ok == 1);
  CHECK(ru.bytes == up.size);
  CHECK(proxy.socks() == 34);
  CHECK(proxy.connects() == 0);
  CHECK(proxy.forwards() == 0);
}

TEST_CASE("loadgen via a fake SOCKS5 proxy that wants username/password") {
  LiveUpstream u;
  bench_test::FakeProxy proxy(200);
  proxy.require_socks_credentials("agent", "s3:cret");
  Options o =
      via("socks5h://agent:s3%3Acret@127.0.0.1:" + std::to_string(proxy.port()), u.port(), Scenario::SocksStorm);
  o.requests = 6;
  o.concurrency = 2;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 6);
  CHECK(r.errors.total == 0);
  Options bad = via("socks5h://agent:nope@127.0.0.1:" + std::to_string(proxy.port()), u.port(), Scenario::SocksStorm);
  bad.requests = 3;
  bad.concurrency = 1;
  Result rb = run_checked(bad);
  CHECK(rb.errors.get("socks-257") == 3);  // 256 + 1: the credentials were refused
  Options none = via("127.0.0.1:" + std::to_string(proxy.port()), u.port(), Scenario::SocksStorm);
  none.requests = 2;
  none.concurrency = 1;
  CHECK(run_checked(none).errors.total == 2);  // offered no-auth only: the fake closes after asking for 0x02
  CHECK(proxy.socks() == 6);
}

TEST_CASE("loadgen via a fake SOCKS5 proxy that refuses: every op counts as socks-2") {
  LiveUpstream u;
  bench_test::FakeProxy proxy(403);
  Options o = via("127.0.0.1:" + std::to_string(proxy.port()), u.port(), Scenario::SocksStorm);
  o.requests = 10;
  o.concurrency = 2;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 0);
  CHECK(r.errors.get("socks-2") == 10);
  CHECK(r.errors.total == 10);
  CHECK(u.up.stats().requests == 0);
}

TEST_CASE("loadgen via a fake proxy that refuses: every op counts as proxy-403") {
  LiveUpstream u;
  bench_test::FakeProxy proxy(403);
  Options o = via("127.0.0.1:" + std::to_string(proxy.port()), u.port(), Scenario::ConnectStorm);
  o.requests = 10;
  o.concurrency = 2;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 0);
  CHECK(r.ops_failed == 10);
  CHECK(r.errors.get("proxy-403") == 10);
  CHECK(r.errors.total == 10);
  CHECK(u.up.stats().requests == 0);
}

TEST_CASE("loadgen via a fake proxy on a unix socket") {
  LiveUpstream u;
  std::string path = "/tmp/sluice-bench-test-" + std::to_string(getpid()) + ".sock";
  bench_test::FakeProxy proxy(200, path);
  Options o = via("unix:" + path, u.port(), Scenario::ConnectStorm);
  o.requests = 10;
  o.concurrency = 2;
  Result r = run_checked(o);
  CHECK(r.ops_ok == 10);
  CHECK(r.errors.total == 0);

  Options missing = via("unix:" + path + ".missing", u.port(), Scenario::ConnectStorm);
  missing.requests = 3;
  missing.concurrency = 1;
  Result rm = run_checked(missing);
  CHECK(rm.errors.get("connect-refused") == 3);
}

TEST_CASE("loadgen: a server that closes kept-alive connections silently gets requests resent") {
  // Answers one request per connection, without `Connection: close`, then closes (as tinyproxy
  // does towards its clients). A client must resend on a new connection, not report an error.
  sluice::test::LoopbackListener listener(64);
  REQUIRE(listener.bound);
  REQUIRE(listener.listening);
  // A jthread: a failed REQUIRE below unwinds through its destructor, which stops and joins it
  // (a joinable std::thread there would end the whole test binary).
  std::jthread server([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      pollfd p{listener.fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listener.fd, nullptr, nullptr);
      if (fd < 0) continue;
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        pollfd q{fd, POLLIN, 0};
        if (::poll(&q, 1, 2000) <= 0) break;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      const char* resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      ::send(fd, resp, std::strlen(resp), MSG_NOSIGNAL);
      ::close(fd);
    }
  });
  Options o = direct_to(listener.port, Scenario::HttpForward);
  o.requests = 20;
  o.concurrency = 2;
  Result r = run_checked(o);
  server.request_stop();
  server.join();
  CHECK(r.ops_ok == 20);
  CHECK(r.errors.total == 0);
  CHECK(r.retries >= 1);
  CHECK(r.retries <= 18);
  CHECK(r.bytes == 40);
}
