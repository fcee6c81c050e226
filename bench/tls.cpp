#include "bench/tls.hpp"

#include <algorithm>
#include <cstring>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace sluice::bench {

namespace {

std::string bench_tls_errors(const char* what) {
  std::string out = what;
  unsigned long e = 0;
  bool first = true;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += first ? ": " : "; ";
    out += buf;
    first = false;
  }
  return out;
}

constexpr size_t kBenchPairBytes = 256 * 1024;  // each direction of the BIO pair

constexpr unsigned char kBenchAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int bench_alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                      void*) {
  unsigned char* o = nullptr;
  if (SSL_select_next_proto(&o, outlen, kBenchAlpn, sizeof kBenchAlpn, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

void SslCtxFree::operator()(ssl_ctx_st* c) const { SSL_CTX_free(c); }

SslCtx make_tls_client_ctx(const std::string& ca_file, std::string& err) {
  ERR_clear_error();
  SslCtx ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return err = bench_tls_errors("SSL_CTX_new"), nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
    return err = bench_tls_errors(("--ca " + ca_file).c_str()), nullptr;
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_alpn_protos(ctx.get(), kBenchAlpn, sizeof kBenchAlpn);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

SslCtx make_tls_server_ctx(const std::string& cert_file, const std::string& key_file, int tickets, std::string& err) {
  ERR_clear_error();
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return err = bench_tls_errors("SSL_CTX_new"), nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
    return err = bench_tls_errors(("--tls-cert " + cert_file).c_str()), nullptr;
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return err = bench_tls_errors(("--tls-key " + key_file).c_str()), nullptr;
  if (SSL_CTX_check_private_key(ctx.get()) != 1) return err = bench_tls_errors("the key does not match"), nullptr;
  // The bench's own clients make a full handshake per connection; tickets (stateless, as most
  // servers send them) only for a proxy that resumes its upstream sessions (--tls-tickets).
  SSL_CTX_set_num_tickets(ctx.get(), static_cast<size_t>(tickets));
  if (tickets == 0) SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx.get(), bench_alpn_select, nullptr);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

namespace {

ssl_st* bench_tls_new(ssl_ctx_st* ctx, bio_st** net) {
  SSL* ssl = SSL_new(ctx);
  BIO* inner = nullptr;
  BIO_new_bio_pair(&inner, kBenchPairBytes, net, kBenchPairBytes);
  SSL_set_bio(ssl, inner, inner);
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ssl;
}

}  // namespace

std::unique_ptr<TlsPipe> TlsPipe::client(ssl_ctx_st* ctx, const std::string& sni, const std::string& verify_name) {
  std::unique_ptr<TlsPipe> t(new TlsPipe);
  t->ssl_ = bench_tls_new(ctx, &t->net_);
  SSL_set_connect_state(t->ssl_);
  if (!sni.empty()) SSL_set_tlsext_host_name(t->ssl_, sni.c_str());
  if (!verify_name.empty()) {
    unsigned char ip[16];
    bool literal =
        inet_pton(AF_INET, verify_name.c_str(), ip) == 1 || inet_pton(AF_INET6, verify_name.c_str(), ip) == 1;
    X509_VERIFY_PARAM* param = SSL_get0_param(t->ssl_);
    if (literal)
      X509_VERIFY_PARAM_set1_ip_asc(param, verify_name.c_str());
    else
      SSL_set1_host(t->ssl_, verify_name.c_str());
  }
  t->step();
  return t;
}

std::unique_ptr<TlsPipe> TlsPipe::server(ssl_ctx_st* ctx) {
  std::unique_ptr<TlsPipe> t(new TlsPipe);
  t->ssl_ = bench_tls_new(ctx, &t->net_);
  SSL_set_accept_state(t->ssl_);
  return t;
}

TlsPipe::~TlsPipe() {
  SSL_free(ssl_);
  BIO_free(net_);
}

void TlsPipe::push_in() {
  while (in_off_ < in_.size()) {
    int room = static_cast<int>(BIO_ctrl_get_write_guarantee(net_));
    if (room <= 0) break;
    int k = BIO_write(net_, in_.data() + in_off_, static_cast<int>(std::min<size_t>(in_.size() - in_off_, room)));
    if (k <= 0) break;
    in_off_ += static_cast<size_t>(k);
  }
  if (in_off_ == in_.size()) {
    in_.clear();
    in_off_ = 0;
  }
}

void TlsPipe::drain_out() {
  for (;;) {
    char* p = nullptr;
    int k = BIO_nread0(net_, &p);
    if (k <= 0) return;
    out_.append(p, static_cast<size_t>(k));
    BIO_nread(net_, &p, k);
  }
}

void TlsPipe::set_error(const char* what, int ret) {
  if (!error_.empty()) return;
  int e = SSL_get_error(ssl_, ret);
  std::string s = bench_tls_errors(what);
  long v = SSL_get_verify_result(ssl_);
  if (v != X509_V_OK) s += std::string(" (certificate: ") + X509_verify_cert_error_string(v) + ")";
  if (e == SSL_ERROR_SYSCALL && s == what) s += ": unexpected end";
  error_ = s;
}

bool TlsPipe::step() {
  for (int i = 0; i < 64 && !done_; ++i) {
    push_in();
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_);
    drain_out();
    if (rc == 1) {
      done_ = true;
      return true;
    }
    int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_WRITE) continue;  // drained: go on
    if (e == SSL_ERROR_WANT_READ) {
      if (in_off_ < in_.size()) continue;  // more queued input fits now
      return true;
    }
    set_error("TLS handshake", rc);
    return false;
  }
  return true;
}

bool TlsPipe::feed(const char* p, size_t n) {
  if (!error_.empty()) return false;
  in_.append(p, n);
  push_in();
  return step();
}

long TlsPipe::read(char* buf, size_t cap) {
  if (!error_.empty()) return -2;
  if (!done_ && !step()) return -2;
  if (!done_) return 0;
  for (int i = 0; i < 1024; ++i) {
    push_in();
    ERR_clear_error();
    size_t got = 0;
    int rc = SSL_read_ex(ssl_, buf, cap, &got);
    drain_out();
    if (rc == 1) return static_cast<long>(got);
    int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ && in_off_ < in_.size()) continue;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    if (e == SSL_ERROR_ZERO_RETURN) return -1;
    set_error("TLS read", rc);
    return -2;
  }
  return 0;
}

bool TlsPipe::write(const char* p, size_t n) {
  if (!error_.empty() || !done_) return false;
  // Partial writes: the pair holds kBenchPairBytes; drain it into out_ and go on.
  while (n > 0) {
    ERR_clear_error();
    size_t written = 0;
    int rc = SSL_write_ex(ssl_, p, n, &written);
    drain_out();
    if (rc == 1) {
      p += written;
      n -= written;
      continue;
    }
    if (SSL_get_error(ssl_, rc) == SSL_ERROR_WANT_WRITE) continue;
    set_error("TLS write", rc);
    return false;
  }
  return true;
}

void TlsPipe::shutdown() {
  if (done_ && error_.empty()) SSL_shutdown(ssl_);
  drain_out();
}

size_t TlsPipe::pending_output() const { return out_.size(); }

void TlsPipe::take_output(std::string& buf) {
  buf.clear();
  buf.swap(out_);
}

std::string TlsPipe::take_output() {
  std::string out;
  out.swap(out_);
  return out;
}

}  // namespace sluice::bench
