#include "tls/engine.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace sluice::tls {

static int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                       unsigned int inlen, void*) {
  static const unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // the client offered no http/1.1: go on without ALPN
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int Engine::sni_callback(SSL* ssl, int*, void*) {
  auto* self = static_cast<Engine*>(SSL_get_app_data(ssl));
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (self != nullptr && name != nullptr) self->sni_ = name;
  return SSL_TLSEXT_ERR_OK;
}

void Engine::info_callback(const SSL* ssl, int where, int ret) {
  // A read alert is one the peer sent: that is what client-tls-failed reports.
  if ((where & SSL_CB_READ_ALERT) == 0) return;
  auto* self = static_cast<Engine*>(SSL_get_app_data(ssl));
  if (self != nullptr && self->alert_.empty()) self->alert_ = SSL_alert_desc_string_long(ret);
}

void prefer_aes128_gcm(SSL_CTX* ctx) {
  std::string first, rest;
  STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    if (std::strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") != 0) continue;  // TLS 1.2's list is left as it is
    const std::string name = SSL_CIPHER_get_name(c);
    std::string& to = name == "TLS_AES_128_GCM_SHA256" ? first : rest;
    to += (to.empty() ? "" : ":") + name;
  }
  if (first.empty()) return;  // the system's policy leaves it out: its order stands
  SSL_CTX_set_ciphersuites(ctx, (rest.empty() ? first : first + ":" + rest).c_str());
}

CtxPtr make_server_ctx() {
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return nullptr;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  prefer_aes128_gcm(ctx.get());
  SSL_CTX_set_options(ctx.get(), SSL_OP_CIPHER_SERVER_PREFERENCE);  // most clients list AES-256 first
  SSL_CTX_set_alpn_select_cb(ctx.get(), alpn_select, nullptr);
  SSL_CTX_set_tlsext_servername_callback(ctx.get(), Engine::sni_callback);
  SSL_CTX_set_info_callback(ctx.get(), Engine::info_callback);
  return ctx;
}

CtxPtr make_upstream_ctx(const std::vector<std::string>& extra_ca_files, std::string& error) {
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    error = "cannot create TLS context: " + take_openssl_error();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  prefer_aes128_gcm(ctx.get());  // offered first; the upstream's own preference, if it has one, decides
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_default_verify_paths(ctx.get());
  for (const auto& file : extra_ca_files) {
    if (SSL_CTX_load_verify_locations(ctx.get(), file.c_str(), nullptr) != 1) {
      error = "upstream CA file " + file + ": " + take_openssl_error();
      return nullptr;
    }
  }
  SSL_CTX_set_info_callback(ctx.get(), Engine::info_callback);
  // Sessions go to the engine's SessionCache (new_session), never to OpenSSL's own store,
  // which a client context does not consult anyway.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx.get(), Engine::new_session);
  return ctx;
}

// A session the upstream sent (TLS 1.3: a ticket after the handshake). The cache keeps a copy:
// OpenSSL marks a connection's own session not resumable when that connection ends without a
// close_notify, as most HTTP servers end theirs, which says nothing about the ticket.
int Engine::new_session(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<Engine*>(SSL_get_app_data(ssl));
  if (self == nullptr || self->sessions_ == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) self->sessions_->put(self->session_key_, copy);
  return 0;  // the connection's own reference stays OpenSSL's
}

// One BIO for both directions over Engine::Io: reads take from what feed() appended (an empty
// input means "wait", never end of stream), writes append to what take_output() moves out.
BIO_METHOD* Engine::bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice engine");
    BIO_meth_set_read(m, [](BIO* b, char* buf, int len) -> int {
      auto* io = static_cast<Io*>(BIO_get_data(b));
      BIO_clear_retry_flags(b);
      const size_t want = static_cast<size_t>(len < 0 ? 0 : len);
      if (io->in_off < io->in.size()) {  // what was fed (copied) comes before what is lent
        const size_t n = std::min(io->in.size() - io->in_off, want);
        std::memcpy(buf, io->in.data() + io->in_off, n);
        io->in_off += n;
        if (io->in_off == io->in.size()) {
          io->in.clear();
          io->in_off = 0;
        }
        return static_cast<int>(n);
      }
      const size_t avail = io->lent.size() - io->lent_off;
      if (avail == 0) {
        BIO_set_retry_read(b);
        return -1;
      }
      const size_t n = std::min(avail, want);
      std::memcpy(buf, io->lent.data() + io->lent_off, n);
      io->lent_off += n;
      return static_cast<int>(n);
    });
    BIO_meth_set_write(m, [](BIO* b, const char* buf, int len) -> int {
      auto* io = static_cast<Io*>(BIO_get_data(b));
      BIO_clear_retry_flags(b);
      if (len > 0) io->out.append(buf, static_cast<size_t>(len));
      return len;
    });
    BIO_meth_set_ctrl(m, [](BIO* b, int cmd, long, void*) -> long {
      auto* io = static_cast<Io*>(BIO_get_data(b));
      switch (cmd) {
        case BIO_CTRL_FLUSH: return 1;
        case BIO_CTRL_PENDING: return static_cast<long>(io->in.size() - io->in_off + io->lent.size() - io->lent_off);
        case BIO_CTRL_WPENDING: return static_cast<long>(io->out.size());
        default: return 0;
      }
    });
    BIO_meth_set_create(m, [](BIO* b) -> int {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

void Engine::attach(Engine& e) {
  e.io_ = std::make_unique<Io>();
  BIO* bio = BIO_new(bio_method());
  BIO_set_data(bio, e.io_.get());
  SSL_set_bio(e.ssl_.get(), bio, bio);  // one BIO both ways: one reference taken
}

Engine Engine::server(SSL_CTX* ctx, const Leaf& leaf) {
  Engine e;
  e.ssl_.reset(SSL_new(ctx));
  attach(e);
  SSL_use_certificate(e.ssl_.get(), leaf.cert.get());
  SSL_use_PrivateKey(e.ssl_.get(), leaf.key.get());
  SSL_set_accept_state(e.ssl_.get());
  SSL_set_app_data(e.ssl_.get(), &e);
  return e;
}

Engine Engine::client(SSL_CTX* ctx, const std::string& host, SessionCache* sessions, uint16_t port) {
  Engine e;
  e.ssl_.reset(SSL_new(ctx));
  attach(e);
  if (sessions != nullptr) {
    e.sessions_ = sessions;
    e.session_key_ = host + ":" + std::to_string(port);
    if (SessionPtr kept = sessions->get(e.session_key_)) SSL_set_session(e.ssl_.get(), kept.get());
  }
  X509_VERIFY_PARAM* param = SSL_get0_param(e.ssl_.get());
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
  if (ip != nullptr) {
    ASN1_OCTET_STRING_free(ip);
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());  // SNI is never sent for IP literals
  } else {
    SSL_set_tlsext_host_name(e.ssl_.get(), host.c_str());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_set_alpn_protos(e.ssl_.get(), alpn, sizeof alpn);
  SSL_set_connect_state(e.ssl_.get());
  SSL_set_app_data(e.ssl_.get(), &e);
  return e;
}

Engine::Engine(Engine&& other) noexcept
    : io_(std::move(other.io_)),
      ssl_(std::move(other.ssl_)),
      error_(std::move(other.error_)),
      sni_(std::move(other.sni_)),
      alert_(std::move(other.alert_)),
      sessions_(other.sessions_),
      session_key_(std::move(other.session_key_)) {
  if (ssl_) SSL_set_app_data(ssl_.get(), this);
}

void Engine::feed(std::string_view ciphertext) {
  if (io_->in_off != 0) {  // rarely: a record's tail left from the last feed
    io_->in.erase(0, io_->in_off);
    io_->in_off = 0;
  }
  if (io_->lent_off < io_->lent.size()) io_->in.append(io_->lent.substr(io_->lent_off));  // it came first
  io_->lent = {};
  io_->lent_off = 0;
  io_->in.append(ciphertext);
}

void Engine::lend(std::string_view ciphertext) {
  if (io_->in_off < io_->in.size() || io_->lent_off < io_->lent.size()) return feed(ciphertext);  // keeps the order
  io_->lent = ciphertext;
  io_->lent_off = 0;
}

void Engine::unlend() { feed({}); }

Engine::Status Engine::fail(int ret) {
  int code = SSL_get_error(ssl_.get(), ret);
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return Status::WantIo;
  if (error_.empty()) {
    long verify = SSL_get_verify_result(ssl_.get());
    if (verify != X509_V_OK) {
      error_ = X509_verify_cert_error_string(verify);
    } else if (code == SSL_ERROR_ZERO_RETURN) {
      error_ = "closed by peer";
    } else {
      std::string text = take_openssl_error();
      if (!alert_.empty()) text = "peer sent alert: " + alert_ + (text.empty() ? "" : " (" + text + ")");
      error_ = text.empty() ? "TLS error" : text;
    }
  }
  ERR_clear_error();
  return Status::Failed;
}

Engine::Status Engine::handshake() {
  if (established()) return Status::Done;
  int ret = SSL_do_handshake(ssl_.get());
  if (ret == 1) return Status::Done;
  const Status st = fail(ret);
  // A target whose handshake failed starts afresh next time: no session of its is offered.
  if (st == Status::Failed && sessions_ != nullptr) sessions_->forget(session_key_);
  return st;
}

Engine::Status Engine::read(std::string& out) {
  // Straight into OUT's spare capacity (one record at a time): no bounce buffer.
  for (;;) {
    const size_t have = out.size();
    if (out.capacity() - have < 16384) out.reserve(have + 65536);
    out.resize(out.capacity());
    int n = SSL_read(ssl_.get(), out.data() + have, static_cast<int>(out.size() - have));
    out.resize(have + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n > 0) continue;
    return fail(n);
  }
}

Engine::Status Engine::read(char* buf, size_t cap, size_t& got) {
  got = 0;
  while (got < cap) {
    int n = SSL_read(ssl_.get(), buf + got, static_cast<int>(std::min<size_t>(cap - got, 1 << 30)));
    if (n <= 0) return fail(n);
    got += static_cast<size_t>(n);
  }
  return Status::Done;
}

Engine::Status Engine::write(std::string_view plaintext) {
  if (plaintext.empty()) return Status::Done;
  int n = SSL_write(ssl_.get(), plaintext.data(), static_cast<int>(plaintext.size()));
  if (n > 0) return Status::Done;  // memory BIOs grow, so a write is taken whole
  return fail(n);
}

void Engine::close_notify() {
  if ((SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) != 0 || !established()) return;
  SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

std::string Engine::take_output() { return std::exchange(io_->out, {}); }

std::string Engine::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

bool looks_like_client_hello(std::string_view data, bool& need_more) {
  // Record header: type 22 (handshake), version 3.x, length; then handshake type 1 (ClientHello).
  need_more = false;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(data[i]); };
  if (!data.empty() && byte(0) != 22) return false;
  if (data.size() >= 2 && byte(1) != 3) return false;
  if (data.size() < 6) {
    need_more = true;
    return false;
  }
  size_t record_len = (size_t(byte(3)) << 8) | byte(4);
  return record_len >= 4 && byte(5) == 1;
}

}  // namespace sluice::tls
