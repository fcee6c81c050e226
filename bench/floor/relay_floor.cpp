// sluice-relay-floor: what relaying one loopback TCP stream costs on this kernel, by method.
//
// A child process runs a sender (writes SIZE bytes, then closes) and a receiver (reads to EOF,
// checks every byte against the sender's pattern); this process relays between them, one
// direction, passing the sender's EOF on as a half-close (shutdown SHUT_WR), and reports its own
// CPU-seconds per GiB (getrusage RUSAGE_SELF: its threads and its io_uring workers). The
// child's CPU is printed beside it: on loopback the receiving socket's TCP work runs in the
// sender's system call, so part of each hop's receive is billed to whoever sends into it.
//
//   sluice-relay-floor relay METHOD [--size BYTES] [--pipe BYTES] [--chunk BYTES] [--buf BYTES]
//                      [--sndbuf BYTES] [--rcvbuf BYTES] [--rcvlowat BYTES] [--recv BYTES] [--repeat N] [--v6]
//     --recv: the receiver's read size (default 1 MiB; `sluice bench` reads 256 KiB)
//     METHOD: direct (no relay: sender straight to receiver), splice (epoll, non-blocking, like
//     base/relay_splice.cpp), splice-block (blocking splice, no epoll), rw (read/write through a
//     user buffer, epoll), uring-splice (IORING_OP_SPLICE), uring-rw (READ_FIXED/WRITE_FIXED on
//     registered buffers, a read and a write in flight)
//   sluice-relay-floor cycle METHOD [--count N] [--clients N] [--repeat N] [--v6]
//     a proxy's connection cycle: accept a client, open a socket, connect it to an upstream,
//     close both; METHOD epoll (accept4/connect/close as system calls, epoll waits) or uring
//     (multishot accept, IORING_OP_SOCKET/CONNECT/CLOSE batched per wake-up); CPU-s per 10k.
//
// Loopback only; every run is bounded by SIZE or COUNT and by an alarm.
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string what, method;
  uint64_t size = 1ull << 30;
  size_t pipe = 1 << 20, chunk = 1 << 20, buf = 256 << 10, recv = 1 << 20;
  int sndbuf = 0, rcvbuf = 0, rcvlowat = 0;
  int repeat = 3;
  uint64_t count = 20000;
  int clients = 8;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "relay-floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

double cpu_of(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}
double sys_of(const rusage& r) {
  return static_cast<double>(r.ru_stime.tv_sec) + static_cast<double>(r.ru_stime.tv_usec) / 1e6;
}

bool g_v6 = false;  // --v6: ::1 instead of 127.0.0.1

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

Addr loopback(uint16_t port) {
  Addr a;
  if (g_v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    in6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.ss);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
  }
  return a;
}

int family() { return g_v6 ? AF_INET6 : AF_INET; }

int listen_loopback(uint16_t* port) {
  int fd = ::socket(family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  Addr a = loopback(0);
  if (::bind(fd, a.sa(), a.len) != 0) die("bind");
  if (::listen(fd, 1024) != 0) die("listen");
  socklen_t len = sizeof a.ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a.ss), &len);
  *port =
      ntohs(g_v6 ? reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port);
  return fd;
}

int connect_loopback(uint16_t port) {
  int fd = ::socket(family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  Addr a = loopback(port);
  if (::connect(fd, a.sa(), a.len) != 0) die("connect");
  return fd;
}

void set_nonblock(int fd, bool on) {
  int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

// The pattern: byte i of the stream is pattern[i % kPeriod]; the period is not a power of two,
// so a lost or repeated block shows.
constexpr size_t kPeriod = (1 << 20) + 7;
std::vector<unsigned char> make_pattern() {
  std::vector<unsigned char> p(kPeriod * 2);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < kPeriod; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = p[i + kPeriod] = static_cast<unsigned char>(x);
  }
  return p;
}

double thread_cpu() {
  rusage r;
  getrusage(RUSAGE_THREAD, &r);
  return cpu_of(r);
}

// The child: a sender into `in_port` and a receiver accepting on `out_fd`. Exit status 0 when
// the receiver saw exactly `size` bytes, in order, then EOF; each thread's CPU-seconds go to
// `report` as text ("SENDER RECEIVER"; the receiver's include its check of the bytes).
[[noreturn]] void run_ends(uint16_t in_port, int out_fd, uint64_t size, size_t recv_size, int report) {
  const auto pattern = make_pattern();
  std::atomic<bool> ok{false};
  double receiver_cpu = 0;
  std::thread receiver([&] {
    const double c0 = thread_cpu();
    int fd = ::accept4(out_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) die("accept");
    std::vector<unsigned char> b(recv_size);
    uint64_t got = 0;
    bool same = true;
    for (;;) {
      ssize_t n = ::read(fd, b.data(), b.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die("receiver read");
      if (n == 0) break;
      if (same && std::memcmp(b.data(), pattern.data() + got % kPeriod, static_cast<size_t>(n)) != 0) same = false;
      got += static_cast<uint64_t>(n);
    }
    ::close(fd);
    if (!same) std::fprintf(stderr, "relay-floor: receiver: bytes differ from the pattern\n");
    if (got != size)
      std::fprintf(stderr, "relay-floor: receiver: %llu bytes, expected %llu\n", static_cast<unsigned long long>(got),
                   static_cast<unsigned long long>(size));
    ok = same && got == size;
    receiver_cpu = thread_cpu() - c0;
  });
  const double c0 = thread_cpu();
  int fd = connect_loopback(in_port);
  uint64_t sent = 0;
  while (sent < size) {
    size_t off = sent % kPeriod;
    size_t n = static_cast<size_t>(std::min<uint64_t>(size - sent, 256 << 10));
    ssize_t w = ::write(fd, pattern.data() + off, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) die("sender write");
    sent += static_cast<uint64_t>(w);
  }
  ::close(fd);
  const double sender_cpu = thread_cpu() - c0;
  receiver.join();
  char line[64];
  int n = std::snprintf(line, sizeof line, "%.6f %.6f\n", sender_cpu, receiver_cpu);
  if (::write(report, line, static_cast<size_t>(n)) != n) std::_Exit(4);
  std::_Exit(ok ? 0 : 3);
}

void apply_sockopts(const Options& o, int src, int dst) {
  if (o.rcvbuf) ::setsockopt(src, SOL_SOCKET, SO_RCVBUF, &o.rcvbuf, sizeof o.rcvbuf);
  if (o.sndbuf) ::setsockopt(dst, SOL_SOCKET, SO_SNDBUF, &o.sndbuf, sizeof o.sndbuf);
  if (o.rcvlowat) ::setsockopt(src, SOL_SOCKET, SO_RCVLOWAT, &o.rcvlowat, sizeof o.rcvlowat);
}

// ---- relay methods: each moves src to EOF into dst, then shuts dst's write side; returns bytes.

uint64_t relay_splice(const Options& o, int src, int dst, bool blocking) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | (blocking ? 0 : O_NONBLOCK)) != 0) die("pipe2");
  int cap = ::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(o.pipe));
  if (cap < 0) die("F_SETPIPE_SZ");
  const unsigned flags = SPLICE_F_MOVE | (blocking ? 0 : SPLICE_F_NONBLOCK);
  set_nonblock(src, !blocking);
  set_nonblock(dst, !blocking);
  int ep = -1;
  if (!blocking) {
    ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = src;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, src, &ev);
    ev.events = 0;
    ev.data.fd = dst;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, dst, &ev);
  }
  size_t in_pipe = 0;
  uint64_t total = 0;
  bool eof = false, dst_blocked = false;
  while (!eof || in_pipe > 0) {
    bool progress = false;
    if (!eof && in_pipe < static_cast<size_t>(cap)) {
      size_t want = std::min(o.chunk, static_cast<size_t>(cap) - in_pipe);
      ssize_t n = ::splice(src, nullptr, p[1], nullptr, want, flags);
      if (n > 0) {
        in_pipe += static_cast<size_t>(n);
        progress = true;
      } else if (n == 0) {
        eof = true;
        progress = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        die("splice in");
      }
    }
    if (in_pipe > 0) {
      ssize_t n = ::splice(p[0], nullptr, dst, nullptr, in_pipe, flags);
      if (n > 0) {
        in_pipe -= static_cast<size_t>(n);
        total += static_cast<uint64_t>(n);
        progress = true;
        dst_blocked = false;
      } else if (n < 0 && errno == EAGAIN) {
        dst_blocked = true;
      } else if (n < 0 && errno != EINTR) {
        die("splice out");
      }
    }
    if (progress && !dst_blocked) continue;
    if (blocking) continue;
    // Wait: for src while the pipe has room, for dst while its last splice was refused.
    epoll_event ev{};
    ev.events = dst_blocked ? static_cast<uint32_t>(EPOLLOUT) : 0u;
    ev.data.fd = dst;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, dst, &ev);
    ev.events = (!eof && in_pipe < static_cast<size_t>(cap)) ? static_cast<uint32_t>(EPOLLIN | EPOLLRDHUP) : 0u;
    ev.data.fd = src;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, src, &ev);
    epoll_event got[2];
    if (::epoll_wait(ep, got, 2, 10000) == 0) {
      errno = ETIMEDOUT;
      die("epoll_wait");
    }
  }
  ::shutdown(dst, SHUT_WR);
  if (ep >= 0) ::close(ep);
  ::close(p[0]);
  ::close(p[1]);
  return total;
}

uint64_t relay_rw(const Options& o, int src, int dst) {
  std::vector<char> b(o.buf);
  set_nonblock(src, true);
  set_nonblock(dst, true);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = src;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, src, &ev);
  ev.events = 0;
  ev.data.fd = dst;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, dst, &ev);
  uint64_t total = 0;
  size_t have = 0, off = 0;
  bool eof = false;
  while (!eof || have > off) {
    if (have > off) {
      ssize_t n = ::write(dst, b.data() + off, have - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        total += static_cast<uint64_t>(n);
        if (off == have) off = have = 0;
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) die("write");
      ev.events = EPOLLOUT;
      ev.data.fd = dst;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, dst, &ev);
      epoll_event g[2];
      ::epoll_wait(ep, g, 2, 10000);
      ev.events = 0;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, dst, &ev);
      continue;
    }
    ssize_t n = ::read(src, b.data(), b.size());
    if (n > 0) {
      have = static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      eof = true;
      continue;
    }
    if (errno != EAGAIN && errno != EINTR) die("read");
    epoll_event g[2];
    ::epoll_wait(ep, g, 2, 10000);
  }
  ::shutdown(dst, SHUT_WR);
  ::close(ep);
  return total;
}

uint64_t relay_uring_splice(const Options& o, int src, int dst) {
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) != 0) die("io_uring_queue_init");
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) die("pipe2");
  int cap = ::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(o.pipe));
  if (cap < 0) die("F_SETPIPE_SZ");
  uint64_t total = 0;
  size_t in_pipe = 0;
  bool eof = false, reading = false, writing = false;
  while (!eof || in_pipe > 0 || reading || writing) {
    if (!eof && !reading && in_pipe < static_cast<size_t>(cap)) {
      io_uring_sqe* s = io_uring_get_sqe(&ring);
      io_uring_prep_splice(s, src, -1, p[1], -1,
                           static_cast<unsigned>(std::min(o.chunk, static_cast<size_t>(cap) - in_pipe)), SPLICE_F_MOVE);
      io_uring_sqe_set_data64(s, 1);
      reading = true;
    }
    if (!writing && in_pipe > 0) {
      io_uring_sqe* s = io_uring_get_sqe(&ring);
      io_uring_prep_splice(s, p[0], -1, dst, -1, static_cast<unsigned>(in_pipe), SPLICE_F_MOVE);
      io_uring_sqe_set_data64(s, 2);
      writing = true;
    }
    io_uring_cqe* c;
    if (io_uring_submit_and_wait(&ring, 1) < 0) die("io_uring_submit_and_wait");
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, c) {
      ++seen;
      if (c->res < 0) {
        errno = -c->res;
        die("uring splice");
      }
      if (c->user_data == 1) {
        reading = false;
        if (c->res == 0) eof = true;
        in_pipe += static_cast<size_t>(c->res);
      } else {
        writing = false;
        in_pipe -= static_cast<size_t>(c->res);
        total += static_cast<uint64_t>(c->res);
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
  ::shutdown(dst, SHUT_WR);
  io_uring_queue_exit(&ring);
  ::close(p[0]);
  ::close(p[1]);
  return total;
}

// Registered buffers, used in order: reads fill slots, writes drain them, one of each in flight.
uint64_t relay_uring_rw(const Options& o, int src, int dst) {
  constexpr int kSlots = 4;
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) != 0) die("io_uring_queue_init");
  std::vector<char> mem(o.buf * kSlots);
  iovec iov[kSlots];
  for (int i = 0; i < kSlots; ++i) iov[i] = {mem.data() + o.buf * static_cast<size_t>(i), o.buf};
  if (io_uring_register_buffers(&ring, iov, kSlots) != 0) die("io_uring_register_buffers");
  size_t len[kSlots] = {}, done[kSlots] = {};
  uint64_t rd = 0, wr = 0;  // slot sequence numbers: rd slots filled, wr slots drained
  uint64_t total = 0;
  bool eof = false, reading = false, writing = false;
  while (!eof || wr < rd || reading || writing) {
    if (!eof && !reading && rd - wr < kSlots) {
      int i = static_cast<int>(rd % kSlots);
      io_uring_sqe* s = io_uring_get_sqe(&ring);
      io_uring_prep_read_fixed(s, src, iov[i].iov_base, static_cast<unsigned>(o.buf), 0, i);
      io_uring_sqe_set_data64(s, 1);
      reading = true;
    }
    if (!writing && wr < rd) {
      int i = static_cast<int>(wr % kSlots);
      io_uring_sqe* s = io_uring_get_sqe(&ring);
      io_uring_prep_write_fixed(s, dst, static_cast<char*>(iov[i].iov_base) + done[i],
                                static_cast<unsigned>(len[i] - done[i]), 0, i);
      io_uring_sqe_set_data64(s, 2);
      writing = true;
    }
    io_uring_cqe* c;
    if (io_uring_submit_and_wait(&ring, 1) < 0) die("io_uring_submit_and_wait");
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, c) {
      ++seen;
      if (c->res < 0) {
        errno = -c->res;
        die("uring rw");
      }
      if (c->user_data == 1) {
        reading = false;
        if (c->res == 0) {
          eof = true;
        } else {
          int i = static_cast<int>(rd % kSlots);
          len[i] = static_cast<size_t>(c->res);
          done[i] = 0;
          ++rd;
        }
      } else {
        writing = false;
        int i = static_cast<int>(wr % kSlots);
        done[i] += static_cast<size_t>(c->res);
        total += static_cast<uint64_t>(c->res);
        if (done[i] == len[i]) ++wr;
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
  ::shutdown(dst, SHUT_WR);
  io_uring_queue_exit(&ring);
  return total;
}

int run_relay(const Options& o) {
  std::printf(
      "| method | pipe | chunk | buf | sndbuf | rcvbuf | rcvlowat | MB/s | relay CPU-s/GiB | of it sys | sender "
      "CPU-s/GiB | receiver CPU-s/GiB |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int r = 0; r < o.repeat; ++r) {
    uint16_t in_port, out_port;
    int in_fd = listen_loopback(&in_port);
    int out_fd = listen_loopback(&out_port);
    const bool direct = o.method == "direct";
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) die("pipe2");
    pid_t child = ::fork();
    if (child < 0) die("fork");
    if (child == 0) {
      ::alarm(120);
      run_ends(direct ? out_port : in_port, out_fd, o.size, o.recv, report[1]);
    }
    ::close(report[1]);
    rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    auto t0 = std::chrono::steady_clock::now();
    uint64_t moved = o.size;
    if (!direct) {
      int src = ::accept4(in_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (src < 0) die("accept");
      int dst = connect_loopback(out_port);
      apply_sockopts(o, src, dst);
      if (o.method == "splice")
        moved = relay_splice(o, src, dst, false);
      else if (o.method == "splice-block")
        moved = relay_splice(o, src, dst, true);
      else if (o.method == "rw")
        moved = relay_rw(o, src, dst);
      else if (o.method == "uring-splice")
        moved = relay_uring_splice(o, src, dst);
      else if (o.method == "uring-rw")
        moved = relay_uring_rw(o, src, dst);
      else {
        std::fprintf(stderr, "relay-floor: unknown method %s\n", o.method.c_str());
        ::kill(child, SIGKILL);
        return 2;
      }
      getrusage(RUSAGE_SELF, &r1);
      ::close(src);
      ::close(dst);
    }
    char line[64] = {};
    double sender = 0, receiver = 0;
    if (::read(report[0], line, sizeof line - 1) > 0) std::sscanf(line, "%lf %lf", &sender, &receiver);
    ::close(report[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    auto t1 = std::chrono::steady_clock::now();
    if (direct) getrusage(RUSAGE_SELF, &r1);
    ::close(in_fd);
    ::close(out_fd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || moved != o.size) {
      std::fprintf(stderr, "relay-floor: transfer failed (child status %d, relayed %llu)\n", status,
                   static_cast<unsigned long long>(moved));
      return 1;
    }
    const double gib = static_cast<double>(o.size) / (1u << 30);
    const double secs = std::chrono::duration<double>(t1 - t0).count();
    const double cpu = cpu_of(r1) - cpu_of(r0), sys = sys_of(r1) - sys_of(r0);
    std::printf("| %s | %zu | %zu | %zu | %d | %d | %d | %.0f | %.3f | %.0f%% | %.3f | %.3f |\n", o.method.c_str(),
                o.pipe, o.chunk, o.buf, o.sndbuf, o.rcvbuf, o.rcvlowat, static_cast<double>(o.size) / secs / 1e6,
                cpu / gib, cpu > 0 ? 100 * sys / cpu : 0.0, sender / gib, receiver / gib);
    std::fflush(stdout);
  }
  return 0;
}

// ---- the connection cycle ------------------------------------------------------------------

// The child: `clients` threads connect, wait for the proxy's close, close, until `count` cycles
// are done; one thread accepts on the upstream listener and closes what it accepts.
[[noreturn]] void run_cycle_ends(uint16_t proxy_port, int up_fd, uint16_t up_port, uint64_t count, int clients) {
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::thread upstream([&] {
    while (!stop) {
      int fd = ::accept4(up_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) ::close(fd);
    }
  });
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i)
    ts.emplace_back([&] {
      char b[16];
      while (next.fetch_add(1) < count) {
        int fd = connect_loopback(proxy_port);
        while (::read(fd, b, sizeof b) > 0) {
        }
        ::close(fd);
      }
    });
  for (auto& t : ts) t.join();
  stop = true;
  ::close(connect_loopback(up_port));  // wakes the upstream thread's accept
  upstream.join();
  std::_Exit(0);
}

uint64_t cycle_epoll(int lfd, uint16_t up_port, uint64_t count) {
  set_nonblock(lfd, true);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = ~0ull;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  const Addr up = loopback(up_port);
  uint64_t done = 0;
  epoll_event got[64];
  while (done < count) {
    int n = ::epoll_wait(ep, got, 64, 10000);
    if (n <= 0) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      if (got[i].data.u64 == ~0ull) {
        for (;;) {
          int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          int u = ::socket(family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
          if (::connect(u, up.sa(), up.len) != 0 && errno != EINPROGRESS) die("connect");
          epoll_event e{};
          e.events = EPOLLOUT;
          e.data.u64 = (static_cast<uint64_t>(static_cast<uint32_t>(c)) << 32) | static_cast<uint32_t>(u);
          ::epoll_ctl(ep, EPOLL_CTL_ADD, u, &e);
        }
      } else {
        int c = static_cast<int>(got[i].data.u64 >> 32), u = static_cast<int>(got[i].data.u64 & 0xffffffffu);
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(u, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          errno = err;
          die("upstream connect");
        }
        ::epoll_ctl(ep, EPOLL_CTL_DEL, u, nullptr);
        ::close(u);
        ::close(c);
        ++done;
      }
    }
  }
  ::close(ep);
  return done;
}

uint64_t cycle_uring(int lfd, uint16_t up_port, uint64_t count) {
  io_uring ring;
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  if (io_uring_queue_init_params(512, &ring, &params) != 0) die("io_uring_queue_init");
  static const Addr up = loopback(up_port);
  enum : uint64_t { kAccept = 1, kSocket = 2, kConnect = 3, kClose = 4 };
  auto tag = [](uint64_t kind, int c, int u) {
    return kind << 56 | (static_cast<uint64_t>(static_cast<uint32_t>(c) & 0xffffff) << 28) |
           (static_cast<uint32_t>(u) & 0xfffffff);
  };
  auto sqe = [&] {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    if (!s) {
      io_uring_submit(&ring);
      s = io_uring_get_sqe(&ring);
    }
    return s;
  };
  io_uring_sqe* s = sqe();
  io_uring_prep_multishot_accept(s, lfd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, tag(kAccept, 0, 0));
  uint64_t done = 0;
  while (done < count) {
    if (io_uring_submit_and_wait(&ring, 1) < 0) die("io_uring_submit_and_wait");
    io_uring_cqe* c;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, c) {
      ++seen;
      const uint64_t kind = c->user_data >> 56;
      const int cfd = static_cast<int>((c->user_data >> 28) & 0xffffff),
                ufd = static_cast<int>(c->user_data & 0xfffffff);
      if (kind == kAccept) {
        if (c->res < 0) {
          errno = -c->res;
          die("uring accept");
        }
        if (!(c->flags & IORING_CQE_F_MORE)) {  // re-arm a multishot the kernel ended
          io_uring_sqe* a = sqe();
          io_uring_prep_multishot_accept(a, lfd, nullptr, nullptr, SOCK_CLOEXEC);
          io_uring_sqe_set_data64(a, tag(kAccept, 0, 0));
        }
        io_uring_sqe* t = sqe();
        io_uring_prep_socket(t, family(), SOCK_STREAM | SOCK_CLOEXEC, 0, 0);
        io_uring_sqe_set_data64(t, tag(kSocket, c->res, 0));
      } else if (kind == kSocket) {
        if (c->res < 0) {
          errno = -c->res;
          die("uring socket");
        }
        io_uring_sqe* t = sqe();
        io_uring_prep_connect(t, c->res, up.sa(), up.len);
        io_uring_sqe_set_data64(t, tag(kConnect, cfd, c->res));
      } else if (kind == kConnect) {
        if (c->res < 0) {
          errno = -c->res;
          die("uring connect");
        }
        io_uring_sqe* t = sqe();
        io_uring_prep_close(t, ufd);
        io_uring_sqe_set_data64(t, tag(kClose, 0, 0));
        t = sqe();
        io_uring_prep_close(t, cfd);
        io_uring_sqe_set_data64(t, tag(kClose, 0, 0));
        ++done;
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
  io_uring_submit(&ring);
  io_uring_queue_exit(&ring);
  return done;
}

int run_cycle(const Options& o) {
  std::printf("| method | cycles | clients | cycles/s | proxy-side CPU-s per 10k | of it sys | ends CPU-s per 10k |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  double children_before = 0;
  for (int r = 0; r < o.repeat; ++r) {
    uint16_t port, up_port;
    int lfd = listen_loopback(&port);
    int up_fd = listen_loopback(&up_port);
    pid_t child = ::fork();
    if (child < 0) die("fork");
    if (child == 0) {
      ::alarm(120);
      ::close(lfd);
      run_cycle_ends(port, up_fd, up_port, o.count, o.clients);
    }
    ::close(up_fd);
    rusage r0, r1, c1;
    getrusage(RUSAGE_SELF, &r0);
    auto t0 = std::chrono::steady_clock::now();
    uint64_t done = 0;
    if (o.method == "epoll")
      done = cycle_epoll(lfd, up_port, o.count);
    else if (o.method == "uring")
      done = cycle_uring(lfd, up_port, o.count);
    else {
      std::fprintf(stderr, "relay-floor: unknown cycle method %s\n", o.method.c_str());
      ::kill(child, SIGKILL);
      return 2;
    }
    auto t1 = std::chrono::steady_clock::now();
    getrusage(RUSAGE_SELF, &r1);
    int status = 0;
    ::waitpid(child, &status, 0);
    getrusage(RUSAGE_CHILDREN, &c1);
    ::close(lfd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || done != o.count) {
      std::fprintf(stderr, "relay-floor: cycle run failed (child status %d)\n", status);
      return 1;
    }
    const double k = static_cast<double>(o.count) / 1e4;
    const double cpu = cpu_of(r1) - cpu_of(r0), sys = sys_of(r1) - sys_of(r0);
    const double ends = cpu_of(c1) - children_before;
    children_before = cpu_of(c1);
    std::printf("| %s | %llu | %d | %.0f | %.3f | %.0f%% | %.3f |\n", o.method.c_str(),
                static_cast<unsigned long long>(o.count), o.clients,
                static_cast<double>(o.count) / std::chrono::duration<double>(t1 - t0).count(), cpu / k,
                cpu > 0 ? 100 * sys / cpu : 0.0, ends / k);
    std::fflush(stdout);
  }
  return 0;
}

uint64_t parse_size(const char* s) {
  char* end = nullptr;
  uint64_t v = std::strtoull(s, &end, 10);
  if (*end == 'K' || *end == 'k') v <<= 10;
  if (*end == 'M' || *end == 'm') v <<= 20;
  if (*end == 'G' || *end == 'g') v <<= 30;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: sluice-relay-floor relay METHOD [--size B] [--pipe B] [--chunk B] [--buf B] [--sndbuf B]\n"
                 "                          [--rcvbuf B] [--rcvlowat B] [--recv B] [--repeat N] [--v6]\n"
                 "         METHOD: direct splice splice-block rw uring-splice uring-rw\n"
                 "       sluice-relay-floor cycle METHOD [--count N] [--clients N] [--repeat N] [--v6]\n"
                 "         METHOD: epoll uring\n");
    return 2;
  }
  o.what = argv[1];
  o.method = argv[2];
  for (int i = 3; i < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--v6") {
      g_v6 = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "relay-floor: %s needs a value\n", k.c_str());
      return 2;
    }
    uint64_t v = parse_size(argv[i + 1]);
    if (k == "--size")
      o.size = v;
    else if (k == "--pipe")
      o.pipe = v;
    else if (k == "--chunk")
      o.chunk = v;
    else if (k == "--buf")
      o.buf = v;
    else if (k == "--recv")
      o.recv = v;
    else if (k == "--sndbuf")
      o.sndbuf = static_cast<int>(v);
    else if (k == "--rcvbuf")
      o.rcvbuf = static_cast<int>(v);
    else if (k == "--rcvlowat")
      o.rcvlowat = static_cast<int>(v);
    else if (k == "--repeat")
      o.repeat = static_cast<int>(v);
    else if (k == "--count")
      o.count = v;
    else if (k == "--clients")
      o.clients = static_cast<int>(v);
    else {
      std::fprintf(stderr, "relay-floor: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (o.size == 0 || o.repeat < 1 || o.repeat > 20 || o.count == 0 || o.count > 1000000 || o.clients < 1 ||
      o.clients > 64 || o.buf == 0 || o.chunk == 0 || o.recv == 0) {
    std::fprintf(stderr, "relay-floor: bad option value\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  ::alarm(600);
  if (o.what == "relay") return run_relay(o);
  if (o.what == "cycle") return run_cycle(o);
  std::fprintf(stderr, "relay-floor: relay or cycle, not %s\n", o.what.c_str());
  return 2;
}
