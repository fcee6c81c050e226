// One TLS connection of an inspected tunnel (docs/tls.md), joined to a plaintext socket:
//
//   cipher stream (the client's socket, or an upstream connection)
//        <-> tls::Engine <->  pump's end of a socketpair  <->  the session's end
//
// The session reads and writes its end as if it were the peer itself, so an inspected
// request meets exactly the code a plain-HTTP request meets (parser, judge, forwarding,
// upgrades). First the handshake (with a timeout); then bytes both ways with backpressure;
// EOF on the plaintext side becomes close_notify and FIN, close_notify or EOF on the cipher
// side becomes FIN on the plaintext side. The pump owns itself: once the handshake went
// well and open_plaintext() was called it runs alone and deletes itself when both sides
// are closed; before that its owner ends it with abort().
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <uv.h>

#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/worker_context.hpp"
#include "tls/engine.hpp"

namespace sluice::proxy {

class TlsPump {
 public:
  struct Handshake {
    bool ok = false;
    bool not_tls = false;  // server role: the first bytes were not a ClientHello
    std::string error;     // why it failed (the verification error, the alert, the timeout)
    std::string alert;     // the alert the peer sent, if any
    std::string sni;       // server role: the name the client asked for ("" if none)
  };
  // Runs once on the loop (never from inside start()), unless abort() came first.
  using Done = std::function<void(Handshake&)>;
  enum class Role { Server, Client };

  // Takes over `cipher`. `raw_first`: bytes written to it before any TLS (the CONNECT's
  // 200). `initial`: ciphertext already read from it.
  static TlsPump* start(WorkerContext& worker, UvHandle<AnyStream>&& cipher, tls::Engine engine, Role role,
                        std::string raw_first, std::string initial, uint64_t timeout_ms, Done done);

  // After a successful handshake: the session's end of the plaintext socketpair; from now
  // on the pump moves bytes by itself. Empty (with `error`) when no socketpair could be
  // made; the pump is gone then.
  UvHandle<AnyStream> open_plaintext(std::string& error);
  // Ends the pump now (handles closed, the object deleted later); no callback runs after.
  void abort();

  TlsPump(const TlsPump&) = delete;
  TlsPump& operator=(const TlsPump&) = delete;

 private:
  enum class Phase { Handshaking, Waiting, Pumping, Closing };
  TlsPump(WorkerContext& worker, UvHandle<AnyStream>&& cipher, tls::Engine engine, Role role, Done done);
  ~TlsPump();

  void handshake_step();
  void handshake_done(Handshake& h);
  void cipher_data(const char* data, size_t n);
  void cipher_eof();
  void plain_data(const char* data, size_t n);
  void plain_eof();
  void flush_cipher();
  void send(uv_stream_t* to, std::string bytes);
  void shut(uv_stream_t* s, bool& flag);
  void update_reading();
  void maybe_finish();
  void close_all();
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_cipher_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_plain_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_write(void* pump, int tag, int status);
  static void on_shutdown(uv_shutdown_t*, int);
  static void on_timer(uv_timer_t*);
  static void on_closed(void* pump);

  WorkerContext& worker_;
  UvHandle<AnyStream> cipher_;
  UvHandle<AnyStream> plain_{UvHandle<AnyStream>::Empty{}};
  UvHandle<uv_timer_t> timer_;
  tls::Engine engine_;
  Role role_;
  Done done_;
  Phase phase_ = Phase::Handshaking;
  std::string sniffed_;    // server role: the first bytes, until they are known to be TLS
  std::string raw_first_;  // bytes before any TLS (the CONNECT's 200), written by the first step
  bool hello_checked_ = false;
  bool kicked_ = false;  // the first step ran
  bool cipher_reading_ = false, plain_reading_ = false;
  bool cipher_eof_ = false, plain_eof_ = false;  // each side sent its end
  bool cipher_shut_ = false, plain_shut_ = false;
  int open_handles_ = 0;
};

}  // namespace sluice::proxy
