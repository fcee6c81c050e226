#pragma once
// TLS contexts and a non-blocking TLS engine over in-memory buffers, for use from a libuv loop:
// the caller moves ciphertext between the socket and the engine; the engine never does I/O.
// Its BIO reads straight from the bytes fed to it and writes records straight into the string
// take_output() hands over, so ciphertext is copied once each way (not twice, as through a
// memory BIO and out of it again).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tls/leaf.hpp"
#include "tls/session_cache.hpp"

namespace sluice::tls {

// Moves TLS_AES_128_GCM_SHA256 to the front of CTX's TLS 1.3 suites (OpenSSL's defaults, or
// what the system's openssl.cnf allows; a list without it is left alone). Its key schedule and
// transcript hash with SHA-256, which x86 CPUs run in hardware (SHA-NI), where the default first
// suite, TLS_AES_256_GCM_SHA384, hashes with SHA-384 in software: a handshake costs less
// (bench/RESULTS.md), at the 128-bit strength TLS 1.3 requires every endpoint to support.
void prefer_aes128_gcm(SSL_CTX* ctx);

// Client-facing side: TLS 1.2+, ALPN offers only http/1.1; the SNI the client sent is
// recorded in the Engine (client_sni()) so the caller can pin it to the CONNECT host. The
// server's suite order decides (prefer_aes128_gcm).
CtxPtr make_server_ctx();

// Upstream side: verification always on, system roots plus EXTRA_CA_FILES (PEM); the sessions
// upstreams hand out go to the client engine's SessionCache, if it has one.
// Returns nullptr and sets ERROR if a file cannot be loaded.
CtxPtr make_upstream_ctx(const std::vector<std::string>& extra_ca_files, std::string& error);

class Engine {
 public:
  // Server engine presenting LEAF (for the client-facing side).
  static Engine server(SSL_CTX* ctx, const Leaf& leaf);
  // Client engine for an upstream: sends SNI (names only) and checks the cert against HOST.
  // With SESSIONS it offers the session kept for HOST:PORT (a resumption, when the upstream
  // takes it) and keeps the ones the upstream sends; a failed handshake forgets the offer.
  static Engine client(SSL_CTX* ctx, const std::string& host, SessionCache* sessions = nullptr, uint16_t port = 0);

  enum class Status { WantIo, Done, Failed };

  // Ciphertext received from the peer (copied).
  void feed(std::string_view ciphertext);
  // The same without the copy: the calls that follow (read(), handshake()) decrypt straight
  // from CIPHERTEXT, which the caller keeps unchanged until unlend(); unlend() copies what
  // OpenSSL has not taken yet (a record's first bytes, usually nothing: OpenSSL takes a
  // partial record into its own buffer). One lend at a time.
  void lend(std::string_view ciphertext);
  void unlend();
  // Ciphertext given (fed or lent) that OpenSSL has not taken yet.
  size_t unread_input() const { return io_->in.size() - io_->in_off + io_->lent.size() - io_->lent_off; }
  // Advances the handshake; Done once established.
  Status handshake();
  // Plaintext decrypted so far (appends to OUT); Failed on a protocol error.
  Status read(std::string& out);
  // Plaintext decrypted so far into BUF (up to CAP bytes; GOT says how many). WantIo when
  // everything fed is read (GOT may be 0 then), Done when BUF is full and more may follow.
  Status read(char* buf, size_t cap, size_t& got);
  // Encrypts plaintext (after the handshake).
  Status write(std::string_view plaintext);
  // Ciphertext waiting to go to the peer (moves it out).
  std::string take_output();
  // The same bytes in place: a caller that sends them and then clear()s the string keeps its
  // capacity for the next records (no allocation per write).
  std::string& output() { return io_->out; }

  // Queues a close_notify alert (take_output() has it); once per connection.
  void close_notify();
  // The peer sent close_notify: a clean end of its data, not a truncation.
  bool peer_closed() const { return (SSL_get_shutdown(ssl_.get()) & SSL_RECEIVED_SHUTDOWN) != 0; }

  bool established() const { return SSL_is_init_finished(ssl_.get()) == 1; }
  const std::string& error() const { return error_; }
  const std::string& client_sni() const { return sni_; }
  // The TLS alert the peer sent ("" if none), e.g. "unknown ca".
  const std::string& peer_alert() const { return alert_; }
  std::string alpn() const;
  // The suite the handshake agreed on ("TLS_AES_128_GCM_SHA256"), empty before.
  std::string cipher() const { return SSL_get_cipher_name(ssl_.get()); }
  // The handshake resumed an earlier session (no certificate exchanged).
  bool resumed() const { return SSL_session_reused(ssl_.get()) == 1; }

 private:
  Engine() = default;
  Status fail(int ret);
  static void info_callback(const SSL* ssl, int where, int ret);
  static int sni_callback(SSL* ssl, int* alert, void* arg);
  static int new_session(SSL* ssl, SSL_SESSION* session);
  friend CtxPtr make_server_ctx();
  friend CtxPtr make_upstream_ctx(const std::vector<std::string>&, std::string&);

  // The BIO's buffers: on the heap, so the BIO's pointer to them survives a move.
  struct Io {
    std::string in;  // ciphertext fed, not yet read by OpenSSL (from `in_off`)
    size_t in_off = 0;
    std::string_view lent;  // ciphertext lent (after `in`), not yet read from `lent_off`
    size_t lent_off = 0;
    std::string out;  // records written by OpenSSL, not yet taken
  };
  static BIO_METHOD* bio_method();
  static void attach(Engine& e);
  std::unique_ptr<Io> io_;
  SslPtr ssl_;
  std::string error_, sni_, alert_;
  SessionCache* sessions_ = nullptr;
  std::string session_key_;  // HOST:PORT, with sessions_

 public:
  Engine(Engine&& other) noexcept;
  Engine& operator=(Engine&&) = delete;
};

// True when DATA (the first bytes a client sent) starts a TLS handshake record holding a
// ClientHello; false when it cannot be one. NEED_MORE is set when DATA is too short to tell.
bool looks_like_client_hello(std::string_view data, bool& need_more);

}  // namespace sluice::tls
