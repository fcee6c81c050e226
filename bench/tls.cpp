#include "bench/tls.hpp"

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

SslCtx make_tls_server_ctx(const std::string& cert_file, const std::string& key_file, std::string& err) {
  ERR_clear_error();
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return err = bench_tls_errors("SSL_CTX_new"), nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
    return err = bench_tls_errors(("--tls-cert " + cert_file).c_str()), nullptr;
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return err = bench_tls_errors(("--tls-key " + key_file).c_str()), nullptr;
  if (SSL_CTX_check_private_key(ctx.get()) != 1) return err = bench_tls_errors("the key does not match"), nullptr;
  // Clients here make a full handshake per connection; tickets would only cost CPU.
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx.get(), bench_alpn_select, nullptr);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

std::unique_ptr<TlsPipe> TlsPipe::client(ssl_ctx_st* ctx, const std::string& sni, const std::string& verify_name) {
  std::unique_ptr<TlsPipe> t(new TlsPipe);
  t->ssl_ = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio, -1);
  SSL_set_bio(t->ssl_, rbio, wbio);
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
  t->ssl_ = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio, -1);
  SSL_set_bio(t->ssl_, rbio, wbio);
  SSL_set_accept_state(t->ssl_);
  return t;
}

TlsPipe::~TlsPipe() { SSL_free(ssl_); }

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
  if (done_) return true;
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    done_ = true;
    return true;
  }
  int e = SSL_get_error(ssl_, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
  set_error("TLS handshake", rc);
  return false;
}

bool TlsPipe::feed(const char* p, size_t n) {
  if (!error_.empty()) return false;
  if (n > 0 && BIO_write(SSL_get_rbio(ssl_), p, static_cast<int>(n)) != static_cast<int>(n)) {
    error_ = "BIO_write failed";
    return false;
  }
  return step();
}

long TlsPipe::read(char* buf, size_t cap) {
  if (!error_.empty()) return -2;
  if (!done_ && !step()) return -2;
  if (!done_) return 0;
  ERR_clear_error();
  size_t got = 0;
  int rc = SSL_read_ex(ssl_, buf, cap, &got);
  if (rc == 1) return static_cast<long>(got);
  int e = SSL_get_error(ssl_, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) return -1;
  set_error("TLS read", rc);
  return -2;
}

bool TlsPipe::write(const char* p, size_t n) {
  if (!error_.empty() || !done_) return false;
  ERR_clear_error();
  size_t written = 0;
  if (n == 0) return true;
  if (SSL_write_ex(ssl_, p, n, &written) != 1 || written != n) {
    set_error("TLS write", 0);
    return false;
  }
  return true;
}

void TlsPipe::shutdown() {
  if (done_ && error_.empty()) SSL_shutdown(ssl_);
}

size_t TlsPipe::pending_output() const { return BIO_ctrl_pending(SSL_get_wbio(ssl_)); }

std::string TlsPipe::take_output() {
  BIO* w = SSL_get_wbio(ssl_);
  size_t n = BIO_ctrl_pending(w);
  std::string out;
  if (n == 0) return out;
  out.resize(n);
  int got = BIO_read(w, out.data(), static_cast<int>(n));
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

}  // namespace sluice::bench
