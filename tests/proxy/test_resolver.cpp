// The c-ares resolver against tests/tools/dns_server.py on loopback. No lookup in
// this file reaches any resolver but the one the test starts on 127.0.0.1 / ::1.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/resolver.hpp"

#ifndef SLUICE_TOOLS_DIR
#error "SLUICE_TOOLS_DIR must point at tests/tools"
#endif

using sluice::proxy::make_ares_resolver;
using sluice::proxy::Resolver;
using sluice::proxy::ResolveResult;

namespace {

// A scratch directory for the query log, removed with its files.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sluice-resolver-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    for (const char* f : {"/queries.log"}) unlink((path_ + f).c_str());
    rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// tests/tools/dns_server.py as a child process; killed (SIGTERM, then SIGKILL) at the end.
class DnsServer {
 public:
  explicit DnsServer(std::vector<std::string> args, const std::string& listen = "127.0.0.1:0") {
    log_path_ = dir_.path() + "/queries.log";
    std::vector<std::string> argv_s = {
        SLUICE_PYTHON, std::string(SLUICE_TOOLS_DIR) + "/dns_server.py", "--listen", listen, "--query-log", log_path_};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);

    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive a crashed test
      dup2(fds[1], STDOUT_FILENO);
      execvp(SLUICE_PYTHON, argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
    port_ = read_port();
    REQUIRE_MESSAGE(port_ > 0, "dns_server.py did not report a port");
  }

  ~DnsServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      bool gone = false;
      for (int i = 0; i < 300 && !gone; ++i) {  // up to 3 s
        gone = waitpid(pid_, &status, WNOHANG) == pid_;
        if (!gone) usleep(10'000);
      }
      if (!gone) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
    }
    if (out_fd_ >= 0) close(out_fd_);
  }

  int port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

  // Lines of the query log: "name TYPE".
  std::vector<std::string> queries() const {
    std::vector<std::string> lines;
    std::ifstream in(log_path_);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  int count(const std::string& line) const {
    int n = 0;
    for (const auto& l : queries()) n += (l == line);
    return n;
  }

 private:
  int read_port() {
    std::string line;
    for (int i = 0; i < 1000; ++i) {  // up to 10 s for python to start
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 10) <= 0) continue;
      char c;
      if (read(out_fd_, &c, 1) != 1) return -1;
      if (c == '\n') return std::atoi(line.c_str());
      line += c;
    }
    return -1;
  }

  TempDir dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = -1;
};

// A uv loop run only in bounded slices; checks at the end that every handle closed.
class Loop {
 public:
  Loop() { uv_loop_init(&loop_); }
  ~Loop() {
    for (int i = 0; i < 1000 && uv_loop_alive(&loop_); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  uv_loop_t* get() { return &loop_; }

  // Runs until `done` holds or `budget_ms` pass; returns done(). A prepare handle
  // stops the loop before it would block in poll once `done` holds (UV_RUN_ONCE
  // alone runs due timers and then still waits for I/O).
  bool run_until(const std::function<bool()>& done, int budget_ms) {
    struct Guard {
      const std::function<bool()>* done;
      uv_timer_t timer;
      uv_prepare_t prepare;
      bool expired = false;
      int closed = 0;
    } guard{&done, {}, {}};
    uv_timer_init(&loop_, &guard.timer);
    uv_prepare_init(&loop_, &guard.prepare);
    guard.timer.data = guard.prepare.data = &guard;
    uv_timer_start(
        &guard.timer, [](uv_timer_t* t) { static_cast<Guard*>(t->data)->expired = true; },
        static_cast<uint64_t>(budget_ms), 0);
    uv_prepare_start(&guard.prepare, [](uv_prepare_t* p) {
      auto* g = static_cast<Guard*>(p->data);
      if (g->expired || (*g->done)()) uv_stop(p->loop);
    });
    for (int i = 0; i < 100'000 && !done() && !guard.expired; ++i) uv_run(&loop_, UV_RUN_ONCE);
    auto on_closed = [](uv_handle_t* h) { ++static_cast<Guard*>(h->data)->closed; };
    uv_close(reinterpret_cast<uv_handle_t*>(&guard.timer), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&guard.prepare), on_closed);
    for (int i = 0; i < 100 && guard.closed < 2; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    REQUIRE(guard.closed == 2);
    return done();
  }
  void sleep_ms(int ms) {
    run_until([] { return false; }, ms);
  }

 private:
  uv_loop_t loop_;
};

std::unique_ptr<Resolver> make_resolver(Loop& loop, const std::string& server, int timeout_ms = 2000) {
  sluice::rules::ResolverConfig cfg;
  cfg.servers = {server};
  cfg.timeout_ms = timeout_ms;
  std::string error;
  auto r = make_ares_resolver(loop.get(), cfg, &error);
  REQUIRE_MESSAGE(r != nullptr, error);
  return r;
}

// One lookup's outcome, shared with the callback so a late call cannot dangle.
struct Outcome {
  std::optional<ResolveResult> result;
  bool called_inside_resolve = false;
};

std::shared_ptr<Outcome> start(Resolver& r, const std::string& name) {
  auto out = std::make_shared<Outcome>();
  auto inside = std::make_shared<bool>(true);
  r.resolve(name, [out, inside](ResolveResult res) {
    out->called_inside_resolve = *inside;
    out->result = std::move(res);
  });
  *inside = false;
  return out;
}

ResolveResult lookup(Loop& loop, Resolver& r, const std::string& name, int budget_ms = 5000) {
  auto out = start(r, name);
  REQUIRE_MESSAGE(loop.run_until([&] { return out->result.has_value(); }, budget_ms), "no answer for " << name);
  CHECK_FALSE(out->called_inside_resolve);
  return *out->result;
}

std::vector<std::string> texts(const ResolveResult& r) {
  std::vector<std::string> v;
  for (const auto& a : r.addrs) v.push_back(a.to_string());
  return v;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("resolver: A only, AAAA only, both with IPv4 first and duplicates removed") {
  DnsServer dns({"--record", "v4.test=192.0.2.1,192.0.2.2", "--record", "v6.test=2001:db8::1", "--record",
                 "both.test=2001:db8::2,192.0.2.3,2001:db8::2,192.0.2.4,192.0.2.3"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());

  auto v4 = lookup(loop, *r, "v4.test");
  CHECK(v4.ok);
  CHECK(v4.error.empty());
  CHECK(texts(v4) == Strings{"192.0.2.1", "192.0.2.2"});
  CHECK_FALSE(v4.from_cache);
  CHECK(v4.ms > 0);
  CHECK(v4.ms < 2000);

  auto v6 = lookup(loop, *r, "v6.test");
  CHECK(v6.ok);
  CHECK(texts(v6) == Strings{"2001:db8::1"});

  auto both = lookup(loop, *r, "both.test");
  CHECK(both.ok);
  CHECK(texts(both) == Strings{"192.0.2.3", "192.0.2.4", "2001:db8::2"});
  r.reset();
}

TEST_CASE("resolver: NXDOMAIN, no addresses, SERVFAIL") {
  DnsServer dns({"--record", "known.test=192.0.2.1", "--nodata", "empty.test", "--record", "broken.test=", "--servfail",
                 "broken2.test"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());

  auto nx = lookup(loop, *r, "missing.test");
  CHECK_FALSE(nx.ok);
  CHECK(nx.error == "NXDOMAIN");
  CHECK(nx.addrs.empty());

  auto nodata = lookup(loop, *r, "empty.test");
  CHECK_FALSE(nodata.ok);
  CHECK(nodata.error == "no addresses");

  for (const char* name : {"broken.test", "broken2.test"}) {
    CAPTURE(name);
    auto sf = lookup(loop, *r, name);
    CHECK_FALSE(sf.ok);
    CHECK(sf.error == "SERVFAIL");
  }
  // SERVFAIL is not cached: asking again asks the server again.
  int before = dns.count("broken.test A");
  auto again = lookup(loop, *r, "broken.test");
  CHECK_FALSE(again.from_cache);
  CHECK(dns.count("broken.test A") > before);
  r.reset();
}

TEST_CASE("resolver: a slow server ends in 'timeout' within the budget") {
  DnsServer dns({"--record", "slow.test=192.0.2.1", "--delay", "slow.test=3000"});
  Loop loop;
  auto r = make_resolver(loop, dns.server(), 300);
  auto res = lookup(loop, *r, "slow.test", 3000);
  CHECK_FALSE(res.ok);
  CHECK(res.error == "timeout");
  CHECK(res.ms >= 250);
  CHECK(res.ms < 1500);
  // A timeout is not cached.
  auto again = start(*r, "slow.test");
  CHECK(loop.run_until([&] { return again->result.has_value(); }, 3000));
  CHECK_FALSE(again->result->from_cache);
  r.reset();
}

TEST_CASE("resolver: IP literals are answered without a query, never inside resolve()") {
  DnsServer dns({"--record", "x.test=192.0.2.1"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  struct Row {
    const char* in;
    const char* out;
  };
  for (Row row : {Row{"192.0.2.77", "192.0.2.77"}, Row{"2001:DB8::0:1", "2001:db8::1"},
                  Row{"[2001:db8::5]", "2001:db8::5"}, Row{"127.0.0.1", "127.0.0.1"}}) {
    CAPTURE(row.in);
    auto res = lookup(loop, *r, row.in);
    CHECK(res.ok);
    CHECK(texts(res) == Strings{row.out});
    CHECK_FALSE(res.from_cache);
  }
  CHECK(dns.queries().empty());
  r.reset();
}

TEST_CASE("resolver: names c-ares must not see are refused without a query") {
  DnsServer dns({"--record", "x.test=192.0.2.1"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  for (const char* name : {"", "bad name.test", "back\\slash.test", "."}) {
    CAPTURE(name);
    auto res = lookup(loop, *r, name);
    CHECK_FALSE(res.ok);
    CHECK(res.error == "bad name");
  }
  CHECK(dns.queries().empty());
  r.reset();
}

TEST_CASE("resolver: the second lookup is a cache hit, any case, trailing dot or not") {
  DnsServer dns({"--record", "cached.test=192.0.2.1,2001:db8::1"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  auto first = lookup(loop, *r, "cached.test");
  CHECK(first.ok);
  CHECK_FALSE(first.from_cache);
  for (const char* name : {"cached.test", "CACHED.Test.", "Cached.test"}) {
    CAPTURE(name);
    auto hit = lookup(loop, *r, name);  // lookup() checks the callback ran outside resolve()
    CHECK(hit.ok);
    CHECK(hit.from_cache);
    CHECK(hit.ms == 0);
    CHECK(texts(hit) == Strings{"192.0.2.1", "2001:db8::1"});
  }
  CHECK(dns.count("cached.test A") == 1);
  CHECK(dns.count("cached.test AAAA") == 1);
  r.reset();
}

TEST_CASE("resolver: NXDOMAIN is cached briefly") {
  DnsServer dns({"--record", "x.test=192.0.2.1"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  CHECK(lookup(loop, *r, "gone.test").error == "NXDOMAIN");
  auto again = lookup(loop, *r, "gone.test");
  CHECK(again.error == "NXDOMAIN");
  CHECK(again.from_cache);
  CHECK(dns.count("gone.test A") == 1);
  r.reset();
}

TEST_CASE("resolver: entries expire with their TTL") {
  DnsServer dns({"--ttl", "1", "--record", "short.test=192.0.2.1"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  CHECK_FALSE(lookup(loop, *r, "short.test").from_cache);
  CHECK(lookup(loop, *r, "short.test").from_cache);
  CHECK(dns.count("short.test A") == 1);
  loop.sleep_ms(1200);
  auto after = lookup(loop, *r, "short.test");
  CHECK(after.ok);
  CHECK_FALSE(after.from_cache);
  CHECK(dns.count("short.test A") == 2);
  r.reset();
}

TEST_CASE("resolver: TTL 0 is not cached") {
  DnsServer dns({"--ttl", "0", "--record", "zero.test=192.0.2.1"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  CHECK(lookup(loop, *r, "zero.test").ok);
  auto again = lookup(loop, *r, "zero.test");
  CHECK(again.ok);
  CHECK_FALSE(again.from_cache);
  CHECK(dns.count("zero.test A") == 2);
  r.reset();
}

TEST_CASE("resolver: concurrent lookups of one name share one query per type") {
  DnsServer dns({"--record", "shared.test=192.0.2.1,2001:db8::1", "--delay", "shared.test=100"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  auto a = start(*r, "shared.test");
  auto b = start(*r, "SHARED.test.");
  auto c = start(*r, "other.test");
  REQUIRE(loop.run_until([&] { return a->result && b->result && c->result; }, 5000));
  for (auto* o : {a.get(), b.get()}) {
    CHECK_FALSE(o->called_inside_resolve);
    CHECK(o->result->ok);
    CHECK_FALSE(o->result->from_cache);
    CHECK(texts(*o->result) == Strings{"192.0.2.1", "2001:db8::1"});
  }
  CHECK(c->result->error == "NXDOMAIN");
  CHECK(dns.count("shared.test A") == 1);
  CHECK(dns.count("shared.test AAAA") == 1);
  r.reset();
}

TEST_CASE("resolver: answers too big for UDP come over TCP") {
  std::string many = "big.test=";
  for (int i = 1; i <= 40; ++i) many += (i > 1 ? "," : "") + ("192.0.2." + std::to_string(i));
  DnsServer dns({"--record", many});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  auto res = lookup(loop, *r, "big.test");
  CHECK(res.ok);
  REQUIRE(res.addrs.size() == 40);
  CHECK(res.addrs.front().to_string() == "192.0.2.1");
  CHECK(res.addrs.back().to_string() == "192.0.2.40");
  r.reset();
}

TEST_CASE("resolver: a DNS server on ::1") {
  {
    int s = socket(AF_INET6, SOCK_DGRAM, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = s >= 0 && bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (s >= 0) close(s);
    if (!ok) {
      MESSAGE("no ::1 here; skipped");
      return;
    }
  }
  DnsServer dns({"--record", "six.test=192.0.2.6"}, "[::1]:0");
  Loop loop;
  auto r = make_resolver(loop, "[::1]:" + std::to_string(dns.port()));
  auto res = lookup(loop, *r, "six.test");
  CHECK(res.ok);
  CHECK(texts(res) == Strings{"192.0.2.6"});
  r.reset();
}

TEST_CASE("resolver: a silent loopback port fails within the budget") {
  // A UDP port nobody listens on: bind one, note it, free it.
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(s >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  close(s);
  Loop loop;
  auto r = make_resolver(loop, "127.0.0.1:" + std::to_string(ntohs(a.sin_port)), 500);
  auto res = lookup(loop, *r, "nobody.test", 3000);
  CHECK_FALSE(res.ok);
  CHECK_FALSE(res.error.empty());
  CHECK(res.ms < 1500);
  r.reset();
}

TEST_CASE("resolver: bad server settings are reported") {
  Loop loop;
  sluice::rules::ResolverConfig cfg;
  cfg.servers = {"not-an-address"};
  std::string error;
  CHECK(make_ares_resolver(loop.get(), cfg, &error) == nullptr);
  CHECK_FALSE(error.empty());
}

TEST_CASE("resolver: destroying it with a lookup pending calls nothing and closes everything") {
  DnsServer dns({"--record", "slow.test=192.0.2.1", "--delay", "slow.test=2000"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  auto pending = start(*r, "slow.test");
  auto coalesced = start(*r, "slow.test");
  auto literal = start(*r, "192.0.2.1");  // queued for the loop, not yet delivered
  loop.sleep_ms(100);                     // the queries are on the wire
  CHECK(literal->result.has_value());
  auto queued = start(*r, "192.0.2.2");
  CHECK(dns.count("slow.test A") == 1);
  r.reset();
  loop.sleep_ms(50);
  CHECK_FALSE(pending->result.has_value());
  CHECK_FALSE(coalesced->result.has_value());
  CHECK_FALSE(queued->result.has_value());
  // ~Loop checks uv_loop_close() succeeds: every poll and timer was closed.
}

TEST_CASE("resolver: a callback may destroy the resolver; later callbacks are dropped") {
  DnsServer dns({"--record", "x.test=192.0.2.1"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  bool first = false, second = false;
  r->resolve("192.0.2.1", [&](ResolveResult) {
    first = true;
    r.reset();
  });
  r->resolve("192.0.2.2", [&](ResolveResult) { second = true; });
  loop.run_until([&] { return first; }, 2000);
  loop.sleep_ms(20);
  CHECK(first);
  CHECK_FALSE(second);
  CHECK(r == nullptr);
}

TEST_CASE("resolver: a callback may start another lookup") {
  DnsServer dns({"--record", "one.test=192.0.2.1", "--record", "two.test=192.0.2.2"});
  Loop loop;
  auto r = make_resolver(loop, dns.server());
  std::optional<ResolveResult> second;
  r->resolve("one.test",
             [&](ResolveResult) { r->resolve("two.test", [&](ResolveResult res) { second = std::move(res); }); });
  REQUIRE(loop.run_until([&] { return second.has_value(); }, 5000));
  CHECK(texts(*second) == Strings{"192.0.2.2"});
  r.reset();
}
