// The tunnel relay alone, over socketpairs on a real libuv loop: bytes both ways,
// half-close passed on, backpressure bounding what it queues, byte counts, idle timeout.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <functional>
#include <string>

#include "proxy/base_aliases.hpp"
#include "proxy/termination.hpp"

using sluice::proxy::BufferPool;
using sluice::proxy::Relay;

namespace {

// One end the test drives: reads everything into `got`, writes on demand.
union Stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_pipe_t pipe;
  uv_tcp_t tcp;
};

// A connected pair of kernel sockets: unix socketpair, or TCP over 127.0.0.1.
void socket_pair(bool tcp, int out[2]) {
  if (!tcp) {
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, out) == 0);
    return;
  }
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(l, 1) == 0);
  REQUIRE(getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  out[0] = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(connect(out[0], reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  out[1] = accept(l, nullptr, nullptr);
  REQUIRE(out[1] >= 0);
  close(l);
}

void open_stream(uv_loop_t* loop, Stream* s, bool tcp, int fd) {
  if (tcp) {
    uv_tcp_init(loop, &s->tcp);
    uv_tcp_open(&s->tcp, fd);
  } else {
    uv_pipe_init(loop, &s->pipe, 0);
    uv_pipe_open(&s->pipe, fd);
  }
}

struct App {
  Stream pipe{};
  std::string got;
  bool eof = false;
  bool reading = false;
  uv_stream_t* s() { return &pipe.stream; }
  void start_reading() {
    reading = true;
    uv_read_start(
        s(),
        [](uv_handle_t*, size_t, uv_buf_t* b) {
          static char buf[65536];
          *b = uv_buf_init(buf, sizeof buf);
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* b) {
          auto* a = static_cast<App*>(st->data);
          if (n > 0) a->got.append(b->base, static_cast<size_t>(n));
          if (n == UV_EOF) a->eof = true;
        });
  }
  void send(const std::string& bytes) {
    auto* req = new uv_write_t{};
    auto* copy = new std::string(bytes);
    req->data = copy;
    uv_buf_t buf = uv_buf_init(copy->data(), static_cast<unsigned>(copy->size()));
    uv_write(req, s(), &buf, 1, [](uv_write_t* r, int) {
      delete static_cast<std::string*>(r->data);
      delete r;
    });
  }
  void shut() {
    auto* req = new uv_shutdown_t{};
    uv_shutdown(req, s(), [](uv_shutdown_t* r, int) { delete r; });
  }
};

struct Rig {
  uv_loop_t loop{};
  BufferPool pool;
  App client_app, upstream_app;
  Stream client_side{}, upstream_side{};  // the streams a session would own
  int marker = 0;                         // their data pointer before the relay
  uv_timer_t timer{};

  explicit Rig(bool tcp = false) {
    uv_loop_init(&loop);
    int a[2], b[2];
    socket_pair(tcp, a);
    socket_pair(tcp, b);
    for (auto [p, fd] : {std::pair{&client_app.pipe, a[0]}, std::pair{&client_side, a[1]},
                         std::pair{&upstream_side, b[0]}, std::pair{&upstream_app.pipe, b[1]}})
      open_stream(&loop, p, tcp, fd);
    client_app.pipe.handle.data = &client_app;
    upstream_app.pipe.handle.data = &upstream_app;
    client_side.handle.data = &marker;
    upstream_side.handle.data = &marker;
    uv_timer_init(&loop, &timer);
  }
  ~Rig() {
    for (uv_handle_t* h :
         {reinterpret_cast<uv_handle_t*>(&client_app.pipe), reinterpret_cast<uv_handle_t*>(&upstream_app.pipe),
          reinterpret_cast<uv_handle_t*>(&client_side), reinterpret_cast<uv_handle_t*>(&upstream_side),
          reinterpret_cast<uv_handle_t*>(&timer)})
      if (!uv_is_closing(h)) uv_close(h, nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  uv_stream_t* cs() { return &client_side.stream; }
  uv_stream_t* us() { return &upstream_side.stream; }

  // Runs the loop until `done()` or `ms` pass.
  void run_until(const std::function<bool()>& done, uint64_t ms = 5000) {
    uint64_t deadline = uv_now(&loop) + ms;
    while (!done() && uv_now(&loop) < deadline) uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(1), uv_update_time(&loop);
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i * 7 % 26);
  return s;
}

}  // namespace

TEST_CASE("relay: early bytes, both directions, half-close, counts, data pointers handed back") {
  Rig rig;
  Relay relay(&rig.loop, rig.pool, 60000);
  int ended = 0;
  Relay::End how = Relay::End::LocalError;
  relay.start(rig.cs(), rig.us(), "early-up|", "early-down|", [&](Relay::End e) {
    ++ended;
    how = e;
  });
  CHECK(rig.client_side.handle.data == &relay);
  rig.client_app.start_reading();
  rig.upstream_app.start_reading();
  const std::string up = pattern(300000), down = pattern(200000);
  rig.client_app.send(up);
  rig.client_app.shut();  // the client is done sending; the reply still flows
  rig.run_until([&] { return rig.upstream_app.eof; });
  CHECK(rig.upstream_app.got == "early-up|" + up);
  CHECK(ended == 0);
  rig.upstream_app.send(down);
  rig.upstream_app.shut();
  // The relay ends once both sides said EOF and what it owed them is written; the last
  // FIN is its owner's close, so the wait is for the end and the bytes, not for an EOF.
  rig.run_until([&] { return ended > 0 && rig.client_app.got.size() == down.size() + 11; });
  CHECK(rig.client_app.got == "early-down|" + down);
  CHECK(ended == 1);
  CHECK(how == Relay::End::ClientEofFirst);  // the client half-closed first
  CHECK(relay.bytes_up() == up.size() + 9);
  CHECK(relay.bytes_down() == down.size() + 11);
  CHECK_FALSE(relay.active());
  CHECK(rig.client_side.handle.data == &rig.marker);
  CHECK(rig.upstream_side.handle.data == &rig.marker);
}

TEST_CASE("relay: a side that does not read stops the other side being read") {
  Rig rig;
  Relay relay(&rig.loop, rig.pool, 60000);
  relay.start(rig.cs(), rig.us(), {}, {}, [](Relay::End) {});
  const size_t total = 16 << 20;
  rig.client_app.send(pattern(total));
  // The upstream app reads nothing: the relay queues up to the watermark, then stops reading.
  rig.run_until([] { return false; }, 300);
  size_t queued = uv_stream_get_write_queue_size(rig.us());
  CHECK(queued < Relay::kHighWatermark + BufferPool::kBlockSize);
  CHECK(relay.bytes_up() < total / 2);
  rig.upstream_app.start_reading();
  rig.run_until([&] { return rig.upstream_app.got.size() == total; }, 10000);
  CHECK(rig.upstream_app.got.size() == total);
  CHECK(relay.bytes_up() == total);
}

TEST_CASE("relay: a silent tunnel ends at idle_timeout; activity keeps it open") {
  Rig rig;
  Relay relay(&rig.loop, rig.pool, 150);
  bool ended = false;
  Relay::End how = Relay::End::ClientEofFirst;
  relay.start(rig.cs(), rig.us(), {}, {}, [&](Relay::End e) {
    ended = true;
    how = e;
  });
  rig.upstream_app.start_reading();
  for (int i = 0; i < 4; ++i) {
    rig.run_until([] { return false; }, 80);
    rig.client_app.send("x");
  }
  rig.run_until([&] { return rig.upstream_app.got.size() == 4; });
  CHECK_FALSE(ended);
  rig.run_until([&] { return ended; }, 3000);
  CHECK(ended);
  CHECK(how == Relay::End::IdleTimeout);
}

TEST_CASE("relay: the side that closes first is named in the end") {
  Rig rig;
  Relay relay(&rig.loop, rig.pool, 60000);
  int ended = 0;
  Relay::End how = Relay::End::LocalError;
  relay.start(rig.cs(), rig.us(), {}, {}, [&](Relay::End e) {
    ++ended;
    how = e;
  });
  rig.client_app.start_reading();
  rig.upstream_app.start_reading();
  rig.upstream_app.send("bye");
  rig.upstream_app.shut();  // the upstream is done first
  rig.run_until([&] { return rig.client_app.eof; });
  CHECK(ended == 0);
  rig.client_app.shut();
  rig.run_until([&] { return ended > 0; });  // the upstream's FIN is the owner's close
  CHECK(ended == 1);
  CHECK(how == Relay::End::UpstreamEofFirst);
  CHECK(sluice::proxy::termination_of(how) == sluice::proxy::Termination::UpstreamEof);
}

TEST_CASE("relay: a TCP tunnel that moves enough bytes switches to splice, byte-exact both ways") {
  Rig rig(true);
  Relay relay(&rig.loop, rig.pool, 60000);
  int ended = 0;
  Relay::End how = Relay::End::LocalError;
  relay.start(rig.cs(), rig.us(), "early-up|", {}, [&](Relay::End e) {
    ++ended;
    how = e;
  });
  rig.client_app.start_reading();
  rig.upstream_app.start_reading();
  // A small exchange stays in buffer mode.
  rig.client_app.send("hello");
  rig.run_until([&] { return rig.upstream_app.got.size() == 14; });
  CHECK_FALSE(relay.splicing());
  // A bulk download passes kSpliceAfter and moves the rest in the kernel.
  const std::string down = pattern(8 << 20), up = pattern(3 << 20);
  rig.upstream_app.send(down);
  rig.run_until([&] { return rig.client_app.got.size() == down.size(); }, 10000);
  CHECK(relay.splicing());
  CHECK(rig.client_app.got == down);
  // Uploads now splice too, and each half-close is passed on after the last byte.
  rig.client_app.send(up);
  rig.client_app.shut();
  rig.run_until([&] { return rig.upstream_app.eof; }, 10000);
  CHECK(rig.upstream_app.got == "early-up|hello" + up);
  CHECK(ended == 0);
  rig.upstream_app.send("bye");
  rig.upstream_app.shut();
  rig.run_until([&] { return ended > 0 && rig.client_app.eof; }, 10000);
  CHECK(rig.client_app.got == down + "bye");
  CHECK(ended == 1);
  CHECK(how == Relay::End::ClientEofFirst);  // the client half-closed first, during splice
  CHECK(relay.bytes_up() == 14 + up.size());
  CHECK(relay.bytes_down() == down.size() + 3);
  CHECK(rig.client_side.handle.data == &rig.marker);
}

TEST_CASE("relay: splice mode keeps backpressure: a reader that stops holds the sender back") {
  Rig rig(true);
  Relay relay(&rig.loop, rig.pool, 60000);
  relay.start(rig.cs(), rig.us(), {}, {}, [](Relay::End) {});
  rig.upstream_app.start_reading();
  rig.client_app.send(pattern(Relay::kSpliceAfter + 1000));
  rig.run_until([&] { return rig.upstream_app.got.size() == Relay::kSpliceAfter + 1000; });
  REQUIRE(relay.splicing());
  uv_read_stop(rig.upstream_app.s());
  const size_t total = 64 << 20;
  rig.client_app.send(pattern(total));
  rig.run_until([] { return false; }, 500);
  // What moved is bounded by the kernel's socket buffers and the pipe, not the 64 MiB sent.
  CHECK(relay.bytes_up() < Relay::kSpliceAfter + 1000 + (24 << 20));
  rig.upstream_app.start_reading();
  rig.run_until([&] { return rig.upstream_app.got.size() == Relay::kSpliceAfter + 1000 + total; }, 20000);
  CHECK(relay.bytes_up() == Relay::kSpliceAfter + 1000 + total);
}

TEST_CASE("relay: a reset during splice ends the tunnel with an error") {
  Rig rig(true);
  Relay relay(&rig.loop, rig.pool, 60000);
  bool ended = false;
  Relay::End how = Relay::End::ClientEofFirst;
  relay.start(rig.cs(), rig.us(), {}, {}, [&](Relay::End e) {
    ended = true;
    how = e;
  });
  rig.client_app.start_reading();
  rig.upstream_app.send(pattern(Relay::kSpliceAfter * 2));
  rig.run_until([&] { return rig.client_app.got.size() == Relay::kSpliceAfter * 2; });
  REQUIRE(relay.splicing());
  // SO_LINGER 0: the upstream's close sends a reset instead of a FIN.
  uv_os_fd_t fd = -1;
  uv_fileno(&rig.upstream_app.pipe.handle, &fd);
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  uv_close(&rig.upstream_app.pipe.handle, nullptr);
  rig.run_until([&] { return ended; });
  CHECK(ended);
  CHECK(how == Relay::End::UpstreamError);  // the side that reset is named
}

// The owner's reads, already running, go on into the relay: no stop and restart (in libuv 1.44
// a restart after the descriptor's interest fell to zero costs a failed EPOLL_CTL_ADD and a MOD).
TEST_CASE("relay: take_over keeps running reads running and moves them into the relay") {
  Rig rig;
  std::string owner_got;
  auto owner_alloc = [](uv_handle_t*, size_t, uv_buf_t* b) {
    static char buf[4096];
    *b = uv_buf_init(buf, sizeof buf);
  };
  static std::string* owner_sink = nullptr;
  owner_sink = &owner_got;
  auto owner_read = [](uv_stream_t*, ssize_t n, const uv_buf_t* b) {
    if (n > 0) owner_sink->append(b->base, static_cast<size_t>(n));
  };
  uv_read_start(rig.cs(), owner_alloc, owner_read);
  uv_read_start(rig.us(), owner_alloc, owner_read);
  rig.run_until([] { return false; }, 20);  // the loop has armed both descriptors
  REQUIRE(rig.client_side.stream.io_watcher.events != 0);
  Relay relay(&rig.loop, rig.pool, 60000);
  relay.take_over(true, true, false);
  relay.start(rig.cs(), rig.us(), {}, {}, [](Relay::End) {});
  // The interest the loop registered never dropped: libuv has nothing to re-register.
  CHECK(rig.client_side.stream.io_watcher.events != 0);
  CHECK(rig.upstream_side.stream.io_watcher.events != 0);
  rig.client_app.start_reading();
  rig.upstream_app.start_reading();
  rig.client_app.send("to-upstream");
  rig.upstream_app.send("to-client");
  rig.run_until([&] { return rig.upstream_app.got.size() == 11 && rig.client_app.got.size() == 9; });
  CHECK(rig.upstream_app.got == "to-upstream");
  CHECK(rig.client_app.got == "to-client");
  CHECK(owner_got.empty());
  relay.detach();  // the reads stop and the data pointers go back
  CHECK_FALSE(uv_is_active(reinterpret_cast<uv_handle_t*>(rig.cs())));
  CHECK(rig.client_side.handle.data == &rig.marker);
}

TEST_CASE("relay: a client EOF read before the tunnel is passed on after the early bytes") {
  Rig rig;
  Relay relay(&rig.loop, rig.pool, 60000);
  int ended = 0;
  Relay::End how = Relay::End::LocalError;
  relay.take_over(false, false, true);
  relay.start(rig.cs(), rig.us(), "early-up", {}, [&](Relay::End e) {
    ++ended;
    how = e;
  });
  rig.client_app.start_reading();
  rig.upstream_app.start_reading();
  rig.run_until([&] { return rig.upstream_app.eof; });
  CHECK(rig.upstream_app.eof);  // the client app never shut: the EOF is the one taken over
  CHECK(rig.upstream_app.got == "early-up");
  rig.upstream_app.send("reply");
  rig.upstream_app.shut();
  rig.run_until([&] { return ended > 0 && rig.client_app.got.size() == 5; });
  CHECK(rig.client_app.got == "reply");
  CHECK(ended == 1);
  CHECK(how == Relay::End::ClientEofFirst);
}
