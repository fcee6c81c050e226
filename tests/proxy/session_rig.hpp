// What the target-flow and session tests share: a worker on a real libuv loop with a
// table resolver and asks the test answers (or lets time out), client ends over unix
// socketpairs, and loopback upstreams the test reads and writes itself. Everything runs
// on the test's thread: the test's own sockets are non-blocking and pumped between loop turns.
#pragma once
#include <doctest/doctest.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fake_resolvers.hpp"
#include "proxy/ask.hpp"
#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/events.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resolver.hpp"
#include "proxy/worker_context.hpp"
#include "rules/config.hpp"
#include "tests/loopback_listener.hpp"

namespace rig {

using namespace sluice::proxy;
namespace rules = sluice::rules;

using sluice::proxy::test::TableResolver;

// A worker whose asks wait for the test: ask() records the question, answer() delivers.
class TestWorker final : public WorkerContext {
 public:
  struct Asked {
    uint64_t ticket;
    AskRequest request;
    std::function<void(const AskAnswer&)> resume;
  };
  struct Cancelled {
    uint64_t ticket;
    bool timeout;
  };
  bool answerable = true;
  std::vector<Asked> asks;  // waiting
  std::vector<Cancelled> cancelled;

  TestWorker() : resolver_(&loop_) {
    uv_loop_init(&loop_);
    log_.set_tap(&bus_);
    bus_.add_reader();  // decision and close lines are what the tests read
  }
  ~TestWorker() override {
    for (auto& [p, c] : conns_) c.abort();
    run_until([&] { return conns_.empty(); });
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  uv_loop_t* loop() override { return &loop_; }
  Resolver& resolver() override { return resolver_; }
  DecisionLog& log() override { return log_; }
  BufferPool& buffers() override { return pool_; }
  WorkerMetrics& metrics() override { return metrics_; }
  uint64_t ask(const AskRequest& r, std::function<void(const AskAnswer&)> resume, uint64_t* question) override {
    if (!answerable) return 0;
    uint64_t ticket = ++next_ticket_;
    asks.push_back({ticket, r, std::move(resume)});
    if (question != nullptr) *question = 100 + ticket;
    return ticket;
  }
  void cancel_ask(uint64_t ticket, bool timeout) override {
    std::erase_if(asks, [&](const Asked& a) { return a.ticket == ticket; });
    cancelled.push_back({ticket, timeout});
  }
  uint64_t next_connection_id() override { return ++next_id_; }
  const std::vector<rules::IpAddr>& self_addresses() override { return self_; }
  void connection_finished(void* c) override { conns_.erase(c); }
  void hand_over(void*, OwnedConnection) override {}

  // Answers the oldest waiting question, as the worker would: later, on the loop.
  void answer(rules::Action action) {
    REQUIRE_FALSE(asks.empty());
    Asked a = std::move(asks.front());
    asks.erase(asks.begin());
    AskAnswer ans;
    ans.action = action;
    ans.by = "api";
    ans.question = 100 + a.ticket;
    a.resume(ans);
  }
  template <class S>
  S* adopt(std::unique_ptr<S> s) {
    S* p = s.get();
    conns_.emplace(p, OwnedConnection(std::move(s)));
    return p;
  }
  bool finished(void* c) const { return conns_.count(c) == 0; }
  TableResolver& table() { return resolver_; }
  // Every decision and close line so far.
  const std::vector<std::string>& lines() {
    for (auto& l : bus_.take()) lines_.push_back(std::move(l));
    return lines_;
  }
  bool logged(const std::string& a, const std::string& b = "") {
    for (const auto& l : lines())
      if (l.find(a) != std::string::npos && l.find(b) != std::string::npos) return true;
    return false;
  }
  // Runs the loop until `done()` or `ms` pass.
  void run_until(const std::function<bool()>& done, uint64_t ms = 5000) {
    uv_update_time(&loop_);
    uint64_t deadline = uv_now(&loop_) + ms;
    while (!done() && uv_now(&loop_) < deadline) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      uv_sleep(1);
      uv_update_time(&loop_);
    }
  }

 private:
  uv_loop_t loop_{};
  TableResolver resolver_;
  EventBus bus_;
  DecisionLog log_;
  BufferPool pool_;
  WorkerMetrics metrics_;
  std::vector<rules::IpAddr> self_;
  std::map<void*, OwnedConnection> conns_;
  std::vector<std::string> lines_;
  uint64_t next_ticket_ = 0, next_id_ = 0;
};

// A socket end the test drives: non-blocking, read by pump() into `got`.
struct End {
  int fd = -1;
  std::string got;
  bool eof = false;
  bool reset = false;
  explicit End(int f = -1) : fd(f) {}
  End(End&& o) noexcept : fd(std::exchange(o.fd, -1)), got(std::move(o.got)), eof(o.eof), reset(o.reset) {}
  End& operator=(End&& o) noexcept {
    if (this != &o) {
      if (fd >= 0) ::close(fd);
      fd = std::exchange(o.fd, -1);
      got = std::move(o.got);
      eof = o.eof;
      reset = o.reset;
    }
    return *this;
  }
  ~End() {
    if (fd >= 0) ::close(fd);
  }
  void send(const std::string& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  }
  void pump() {
    char buf[65536];
    while (!eof) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) eof = reset = true;
      return;
    }
  }
  bool has(const std::string& s) {
    pump();
    return got.find(s) != std::string::npos;
  }
  // Closes with a reset (SO_LINGER 0): the peer's next read fails.
  void abort() {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(std::exchange(fd, -1));
  }
};

// A loopback listener whose accepted connections the test drives.
struct Upstream : sluice::test::LoopbackListener {
  std::vector<End> conns;
  Upstream() : LoopbackListener(16, SOCK_NONBLOCK | SOCK_CLOEXEC) {
    REQUIRE(bound);
    REQUIRE(listening);
  }
  void pump() {
    for (int c; (c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) conns.emplace_back(c);
    for (auto& c : conns) c.pump();
  }
  // Pumps and tells whether connection `i` has received `s`.
  bool has(size_t i, const std::string& s) {
    pump();
    return conns.size() > i && conns[i].got.find(s) != std::string::npos;
  }
};

// A policy "p" on listener "test"; the tests' upstreams are on loopback, so the
// resolved-address check is off.
inline std::shared_ptr<rules::Config> config(rules::Action default_action, std::vector<std::string> allow,
                                             std::vector<std::string> deny = {}) {
  auto c = std::make_shared<rules::Config>();
  rules::ListenerConfig l;
  l.name = "test";
  l.policy = "p";
  c->listeners.push_back(l);
  c->policies["p"] = rules::make_policy("p", default_action, allow, deny).value();
  c->resolver.check_addresses = false;
  c->limits.connect_timeout_ms = 2000;
  return c;
}

inline ClientInfo client_info(uint64_t id) {
  static auto listener = [] {
    auto l = std::make_shared<ListenerInfo>();
    l->name = "test";
    return l;
  }();
  ClientInfo ci;
  ci.id = id;
  ci.listener = listener;
  ci.is_unix = true;
  ci.addr = "unix";
  return ci;
}

// A session of kind S on one end of a socketpair; the test holds the other end.
template <class S>
S* open_session(TestWorker& w, std::shared_ptr<const rules::Config> cfg, End& client) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  client = End(sv[0]);
  UvHandle<AnyStream> stream{UvHandle<AnyStream>::Empty{}};
  stream.init([&](AnyStream* s) { return uv_pipe_init(w.loop(), &s->pipe, 0); });
  REQUIRE(uv_pipe_open(&stream.get()->pipe, sv[1]) == 0);
  auto s = std::make_unique<S>(w, std::move(cfg), nullptr, client_info(w.next_connection_id()), std::move(stream),
                               std::string());
  S* p = w.adopt(std::move(s));
  p->start();
  return p;
}

}  // namespace rig
