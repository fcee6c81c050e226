// Private to bench/: the load generator's per-loop runner, split over loadgen_run.cpp (the run,
// its schedule and end), loadgen_io.cpp (connections, bytes, TLS, SOCKS5) and loadgen_op.cpp (one
// operation's outcome). loadgen.cpp divides the load over threads and merges their results.
#pragma once
#include <uv.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/http.hpp"
#include "bench/loadgen.hpp"
#include "bench/tls.hpp"

namespace sluice::bench::loadgen_detail {

inline constexpr size_t kReadBuf = 256 * 1024;       // one per loop: a read is consumed in its callback
inline constexpr size_t kUploadQueue = 1024 * 1024;  // queued upload bytes per connection
inline constexpr size_t kUploadPump = 16;            // writes queued per pump call
inline constexpr size_t kOpenWindow = 128;           // idle-tunnels: tunnels being opened at once
inline constexpr uint64_t kSettleMs = 500;           // idle-tunnels: quiet time before measuring RSS
inline constexpr uint64_t kMaxGraceMs = 2000;        // in-flight operations may finish this long after the end

inline uint64_t now_ns() { return uv_hrtime(); }

inline constexpr char kSocksGreeting[] = "\x05\x01\x00";              // SOCKS5, one method: no authentication
inline constexpr char kSocksGreetingUserPass[] = "\x05\x02\x00\x02";  // no authentication, username/password

// SOCKS5 bytes (loadgen_io.cpp).
std::string socks_user_pass_request(const std::string& auth);
std::string socks_connect_request(const Endpoint& target);
long socks_reply_length(const std::string& in);

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

// libuv callbacks (loadgen_op.cpp): each finds its slot and runner, and does nothing for a detached one.
void on_conn_closed(uv_handle_t* h);
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

  bool tunnelled() const { return via_proxy && (scen != Scenario::HttpForward || tls_ctx); }

  // ---- the run (loadgen_run.cpp) ----
  Runner(const Options& opts, int conc, uint64_t ops, double r, ssl_ctx_st* ctx);
  void run();
  uint64_t scheduled_at(uint64_t index) const;
  // Open loop: operations 0..scheduled-1 are due by now.
  void update_scheduled();
  void on_tick();
  void on_deadline();
  void maybe_finish();
  // Ends the run: every handle closes, so uv_run returns.
  void finish();
  void abort_active();
  void open_next();
  void start_hold();

  // ---- connections and bytes (loadgen_io.cpp) ----
  void open_conn(Slot* s);
  void close_conn(Slot* s);
  bool write(Slot* s, const char* p, size_t n, size_t upload_len);
  // Ciphertext the TLS engine has ready goes out as one owned write.
  bool flush_tls(Slot* s);
  // The path to the target is open (the tunnel, or the direct connection): start TLS, or send.
  void path_open(Slot* s);
  // TLS records from the peer: the handshake, then the plaintext goes the way of clear reads.
  void on_cipher(Slot* s, const char* p, size_t n);
  void on_connected(Slot* s);
  void send_request(Slot* s);
  void pump_upload(Slot* s);
  void on_data(Slot* s, const char* p, size_t n);
  // Response bytes (after TLS, when it is used).
  void on_plain(Slot* s, const char* p, size_t n);
  // Feeds SOCKS5 handshake bytes; true once the tunnel is open (`used`: bytes of the handshake
  // in this read). A refusal fails the operation; the reply code is the error key.
  bool socks_handshake(Slot* s, const char* p, size_t n, size_t& used);

  // ---- one operation's outcome (loadgen_op.cpp) ----
  void begin_op(Slot* s, uint64_t start);
  void end_op(Slot* s);
  void arm_timeout(Slot* s);
  // A kept-alive connection the peer closed before answering the request we sent on it: send it
  // again on a new connection, once, as HTTP clients do (RFC 9112 9.3.1). Some proxies close
  // after each response without saying `Connection: close`.
  bool retry_stale(Slot* s);
  void on_eof(Slot* s);
  void on_io_error(Slot* s, int err, Phase phase);
  void held_lost(Slot* s, const std::string& key);
  void complete(Slot* s);
  void fail(Slot* s, ErrorKind kind, int v = 0);
  // The slot is free again: take the next operation, or retire.
  void after_op(Slot* s);
  void on_timer(Slot* s);
};

}  // namespace sluice::bench::loadgen_detail
