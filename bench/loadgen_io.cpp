// The runner's connections and bytes: connect, the CONNECT or SOCKS5 handshake, TLS inside
// the tunnel, the request, uploads, and what comes back.
#include <algorithm>

#include "bench/loadgen_runner.hpp"

namespace sluice::bench::loadgen_detail {

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

void Runner::open_conn(Slot* s) {
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

void Runner::close_conn(Slot* s) {
  Conn* c = s->conn;
  if (!c) return;
  s->conn = nullptr;
  c->slot = nullptr;
  uv_close(c->handle(), on_conn_closed);
}

bool Runner::write(Slot* s, const char* p, size_t n, size_t upload_len) {
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
bool Runner::flush_tls(Slot* s) {
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
void Runner::path_open(Slot* s) {
  if (!tls_ctx) return send_request(s);
  s->phase = Slot::Phase::TlsHandshake;
  s->conn->tls = TlsPipe::client(tls_ctx, o.sni, tls_verify_name);
  flush_tls(s);
}

// TLS records from the peer: the handshake, then the plaintext goes the way of clear reads.
void Runner::on_cipher(Slot* s, const char* p, size_t n) {
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

void Runner::on_connected(Slot* s) {
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

void Runner::send_request(Slot* s) {
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

void Runner::pump_upload(Slot* s) {
  for (size_t i = 0; i < kUploadPump && s->upload_left > 0 && s->conn; ++i) {
    if (uv_stream_get_write_queue_size(s->conn->stream()) >= kUploadQueue) return;
    size_t len = static_cast<size_t>(std::min<uint64_t>(s->upload_left, kPatternBytes));
    s->upload_left -= len;
    if (!write(s, pattern_bytes(), len, len)) return;
  }
}

void Runner::on_data(Slot* s, const char* p, size_t n) {
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
void Runner::on_plain(Slot* s, const char* p, size_t n) {
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
bool Runner::socks_handshake(Slot* s, const char* p, size_t n, size_t& used) {
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

}  // namespace sluice::bench::loadgen_detail
