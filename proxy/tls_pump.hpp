// One TLS connection of an inspected tunnel (docs/tls.md): the cipher stream (the client's
// socket, or an upstream connection) and its tls::Engine. First the handshake (with a
// timeout); then the plaintext goes one of two ways:
//
//   attach():          the session reads and writes plaintext through the pump directly
//                      (Data events in, write() out): no extra hop, for requests;
//   open_plaintext():  a socketpair, pump's end <-> the session's end, which the session
//                      hands to a byte relay (a WebSocket after its 101).
//
// Either way an inspected request meets exactly the code a plain-HTTP request meets
// (parser, judge, forwarding, upgrades). Backpressure: attached, the session starts and
// stops the cipher reads and sees the cipher write queue (queued()); joined, the pump reads
// a side only while the other's queue is short. The end of the plaintext side (detach(),
// or EOF on the socketpair) becomes close_notify and FIN, close_notify or EOF on the cipher
// side becomes an Eof event (or FIN on the socketpair). The pump owns itself: once the
// handshake went well it deletes itself when both sides are closed (attached: after
// detach()); before that its owner ends it with abort().
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <uv.h>

#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/worker_context.hpp"
#include "tls/engine.hpp"

namespace sluice::proxy {

class TlsPump {
 public:
  // The most one system call reads from the cipher stream, and the most plaintext one Data
  // event carries. When the pump falls behind (a download it decrypts and re-encrypts), a
  // read takes what has piled up and the owner writes it on in one go: half the reads and
  // writes of 64 KiB blocks (256 KiB measured the same, with twice the buffers).
  static constexpr size_t kReadSize = 128 * 1024;
  struct Handshake {
    bool ok = false;
    bool not_tls = false;  // server role: the first bytes were not a ClientHello
    std::string error;     // why it failed (the verification error, the alert, the timeout)
    std::string alert;     // the alert the peer sent, if any
    std::string sni;       // server role: the name the client asked for ("" if none)
    bool resumed = false;  // client role: the upstream took a kept session (no certificate exchanged)
  };
  // Runs once on the loop (never from inside start()), unless abort() came first.
  using Done = std::function<void(Handshake&)>;
  enum class Role { Server, Client };

  // Takes over `cipher`. `raw_first`: bytes written to it before any TLS (the CONNECT's
  // 200). `initial`: ciphertext already read from it.
  static TlsPump* start(WorkerContext& worker, UvHandle<AnyStream>&& cipher, tls::Engine engine, Role role,
                        std::string raw_first, std::string initial, uint64_t timeout_ms, Done done);

  // After a successful handshake (or once attached, for an upgrade's relay): the session's
  // end of the plaintext socketpair; from now on the pump moves bytes by itself. Empty (with `error`) when no
  // socketpair could be made; the pump is gone then.
  UvHandle<AnyStream> open_plaintext(std::string& error);
  // Ends the pump now (handles closed, the object deleted later); no callback runs after.
  void abort();

  // ---- attached: the session's own plaintext I/O (after a successful handshake) ----
  enum class Event { Data, Eof, Reset, Wrote, ShutDone };
  // Data: plaintext (`data`, `n`); Eof: the peer ended (close_notify or FIN); Reset: a read or
  // write failed; Wrote: a queued write finished (the queue shrank); ShutDone: shutdown() is
  // done. A plain function and a pointer, like base::WriteDone. Events run from the loop,
  // never from inside a call the owner makes (attach, set_reading, write, shutdown).
  struct Sink {
    void (*fn)(void* owner, int tag, Event e, const char* data, size_t n) = nullptr;
    void* owner = nullptr;
    int tag = 0;
  };
  // Plaintext the handshake's last flight carried comes as a Data event on the next loop turn.
  void attach(Sink sink);
  void set_reading(bool want);
  // Encrypts and sends (or queues) PLAIN; < 0 when the connection failed (no event follows).
  // SEND_NOW false: the records wait for flush() (a response head and its body leave in one
  // segment).
  int write(std::string_view plain, bool send_now = true);
  int flush();
  // Cipher bytes queued on the socket, not yet taken by the kernel.
  size_t queued() const;
  // close_notify, then FIN after every queued byte; ShutDone when the FIN is out.
  int shutdown();  // < 0: it could not start (no event follows)
  // The owner is done with the connection: no event runs after. The pump ends it cleanly
  // by itself (close_notify and FIN after what is queued, a short drain of the peer's
  // bytes) and deletes itself.
  void detach();

  TlsPump(const TlsPump&) = delete;
  TlsPump& operator=(const TlsPump&) = delete;

 private:
  // Attached: the session's own I/O (Sink); Detached: attached, and the owner left (the
  // pump finishes the connection alone).
  enum class Phase { Handshaking, Waiting, Pumping, Attached, Detached, Closing };
  TlsPump(WorkerContext& worker, UvHandle<AnyStream>&& cipher, tls::Engine engine, Role role, Done done);
  ~TlsPump();

  void handshake_step();
  void handshake_done(Handshake& h);
  void cipher_data(const char* data, size_t n);
  void deliver();  // attached: decrypted plaintext to the sink
  void emit(Event e, const char* data = nullptr, size_t n = 0);
  void cipher_eof();
  void plain_data(const char* data, size_t n);
  void plain_eof();
  int flush_cipher();  // < 0: the write failed
  int send(uv_stream_t* to, std::string bytes, bool try_first = true);
  void shut(uv_stream_t* s, bool& flag);
  void update_reading();
  void maybe_finish();
  void close_all();
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_cipher_alloc(uv_handle_t*, size_t, uv_buf_t*);
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
  Sink sink_;
  bool sink_reading_ = false;   // attached: the owner wants plaintext
  bool cipher_broken_ = false;  // a read or write on the cipher stream failed
  int open_handles_ = 0;
};

}  // namespace sluice::proxy
