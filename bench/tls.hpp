// TLS for the load generator and the built-in upstream: OpenSSL over a BIO pair (a fixed ring
// buffer: a memory BIO zero-fills every byte it grows by, which made a TLS download through the
// upstream 30x slower), so each side keeps its libuv event loop and never blocks. Ciphertext read from the socket is
// fed in, the plaintext comes out of read(); plaintext written goes out as ciphertext from take_output().
#pragma once
#include <cstddef>
#include <memory>
#include <string>

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace sluice::bench {

struct SslCtxFree {
  void operator()(ssl_ctx_st* c) const;
};
using SslCtx = std::unique_ptr<ssl_ctx_st, SslCtxFree>;

// A client context that trusts exactly the certificates in ca_file (PEM), TLS 1.2 or newer,
// ALPN http/1.1, no session resumption (every new connection is a full handshake). nullptr and
// `err` on failure.
SslCtx make_tls_client_ctx(const std::string& ca_file, std::string& err);
// A server context from a PEM certificate (chain) and its key.
SslCtx make_tls_server_ctx(const std::string& cert_file, const std::string& key_file, int tickets, std::string& err);

class TlsPipe {
 public:
  // A client: `sni` is sent when not empty; the certificate must name `verify_name` (a DNS
  // name, or an IP literal matched against IP SANs). The ClientHello is ready in take_output().
  static std::unique_ptr<TlsPipe> client(ssl_ctx_st* ctx, const std::string& sni, const std::string& verify_name);
  static std::unique_ptr<TlsPipe> server(ssl_ctx_st* ctx);
  ~TlsPipe();
  TlsPipe(const TlsPipe&) = delete;
  TlsPipe& operator=(const TlsPipe&) = delete;

  // Ciphertext from the peer; advances the handshake. False on a TLS failure (see error()).
  bool feed(const char* p, size_t n);
  bool handshake_done() const { return done_; }
  // Plaintext: > 0 bytes copied into buf, 0 when nothing more is available yet, -1 when the peer
  // sent close_notify, -2 on a TLS failure.
  long read(char* buf, size_t cap);
  // Encrypts all of p (after the handshake; memory BIOs never refuse). False on a failure.
  bool write(const char* p, size_t n);
  // Queues close_notify.
  void shutdown();
  // Ciphertext to send to the peer (and forget).
  std::string take_output();
  // The same into `buf` (emptied first), whose capacity the pipe keeps for what comes next: a
  // stream of large writes reuses two buffers instead of allocating one per write.
  void take_output(std::string& buf);
  size_t pending_output() const;
  const std::string& error() const { return error_; }

 private:
  TlsPipe() = default;
  bool step();  // drives the handshake
  void set_error(const char* what, int ret);
  void push_in();    // queued ciphertext into the pair, as far as it has room
  void drain_out();  // ciphertext from the pair into out_

  ssl_st* ssl_ = nullptr;
  bio_st* net_ = nullptr;  // our end of the pair
  std::string in_, out_;
  size_t in_off_ = 0;
  bool done_ = false;
  std::string error_;
};

}  // namespace sluice::bench
