#include "bench/loadgen.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#include "bench/http.hpp"
#include "bench/tls.hpp"

namespace sluice::bench {

namespace {

constexpr size_t kReadBuf = 256 * 1024;       // one per loop: a read is consumed in its callback
constexpr size_t kUploadQueue = 1024 * 1024;  // queued upload bytes per connection
constexpr size_t kUploadPump = 16;            // writes queued per pump call
constexpr size_t kOpenWindow = 128;           // idle-tunnels: tunnels being opened at once
constexpr uint64_t kSettleMs = 500;           // idle-tunnels: quiet time before measuring RSS
constexpr uint64_t kMaxGraceMs = 2000;        // in-flight operations may finish this long after the end

uint64_t now_ns() { return uv_hrtime(); }

constexpr char kSocksGreeting[] = "\x05\x01\x00";              // SOCKS5, one method: no authentication
constexpr char kSocksGreetingUserPass[] = "\x05\x02\x00\x02";  // no authentication, username/password

// RFC 1929: VER(1) ULEN USER PLEN PASSWORD, from "user:password".
std::string socks_user_pass_request(const std::string& auth) {
  size_t colon = auth.find(':');
  std::string user = auth.substr(0, std::min<size_t>(colon, 255)), pass = auth.substr(colon + 1).substr(0, 255);
  std::string out = {0x01, static_cast<char>(user.size())};
  out += user;
  out += static_cast<char>(pass.size());
  out += pass;
  return out;
}

// VER CMD RSV ATYP ADDR PORT for the target (an IP literal: the bench only dials loopback).
std::string socks_connect_request(const Endpoint& target) {
  std::string out = {0x05, 0x01, 0x00};
  if (target.addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&target.addr);
    out += 0x04;
    out.append(reinterpret_cast<const char*>(&a->sin6_addr), 16);
    out.append(reinterpret_cast<const char*>(&a->sin6_port), 2);
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&target.addr);
    out += 0x01;
    out.append(reinterpret_cast<const char*>(&a->sin_addr), 4);
    out.append(reinterpret_cast<const char*>(&a->sin_port), 2);
  }
  return out;
}

// The length of a whole SOCKS5 reply, 0 while incomplete, -1 when malformed.
long socks_reply_length(const std::string& in) {
  if (in.size() < 5) return 0;
  if (in[0] != 0x05) return -1;
  long len = 0;
  switch (static_cast<uint8_t>(in[3])) {
    case 0x01: len = 10; break;
    case 0x04: len = 22; break;
    case 0x03: len = 7 + static_cast<uint8_t>(in[4]); break;
    default: return -1;
  }
  return static_cast<long>(in.size()) >= len ? len : 0;
}

struct Runner;
struct Slot;

// One socket. Owned by its handle: freed in the close callback. A slot detaches (slot = nullptr)
// before closing, so late callbacks (a cancelled write, a cancelled connect) know to do nothing.
struct Conn {
  Runner* r = nullptr;
  Slot* slot = nullptr;
  bool is_pipe = false;
  uint32_t exchanges = 0;        // responses completed on this connection
  std::unique_ptr<TlsPipe> tls;  // TLS inside the tunnel (or direct), once the handshake began
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };
  uv_connect_t creq;

  Conn() {
    std::memset(&tcp, 0, sizeof(uv_pipe_t) > sizeof(uv_tcp_t) ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
    std::memset(&creq, 0, sizeof creq);
  }
  uv_handle_t* handle() {
    return is_pipe ? reinterpret_cast<uv_handle_t*>(&pipe) : reinterpret_cast<uv_handle_t*>(&tcp);
  }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(handle()); }
};

struct WriteReq {
  uv_write_t req{};
  Conn* conn = nullptr;
  size_t upload_len = 0;  // body bytes this write carries (upload), counted once written
  std::string owned;      // TLS: the ciphertext this write carries
};

// One worker: runs operations one after another (closed loop), or takes scheduled ones
// (open loop). In idle-tunnels, each slot opens one tunnel and holds it.
struct Slot {
  enum class Phase { Idle, Connecting, Handshake, TlsHandshake, Exchange, Holding, Done };
  enum class TimerUse { Timeout, Deferred };

  Runner* r = nullptr;
  Conn* conn = nullptr;
  Phase phase = Phase::Idle;
  TimerUse timer_use = TimerUse::Timeout;
  bool op_active = false;
  bool in_begin = false;  // inside begin_op: a failure here must not start the next op re-entrantly
  bool retried = false;   // this op was already resent once on a fresh connection
  uint64_t op_start = 0;  // scheduled start (open loop) or actual start
  uint64_t sent_at = 0;   // actual start
  uint64_t upload_left = 0;
  ResponseReader reader;
  int socks_step = 0;     // SOCKS5: waiting for 0 the method reply, 2 the username/password reply, 1 the CONNECT reply
  std::string socks_buf;  // SOCKS5 reply bytes so far
  uv_timer_t timer{};
};

void on_conn_closed(uv_handle_t* h) { delete static_cast<Conn*>(h->data); }
void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
void on_connect(uv_connect_t* req, int status);
void on_write(uv_write_t* req, int status);
void on_slot_timer(uv_timer_t* t);

struct Runner {
  const Options& o;
  const Scenario scen;  // the scenario, SOCKS5 ones as their CONNECT twin
  const bool socks;     // the tunnel handshake is SOCKS5's (greeting, then CONNECT)
  const bool via_proxy;
  const int concurrency;
  const uint64_t budget;      // operations this loop may start
  const double rate;          // this loop's share of the offered rate; 0: closed loop
  ssl_ctx_st* const tls_ctx;  // TLS inside the tunnel (or direct); nullptr: none
  std::string tls_verify_name;
  Result part;

  uv_loop_t loop{};
  uv_timer_t deadline{}, tick{}, grace{}, hold{};
  // Open loop: a timerfd armed at the next scheduled start, so operations leave within
  // microseconds of their schedule (a libuv timer has millisecond granularity, which would add
  // up to ~1.5 ms of client-made delay to every latency). `tick` is the fallback.
  int tfd = -1;
  uv_poll_t tick_poll{};
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<Slot*> idle;  // open loop: slots waiting for the schedule
  std::vector<char> read_buf = std::vector<char>(kReadBuf);
  std::vector<char> plain_buf;  // TLS: decrypted bytes
  std::string connect_req, socks_req, socks_user_pass, request;

  uint64_t t0 = 0, t_end = 0;
  uint64_t started = 0, active = 0;
  uint64_t scheduled = 0, dispatched = 0;  // open loop
  double period_ns = 0;
  bool stopping = false, finished = false;

  // idle-tunnels
  size_t next_unopened = 0, opening = 0, held = 0;
  bool hold_phase = false;

  Runner(const Options& opts, int conc, uint64_t ops, double r, ssl_ctx_st* ctx)
      : o(opts),
        scen(tunnel_twin(opts.scenario)),
        socks(uses_socks(opts.scenario)),
        via_proxy(!opts.direct),
        concurrency(conc),
        budget(ops),
        rate(r),
        tls_ctx(ctx) {
    part.options = opts;
    const std::string a = o.target.authority();
    if (tls_ctx) {
      tls_verify_name = o.sni.empty() ? o.target.host : o.sni;
      plain_buf.resize(kReadBuf);
    }
    const std::string& name = o.sni.empty() ? o.name : o.sni;
    const std::string host = name.empty() ? a : name + ":" + std::to_string(o.target.port);
    const std::string auth = via_proxy ? proxy_authorization(o.proxy) : "";
    // With --sni the client names the target as a URL would: CONNECT, Host and SNI carry the name.
    connect_req = "CONNECT " + host + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: sluice-bench\r\n" + auth + "\r\n";
    socks_req = socks_connect_request(o.target);
    if (via_proxy && !o.proxy.auth.empty()) socks_user_pass = socks_user_pass_request(o.proxy.auth);
    switch (scen) {
      case Scenario::ConnectStorm: request = "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"; break;
      case Scenario::IdleTunnels: request = "GET / HTTP/1.1\r\nHost: " + a + "\r\n\r\n"; break;
      case Scenario::HttpForward:
        if (tls_ctx)  // inside the TLS tunnel: origin-form, and nothing for the proxy to read
          request = "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
        else
          request = std::string("GET ") + (via_proxy ? "http://" + a + "/" : "/") + " HTTP/1.1\r\nHost: " + a + "\r\n" +
                    auth + "\r\n";
        break;
      case Scenario::TunnelThroughput:
        if (o.upload)
          request = "POST /sink HTTP/1.1\r\nHost: " + a + "\r\nContent-Length: " + std::to_string(o.size) +
                    "\r\nConnection: close\r\n\r\n";
        else
          request = "GET /bytes?n=" + std::to_string(o.size) + (o.upstream_close ? "&close=1" : "") +
                    " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
        break;
      case Scenario::SocksStorm:
      case Scenario::SocksThroughput: break;  // never: `scen` is the CONNECT twin
    }
  }

  bool tunnelled() const { return via_proxy && (scen != Scenario::HttpForward || tls_ctx); }

  // ---- the run ----

  void run() {
    uv_loop_init(&loop);
    for (uv_timer_t* t : {&deadline, &tick, &grace, &hold}) {
      uv_timer_init(&loop, t);
      t->data = this;
    }
    slots.reserve(static_cast<size_t>(concurrency));
    for (int i = 0; i < concurrency; ++i) {
      auto s = std::make_unique<Slot>();
      s->r = this;
      uv_timer_init(&loop, &s->timer);
      s->timer.data = s.get();
      slots.push_back(std::move(s));
    }
    t0 = now_ns();
    uv_timer_start(
        &deadline, [](uv_timer_t* t) { static_cast<Runner*>(t->data)->on_deadline(); },
        static_cast<uint64_t>(o.duration_s * 1000), 0);
    if (scen == Scenario::IdleTunnels) {
      open_next();
    } else if (rate > 0) {
      period_ns = 1e9 / rate;
      for (auto& s : slots) idle.push_back(s.get());
      prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // this thread's timers fire on time
      tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      if (tfd >= 0 && uv_poll_init(&loop, &tick_poll, tfd) == 0) {
        tick_poll.data = this;
        uv_poll_start(&tick_poll, UV_READABLE, [](uv_poll_t* p, int, int) {
          auto* r = static_cast<Runner*>(p->data);
          uint64_t expirations;
          ssize_t got = ::read(r->tfd, &expirations, sizeof expirations);
          (void)got;
          r->on_tick();
        });
      } else if (tfd >= 0) {
        ::close(tfd);
        tfd = -1;
      }
      on_tick();
      if (tfd < 0)
        uv_timer_start(
            &tick, [](uv_timer_t* t) { static_cast<Runner*>(t->data)->on_tick(); }, 1, 1);
    } else {
      for (auto& s : slots) {
        if (started >= budget) break;
        begin_op(s.get(), now_ns());
      }
      maybe_finish();
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (tfd >= 0) ::close(tfd);
    if (t_end == 0) t_end = now_ns();
    part.elapsed_s = static_cast<double>(t_end - t0) / 1e9;
  }

  uint64_t scheduled_at(uint64_t index) const {
    return t0 + static_cast<uint64_t>(static_cast<double>(index) * period_ns);
  }

  // Open loop: operations 0..scheduled-1 are due by now.
  void update_scheduled() {
    if (stopping) return;
    auto due = static_cast<uint64_t>(static_cast<double>(now_ns() - t0) / period_ns) + 1;
    scheduled = std::max(scheduled, std::min(due, budget));
  }

  void on_tick() {
    if (stopping || finished) return;
    update_scheduled();
    while (!idle.empty() && dispatched < scheduled) {
      Slot* s = idle.back();
      idle.pop_back();
      begin_op(s, scheduled_at(dispatched++));
    }
    if (tfd >= 0 && scheduled < budget && !finished) {
      uint64_t next = scheduled_at(scheduled);
      itimerspec its{};
      its.it_value.tv_sec = static_cast<time_t>(next / 1'000'000'000);
      its.it_value.tv_nsec = static_cast<long>(next % 1'000'000'000);
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
    }
    maybe_finish();
  }

  void on_deadline() {
    if (stopping || finished) return;
    stopping = true;
    uv_timer_stop(&tick);
    if (tfd >= 0) uv_poll_stop(&tick_poll);
    if (rate > 0) {
      part.unsent += scheduled - dispatched;
      scheduled = dispatched;
    }
    if (scen == Scenario::IdleTunnels) {
      abort_active();
      return start_hold();
    }
    if (scen == Scenario::TunnelThroughput || active == 0) {
      t_end = now_ns();
      abort_active();
      return finish();
    }
    t_end = 0;
    uv_timer_start(
        &grace,
        [](uv_timer_t* t) {
          auto* r = static_cast<Runner*>(t->data);
          r->abort_active();
          r->finish();
        },
        std::min<uint64_t>(kMaxGraceMs, static_cast<uint64_t>(o.timeout_ms)), 0);
  }

  void maybe_finish() {
    if (finished || active != 0 || scen == Scenario::IdleTunnels) return;
    bool budget_spent = rate > 0 ? dispatched >= budget : started >= budget;
    if (stopping || budget_spent) {
      t_end = now_ns();
      finish();
    }
  }

  // Ends the run: every handle closes, so uv_run returns.
  void finish() {
    if (finished) return;
    finished = true;
    if (t_end == 0) t_end = now_ns();
    for (uv_timer_t* t : {&deadline, &tick, &grace, &hold}) uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    if (tfd >= 0) uv_close(reinterpret_cast<uv_handle_t*>(&tick_poll), nullptr);
    for (auto& s : slots) {
      close_conn(s.get());
      uv_close(reinterpret_cast<uv_handle_t*>(&s->timer), nullptr);
    }
  }

  void abort_active() {
    for (auto& s : slots) {
      if (!s->op_active) continue;
      part.aborted++;
      end_op(s.get());
      close_conn(s.get());
      s->phase = Slot::Phase::Done;
    }
  }

  // ---- idle-tunnels ----

  void open_next() {
    while (!stopping && opening < kOpenWindow && next_unopened < slots.size()) {
      Slot* s = slots[next_unopened++].get();
      opening++;
      begin_op(s, now_ns());
    }
    if (opening == 0 && (stopping || next_unopened == slots.size())) start_hold();
  }

  void start_hold() {
    if (hold_phase || finished) return;
    hold_phase = true;
    stopping = true;
    uv_timer_stop(&deadline);
    t_end = now_ns();
    uv_timer_start(
        &hold,
        [](uv_timer_t* t) {
          auto* r = static_cast<Runner*>(t->data);
          r->part.tunnels_held = r->held;
          if (!r->o.pids.empty()) r->part.proxy_at_hold = sample_procs(r->o.pids);
          uv_timer_start(
              &r->hold, [](uv_timer_t* t2) { static_cast<Runner*>(t2->data)->finish(); },
              static_cast<uint64_t>(r->o.hold_s * 1000), 0);
        },
        kSettleMs, 0);
  }

  // ---- one operation ----

  void begin_op(Slot* s, uint64_t start) {
    s->op_active = true;
    s->op_start = start;
    s->sent_at = now_ns();
    s->in_begin = true;
    s->retried = false;
    started++;
    active++;
    arm_timeout(s);
    if (s->conn && scen == Scenario::HttpForward)
      send_request(s);
    else
      open_conn(s);
    s->in_begin = false;
  }

  void end_op(Slot* s) {
    if (!s->op_active) return;
    s->op_active = false;
    active--;
    uv_timer_stop(&s->timer);
  }

  void arm_timeout(Slot* s) {
    s->timer_use = Slot::TimerUse::Timeout;
    uv_timer_start(&s->timer, on_slot_timer, static_cast<uint64_t>(o.timeout_ms), 0);
  }

  void open_conn(Slot* s) {
    close_conn(s);
    auto* c = new Conn;
    c->r = this;
    c->slot = s;
    s->conn = c;
    s->phase = Slot::Phase::Connecting;
    const Endpoint& ep = via_proxy ? o.proxy : o.target;
    int rc = 0;
    if (ep.kind == Endpoint::Kind::Unix) {
      c->is_pipe = true;
      uv_pipe_init(&loop, &c->pipe, 0);
      c->pipe.data = c;
      c->creq.data = c;
      uv_pipe_connect(&c->creq, &c->pipe, ep.path.c_str(), on_connect);
    } else {
      uv_tcp_init(&loop, &c->tcp);
      c->tcp.data = c;
      c->creq.data = c;
      rc = uv_tcp_connect(&c->creq, &c->tcp, reinterpret_cast<const sockaddr*>(&ep.addr), on_connect);
    }
    if (rc != 0) fail(s, classify_uv_error(rc, Phase::Connect), rc);
  }

  void close_conn(Slot* s) {
    Conn* c = s->conn;
    if (!c) return;
    s->conn = nullptr;
    c->slot = nullptr;
    uv_close(c->handle(), on_conn_closed);
  }

  bool write(Slot* s, const char* p, size_t n, size_t upload_len) {
    auto* w = new WriteReq;
    w->conn = s->conn;
    w->upload_len = upload_len;
    w->req.data = w;
    uv_buf_t b = uv_buf_init(const_cast<char*>(p), static_cast<unsigned>(n));
    if (int rc = uv_write(&w->req, s->conn->stream(), &b, 1, on_write); rc != 0) {
      delete w;
      fail(s, classify_uv_error(rc, Phase::Io), rc);
      return false;
    }
    return true;
  }

  // Ciphertext the TLS engine has ready goes out as one owned write.
  bool flush_tls(Slot* s) {
    if (!s->conn || !s->conn->tls || s->conn->tls->pending_output() == 0) return true;
    auto* w = new WriteReq;
    w->conn = s->conn;
    w->owned = s->conn->tls->take_output();
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->owned.data(), static_cast<unsigned>(w->owned.size()));
    if (int rc = uv_write(&w->req, s->conn->stream(), &b, 1, on_write); rc != 0) {
      delete w;
      fail(s, classify_uv_error(rc, Phase::Io), rc);
      return false;
    }
    return true;
  }

  // The path to the target is open (the tunnel, or the direct connection): start TLS, or send.
  void path_open(Slot* s) {
    if (!tls_ctx) return send_request(s);
    s->phase = Slot::Phase::TlsHandshake;
    s->conn->tls = TlsPipe::client(tls_ctx, o.sni, tls_verify_name);
    flush_tls(s);
  }

  // TLS records from the peer: the handshake, then the plaintext goes the way of clear reads.
  void on_cipher(Slot* s, const char* p, size_t n) {
    Conn* c = s->conn;
    TlsPipe& t = *c->tls;
    bool ok = t.feed(p, n);
    if (!flush_tls(s)) return;
    if (!ok) return fail(s, ErrorKind::TlsFailed);
    if (s->phase == Slot::Phase::TlsHandshake) {
      if (!t.handshake_done()) return;
      send_request(s);
      if (s->conn != c) return;
    }
    for (int i = 0; i < 1 << 20 && s->conn == c; ++i) {
      long got = t.read(plain_buf.data(), plain_buf.size());
      if (got < -1) return fail(s, ErrorKind::TlsFailed);
      if (got == -1) return on_eof(s);  // close_notify
      if (got == 0) return;
      on_plain(s, plain_buf.data(), static_cast<size_t>(got));
    }
  }

  void on_connected(Slot* s) {
    if (s->conn->is_pipe == false) uv_tcp_nodelay(&s->conn->tcp, 1);
    uv_read_start(s->conn->stream(), on_alloc, on_read);
    if (tunnelled()) {
      s->phase = Slot::Phase::Handshake;
      s->reader.reset(true);
      s->socks_step = 0;
      s->socks_buf.clear();
      // SOCKS5 as clients speak it: the greeting, then (after the method reply) the request.
      if (socks && !socks_user_pass.empty())
        write(s, kSocksGreetingUserPass, sizeof kSocksGreetingUserPass - 1, 0);
      else if (socks)
        write(s, kSocksGreeting, sizeof kSocksGreeting - 1, 0);
      else
        write(s, connect_req.data(), connect_req.size(), 0);
    } else {
      path_open(s);
    }
  }

  void send_request(Slot* s) {
    s->phase = Slot::Phase::Exchange;
    s->reader.reset(false);
    if (s->conn->tls) {
      if (!s->conn->tls->write(request.data(), request.size())) return fail(s, ErrorKind::TlsFailed);
      flush_tls(s);
      return;
    }
    if (!write(s, request.data(), request.size(), 0)) return;
    if (scen == Scenario::TunnelThroughput && o.upload) {
      s->upload_left = o.size;
      pump_upload(s);
    }
  }

  void pump_upload(Slot* s) {
    for (size_t i = 0; i < kUploadPump && s->upload_left > 0 && s->conn; ++i) {
      if (uv_stream_get_write_queue_size(s->conn->stream()) >= kUploadQueue) return;
      size_t len = static_cast<size_t>(std::min<uint64_t>(s->upload_left, kPatternBytes));
      s->upload_left -= len;
      if (!write(s, pattern_bytes(), len, len)) return;
    }
  }

  void on_data(Slot* s, const char* p, size_t n) {
    if (s->phase == Slot::Phase::Holding) return;  // a held tunnel has nothing to say; ignore
    arm_timeout(s);
    if (s->conn && s->conn->tls) return on_cipher(s, p, n);
    if (s->phase == Slot::Phase::Handshake && socks) {
      size_t used = 0;
      if (!socks_handshake(s, p, n, used)) return;
      Conn* c = s->conn;
      path_open(s);
      if (s->conn != c || used == n) return;
      if (s->conn->tls) return on_cipher(s, p + used, n - used);
      p += used;
      n -= used;
    } else if (s->phase == Slot::Phase::Handshake) {
      size_t used = s->reader.feed(p, n);
      if (s->reader.state() == ResponseReader::State::Error) return fail(s, ErrorKind::BadResponse);
      if (!s->reader.done()) return;
      int status = s->reader.status();
      if (status < 200 || status > 299) return fail(s, ErrorKind::ProxyStatus, status);
      Conn* c = s->conn;
      path_open(s);
      if (s->conn != c || used == n) return;  // the write failed (and maybe a new op began)
      if (s->conn->tls) return on_cipher(s, p + used, n - used);
      p += used;
      n -= used;
    }
    on_plain(s, p, n);
  }

  // Response bytes (after TLS, when it is used).
  void on_plain(Slot* s, const char* p, size_t n) {
    if (s->phase != Slot::Phase::Exchange) return;
    uint64_t before = s->reader.body_bytes();
    size_t used = s->reader.feed(p, n);
    if (!(scen == Scenario::TunnelThroughput && o.upload)) part.bytes += s->reader.body_bytes() - before;
    if (s->reader.state() == ResponseReader::State::Error) return fail(s, ErrorKind::BadResponse);
    if (!s->reader.done()) return;
    if (used != n) return fail(s, ErrorKind::BadResponse);  // bytes nobody asked for
    complete(s);
  }

  // Feeds SOCKS5 handshake bytes; true once the tunnel is open (`used`: bytes of the handshake
  // in this read). A refusal fails the operation; the reply code is the error key.
  bool socks_handshake(Slot* s, const char* p, size_t n, size_t& used) {
    size_t had = s->socks_buf.size();
    s->socks_buf.append(p, n);
    if (s->socks_step == 0 || s->socks_step == 2) {  // the method reply, or the username/password reply
      if (s->socks_buf.size() < 2) return false;
      if (s->socks_buf.size() > 2) return fail(s, ErrorKind::BadResponse), false;  // nothing may follow unasked
      uint8_t version = static_cast<uint8_t>(s->socks_buf[0]), code = static_cast<uint8_t>(s->socks_buf[1]);
      s->socks_buf.clear();
      if (s->socks_step == 0) {
        if (version != 0x05) return fail(s, ErrorKind::BadResponse), false;
        if (code == 0x02 && !socks_user_pass.empty()) {
          s->socks_step = 2;
          write(s, socks_user_pass.data(), socks_user_pass.size(), 0);
          return false;
        }
        if (code != 0x00) return fail(s, ErrorKind::SocksReply, code), false;
      } else if (version != 0x01 || code != 0x00) {
        return fail(s, ErrorKind::SocksReply, 256 + code), false;  // credentials refused
      }
      s->socks_step = 1;
      write(s, socks_req.data(), socks_req.size(), 0);
      return false;
    }
    long len = socks_reply_length(s->socks_buf);
    if (len < 0) return fail(s, ErrorKind::BadResponse), false;
    if (len == 0) return false;
    if (s->socks_buf[1] != 0x00) return fail(s, ErrorKind::SocksReply, static_cast<uint8_t>(s->socks_buf[1])), false;
    used = static_cast<size_t>(len) - had;
    return true;
  }

  // A kept-alive connection the peer closed before answering the request we sent on it: send it
  // again on a new connection, once, as HTTP clients do (RFC 9112 9.3.1). Some proxies close
  // after each response without saying `Connection: close`.
  bool retry_stale(Slot* s) {
    if (scen != Scenario::HttpForward || s->phase != Slot::Phase::Exchange || !s->op_active || s->retried || !s->conn ||
        s->conn->exchanges == 0 || s->reader.started())
      return false;
    s->retried = true;
    part.retries++;
    open_conn(s);
    return true;
  }

  void on_eof(Slot* s) {
    if (s->phase == Slot::Phase::Holding) return held_lost(s, "closed-while-held");
    if (!s->op_active) return close_conn(s);  // an idle keep-alive connection the peer closed
    if (retry_stale(s)) return;
    if (s->phase == Slot::Phase::Exchange) {
      s->reader.on_eof();
      if (s->reader.done()) return complete(s);
    }
    fail(s, ErrorKind::ShortRead);
  }

  void on_io_error(Slot* s, int err, Phase phase) {
    if (s->phase == Slot::Phase::Holding)
      return held_lost(s, error_key(classify_uv_error(err, phase), err) + "-while-held");
    if (!s->op_active) return close_conn(s);
    if (classify_uv_error(err, phase) == ErrorKind::Reset && retry_stale(s)) return;
    fail(s, classify_uv_error(err, phase), err);
  }

  void held_lost(Slot* s, const std::string& key) {
    part.errors.add_key(key);
    close_conn(s);
    s->phase = Slot::Phase::Done;
    if (held) held--;
  }

  void complete(Slot* s) {
    const ResponseReader& rd = s->reader;
    int status = rd.status();
    if (status < 200 || status > 299) {
      bool from_proxy = via_proxy && scen == Scenario::HttpForward;
      return fail(s, from_proxy ? ErrorKind::ProxyStatus : ErrorKind::UpstreamStatus, status);
    }
    if (scen == Scenario::TunnelThroughput) {
      if (o.upload) {
        if (rd.body_text() != std::to_string(o.size) + "\n") return fail(s, ErrorKind::ByteMismatch);
      } else if (rd.body_bytes() != o.size) {
        return fail(s, ErrorKind::ByteMismatch);
      }
    }
    uint64_t now = now_ns();
    part.latency.record(now - s->op_start);
    part.service.record(now - s->sent_at);
    part.ops_ok++;
    if (s->conn) s->conn->exchanges++;
    end_op(s);
    switch (scen) {
      case Scenario::IdleTunnels:
        s->phase = Slot::Phase::Holding;
        held++;
        opening--;
        return open_next();
      case Scenario::HttpForward:
        s->phase = Slot::Phase::Idle;
        if (rd.wants_close()) close_conn(s);
        return after_op(s);
      default:
        s->phase = Slot::Phase::Idle;
        close_conn(s);
        return after_op(s);
    }
  }

  void fail(Slot* s, ErrorKind kind, int v = 0) {
    if (!s->op_active) {  // a late error on a connection whose operation already ended
      close_conn(s);
      return;
    }
    part.errors.add(kind, v);
    part.ops_failed++;
    end_op(s);
    close_conn(s);
    s->phase = Slot::Phase::Idle;
    if (scen == Scenario::IdleTunnels) opening--;
    if (s->in_begin) {
      // Failed before reaching the loop (e.g. no free port): continue from the loop, so a run of
      // synchronous failures cannot recurse, and the deadline timer still gets its turn.
      s->timer_use = Slot::TimerUse::Deferred;
      uv_timer_start(&s->timer, on_slot_timer, 0, 0);
      return;
    }
    after_op(s);
  }

  // The slot is free again: take the next operation, or retire.
  void after_op(Slot* s) {
    if (scen == Scenario::IdleTunnels) {
      s->phase = Slot::Phase::Done;
      return open_next();
    }
    if (stopping) {
      s->phase = Slot::Phase::Done;
      return maybe_finish();
    }
    if (rate > 0) {
      update_scheduled();
      if (dispatched < scheduled)
        begin_op(s, scheduled_at(dispatched++));
      else
        idle.push_back(s);
    } else if (started < budget) {
      begin_op(s, now_ns());
    } else {
      s->phase = Slot::Phase::Done;
    }
    maybe_finish();
  }

  void on_timer(Slot* s) {
    if (s->timer_use == Slot::TimerUse::Deferred) return after_op(s);
    if (s->op_active) fail(s, ErrorKind::Timeout);
  }
};

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  Runner* r = static_cast<Conn*>(h->data)->r;
  *buf = uv_buf_init(r->read_buf.data(), static_cast<unsigned>(r->read_buf.size()));
}

void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(stream->data);
  Slot* s = c->slot;
  if (!s) return;
  if (n == UV_EOF) return c->r->on_eof(s);
  if (n < 0) return c->r->on_io_error(s, static_cast<int>(n), Phase::Io);
  if (n > 0) c->r->on_data(s, buf->base, static_cast<size_t>(n));
}

void on_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  Slot* s = c->slot;
  if (!s) return;  // closed while connecting (UV_ECANCELED)
  if (status < 0) return c->r->fail(s, classify_uv_error(status, Phase::Connect), status);
  c->r->on_connected(s);
}

void on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Conn* c = w->conn;
  size_t upload_len = w->upload_len;
  delete w;
  Slot* s = c->slot;
  if (!s) return;
  if (status < 0) return c->r->on_io_error(s, status, Phase::Io);
  if (upload_len) {
    c->r->part.bytes += upload_len;
    c->r->pump_upload(s);
  }
}

void on_slot_timer(uv_timer_t* t) {
  auto* s = static_cast<Slot*>(t->data);
  s->r->on_timer(s);
}

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
  std::vector<std::unique_ptr<Runner>> runners;
  for (int i = 0; i < threads; ++i) {
    int conc = share(o.concurrency, threads, i);
    uint64_t ops = share(o.requests, static_cast<uint64_t>(threads), static_cast<uint64_t>(i));
    runners.push_back(std::make_unique<Runner>(o, conc, ops, o.rate / threads, tls_ctx.get()));
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
