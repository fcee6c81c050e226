// The TLS pump attached to its owner (proxy/tls_pump.hpp), on a real libuv loop: the pump
// holds the server side of a TLS connection over a socketpair; the peer, a client engine on
// a thread with non-blocking I/O, plays the client. Bytes both ways byte-exact with the
// owner's backpressure, close_notify and FIN both ways, an owner that stops reading stops
// the pump reading (the peer's writes block), and a detached pump finishes alone.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "loop_worker.hpp"
#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resolver.hpp"
#include "proxy/tls_pump.hpp"
#include "proxy/worker_context.hpp"
#include "tls/ca.hpp"
#include "tls/engine.hpp"
#include "tls/leaf.hpp"

using namespace sluice::proxy;
namespace tls = sluice::tls;
namespace rules = sluice::rules;
using sluice::proxy::test::LoopWorker;

namespace {

// A CA, a leaf for "pump.test" and both contexts; the client trusts the CA (from a file).
struct Certs {
  tls::Ca ca = std::move(*tls::create_ca().ca);
  tls::LeafCache cache{ca, 4};
  tls::CtxPtr server_ctx = tls::make_server_ctx();
  tls::CtxPtr client_ctx;
  std::string dir;
  Certs() {
    char tmpl[] = "/tmp/sluice-pump-test-XXXXXX";
    dir = mkdtemp(tmpl);
    std::string file = dir + "/ca.crt";
    FILE* f = std::fopen(file.c_str(), "w");
    const std::string pem = tls::cert_to_pem(ca.cert.get());
    std::fwrite(pem.data(), 1, pem.size(), f);
    std::fclose(f);
    std::string err;
    client_ctx = tls::make_upstream_ctx({file}, err);
    REQUIRE_MESSAGE(client_ctx, err);
  }
  ~Certs() {
    std::remove((dir + "/ca.crt").c_str());
    rmdir(dir.c_str());
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7919) & 0xff);
  return s;
}

// The client side on a thread: non-blocking socket, poll(), one engine. It sends `to_send`
// (then close_notify and FIN when `close_after`), and collects what it receives until EOF
// or the deadline.
struct Peer {
  int fd;
  tls::Engine engine;
  std::string to_send;
  bool close_after = true;
  size_t stop_reading_after = SIZE_MAX;  // 0: never reads application data
  std::string got;
  std::atomic<size_t> sent_plain{0};
  bool handshake_ok = false, saw_close_notify = false;
  std::atomic<bool> saw_eof{false};
  std::atomic<bool> stop{false};

  Peer(int fd_, tls::Engine e) : fd(fd_), engine(std::move(e)) { fcntl(fd, F_SETFL, O_NONBLOCK); }

  void run(int seconds) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::seconds(seconds);
    std::string out;
    size_t off = 0;
    bool shut = false;
    char buf[65536];
    while (clock::now() < deadline && !stop) {
      if (!handshake_ok) {
        auto st = engine.handshake();
        if (st == tls::Engine::Status::Failed) return;
        handshake_ok = st == tls::Engine::Status::Done;
      }
      while (handshake_ok && out.size() - off < 262144) {
        if (sent_plain < to_send.size()) {
          const size_t n = std::min<size_t>(16384, to_send.size() - sent_plain);
          engine.write(std::string_view(to_send).substr(sent_plain, n));
          sent_plain += n;
        } else {
          if (close_after && !shut) engine.close_notify();
          break;
        }
        out += engine.take_output();
      }
      out += engine.take_output();
      while (off < out.size()) {
        ssize_t w = ::write(fd, out.data() + off, out.size() - off);
        if (w <= 0) break;
        off += static_cast<size_t>(w);
      }
      if (off == out.size()) {
        out.clear();
        off = 0;
        if (close_after && !shut && handshake_ok && sent_plain == to_send.size()) {
          ::shutdown(fd, SHUT_WR);
          shut = true;
        }
      }
      if (saw_eof && (shut || !close_after)) return;
      const bool want_read = !saw_eof && (got.size() < stop_reading_after || !handshake_ok);
      pollfd p{fd, static_cast<short>((want_read ? POLLIN : 0) | (off < out.size() ? POLLOUT : 0)), 0};
      const bool more = handshake_ok && sent_plain < to_send.size() && off == out.size();
      ::poll(&p, 1, more ? 0 : 10);
      if (want_read && (p.revents & (POLLIN | POLLHUP)) != 0) {
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r > 0) {
          engine.feed(std::string_view(buf, static_cast<size_t>(r)));
          if (handshake_ok || engine.handshake() == tls::Engine::Status::Done) {
            handshake_ok = true;
            if (engine.read(got) == tls::Engine::Status::Failed && engine.peer_closed()) saw_close_notify = true;
          }
        } else if (r == 0) {
          saw_eof = true;
        }
      }
    }
  }
};

// The owner: echoes every byte back, stops reading while more than `high` is queued.
struct Echo {
  TlsPump* pump = nullptr;
  size_t high = 1 << 20;
  size_t echoed = 0, max_queued = 0, max_data = 0;
  bool echo = true;
  std::string got;
  bool eof = false, shut_done = false, reset = false;
  static void on_event(void* owner, int, TlsPump::Event e, const char* data, size_t n) {
    auto* self = static_cast<Echo*>(owner);
    switch (e) {
      case TlsPump::Event::Data:
        self->max_data = std::max(self->max_data, n);
        if (!self->echo) {
          self->got.append(data, n);
          return;
        }
        REQUIRE(self->pump->write(std::string_view(data, n)) == 0);
        self->echoed += n;
        self->max_queued = std::max(self->max_queued, self->pump->queued());
        if (self->pump->queued() >= self->high) self->pump->set_reading(false);
        return;
      case TlsPump::Event::Wrote:
        if (self->pump->queued() < self->high / 2) self->pump->set_reading(true);
        return;
      case TlsPump::Event::Eof:
        self->eof = true;
        REQUIRE(self->pump->shutdown() == 0);
        return;
      case TlsPump::Event::ShutDone: self->shut_done = true; return;
      case TlsPump::Event::Reset: self->reset = true; return;
    }
  }
};

// Starts a server pump on one end of a socketpair; the other end is the peer's.
TlsPump* start_pump(LoopWorker<>& w, Certs& c, int fd, bool& ok) {
  UvHandle<AnyStream> h;
  h.init([&](AnyStream* s) { return uv_pipe_init(w.loop(), &s->pipe, 0); });
  REQUIRE(uv_pipe_open(&h.get()->pipe, fd) == 0);
  auto leaf = c.cache.get("pump.test");
  return TlsPump::start(w, std::move(h), tls::Engine::server(c.server_ctx.get(), *leaf), TlsPump::Role::Server, {}, {},
                        5000, [&ok](TlsPump::Handshake& hs) { ok = hs.ok; });
}

// Runs the loop until `done` or the deadline (bounded).
template <class F>
void run_until(LoopWorker<>& w, F done, int ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(w.loop(), UV_RUN_NOWAIT), usleep(200);
}

// One pump on a socketpair and its TLS peer on the other end. The test configures `peer`,
// then handshake() runs it on a thread; a test that stops early still stops and joins it.
struct PumpRig {
  Certs c;
  LoopWorker<> w;
  int fds[2] = {-1, -1};
  bool ok = false;
  TlsPump* pump = nullptr;
  std::unique_ptr<Peer> peer;
  std::thread t;

  PumpRig() {
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    pump = start_pump(w, c, fds[0], ok);
    peer = std::make_unique<Peer>(fds[1], tls::Engine::client(c.client_ctx.get(), "pump.test"));
  }
  ~PumpRig() {
    if (t.joinable()) {
      peer->stop = true;
      t.join();
    }
  }
  // Starts the peer for at most `seconds` and runs the loop until the handshake is done.
  void handshake(int seconds) {
    t = std::thread([this, seconds] { peer->run(seconds); });
    run_until(
        w, [&] { return ok; }, 5000);
    REQUIRE(ok);
  }
};

}  // namespace

TEST_CASE("tls pump, attached: 8 MiB echoed byte-exact with backpressure, close_notify and FIN both ways") {
  PumpRig r;
  Peer& peer = *r.peer;
  peer.to_send = pattern(8 << 20);
  r.handshake(20);
  Echo echo;
  echo.pump = r.pump;
  echo.high = 256 * 1024;
  r.pump->attach({Echo::on_event, &echo, 0});
  r.pump->set_reading(true);
  run_until(
      r.w, [&] { return echo.shut_done; }, 20000);
  r.t.join();
  CHECK(echo.eof);  // the peer's close_notify and FIN: one Eof event
  CHECK(echo.shut_done);
  CHECK_FALSE(echo.reset);
  CHECK(echo.echoed == peer.to_send.size());
  // One read's worth of plaintext past the mark at most: the owner's backpressure holds.
  CHECK(echo.max_queued < echo.high + 2 * TlsPump::kReadSize);
  CHECK(peer.got.size() == peer.to_send.size());
  CHECK(peer.got == peer.to_send);
  CHECK(peer.saw_close_notify);  // a clean end, not a truncation
  CHECK(peer.saw_eof);
  r.pump->detach();  // both sides ended: the pump closes at once and deletes itself
  run_until(
      r.w, [&] { return !uv_loop_alive(r.w.loop()); }, 5000);
  CHECK_FALSE(uv_loop_alive(r.w.loop()));
  close(r.fds[1]);
}

TEST_CASE("tls pump, attached: an owner that stops reading stops the pump reading; nothing is lost") {
  PumpRig r;
  Peer& peer = *r.peer;
  peer.to_send = pattern(32 << 20);
  peer.close_after = false;
  peer.stop_reading_after = 0;
  r.handshake(30);
  Echo sink;
  sink.echo = false;
  sink.pump = r.pump;
  r.pump->attach({Echo::on_event, &sink, 0});  // attached, but not reading
  run_until(
      r.w, [] { return false; }, 500);
  // At most what came with the handshake's last flight (one read).
  CHECK(sink.got.size() <= TlsPump::kReadSize);
  // The kernel's buffers filled and the peer's writes stopped far short of the total.
  CHECK(peer.sent_plain < (4u << 20));
  r.pump->set_reading(true);
  run_until(
      r.w, [&] { return sink.got.size() == peer.to_send.size(); }, 25000);
  CHECK(sink.got.size() == peer.to_send.size());
  CHECK(sink.got == peer.to_send);
  // The kernel's buffers were full when reading resumed: one read took more than a 64 KiB
  // block, and its plaintext came as one Data event (fewer reads and writes per byte).
  CHECK(sink.max_data > BufferPool::kBlockSize);
  CHECK(sink.max_data <= TlsPump::kReadSize);
  peer.stop = true;
  r.t.join();
  r.pump->detach();  // close_notify and FIN, then a bounded drain
  close(r.fds[1]);   // the peer leaves: the drain ends at its EOF
  run_until(
      r.w, [&] { return !uv_loop_alive(r.w.loop()); }, 6000);
  CHECK_FALSE(uv_loop_alive(r.w.loop()));
}

TEST_CASE("tls pump, detached: the owner's end becomes close_notify and FIN for the peer") {
  PumpRig r;
  Peer& peer = *r.peer;
  peer.to_send = "hello";
  peer.close_after = false;
  r.handshake(10);
  Echo sink;
  sink.echo = false;
  sink.pump = r.pump;
  r.pump->attach({Echo::on_event, &sink, 0});
  r.pump->set_reading(true);
  run_until(
      r.w, [&] { return sink.got == "hello"; }, 5000);
  CHECK(sink.got == "hello");
  REQUIRE(r.pump->write("bye") == 0);
  r.pump->detach();  // no event reaches the owner after this
  run_until(
      r.w, [&] { return peer.saw_eof.load(); }, 5000);
  r.t.join();
  close(r.fds[1]);  // the peer leaves: the pump's drain ends at its EOF
  run_until(
      r.w, [&] { return !uv_loop_alive(r.w.loop()); }, 6000);
  CHECK(peer.got == "bye");
  CHECK(peer.saw_close_notify);
  CHECK(peer.saw_eof);
  CHECK_FALSE(sink.eof);
  CHECK_FALSE(uv_loop_alive(r.w.loop()));
}
