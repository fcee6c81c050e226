#include "bench/upstream.hpp"

#include <csignal>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include <uv.h>

#include "bench/http.hpp"
#include "bench/net.hpp"
#include "bench/tls.hpp"

namespace sluice::bench {

namespace {

constexpr size_t kChunk = kPatternBytes;     // one write of /bytes
constexpr size_t kQueueLimit = 1024 * 1024;  // stop queueing writes above this
constexpr size_t kPumpLimit = 16;            // writes queued per pump call, so one fast
                                             // stream does not starve the other connections
constexpr size_t kMaxInput = 1024 * 1024;    // unread request bytes we are willing to hold
constexpr int kTlsWritesInFlight = 8;        // TLS /bytes: encrypted chunks queued at once
constexpr size_t kSpareBuffers = 64;         // TLS: written buffers kept for reuse

}  // namespace

struct UpConn;

struct Upstream::Impl {
  uv_loop_t loop{};
  uv_tcp_t server{};
  uv_async_t stop_async{};
  uv_signal_t sigint{}, sigterm{};
  uv_timer_t lifetime{};
  bool listening = false, signals = false, timer = false, stopping = false, closed = false;
  int port = 0;
  std::set<UpConn*> conns;
  std::thread thread;
  UpstreamStats stats;
  std::vector<char> read_buf = std::vector<char>(kChunk);  // one loop, reads are consumed at once
  std::vector<char> plain_buf;                             // TLS: decrypted request bytes
  SslCtx tls_ctx;                                          // set: every connection speaks TLS
  std::vector<std::string> spare;                          // TLS: written buffers, for reuse

  void shutdown_all();
  void close_all_handles();
};

struct UpConn {
  enum class State { Head, Body, Stream, Closing };
  Upstream::Impl* up = nullptr;
  uv_tcp_t tcp{};
  State state = State::Head;
  std::string in;
  RequestHead req;
  uint64_t body_left = 0, body_total = 0;
  uint64_t stream_left = 0;
  int writes_pending = 0;
  bool close_after = false;  // Connection: close: shut down after the response
  bool close_now = false;    // close=1: close as soon as the last byte is written
  bool peer_eof = false;
  std::unique_ptr<TlsPipe> tls;

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp); }

  void close();
  void on_data(const char* p, size_t n);
  void process();
  void start_response();
  void write_copy(std::string data);
  void send_raw(std::string data);
  void on_cipher(const char* p, size_t n);
  void on_peer_eof();
  void pump();
  void finish_response();
};

namespace {

struct WriteReq {
  uv_write_t req{};
  UpConn* conn = nullptr;
  std::string data;  // owned bytes; empty for pattern writes
};

void on_conn_closed(uv_handle_t* h) { delete static_cast<UpConn*>(h->data); }

void on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  UpConn* c = w->conn;
  if (c->tls && w->data.capacity() >= kChunk && c->up->spare.size() < kSpareBuffers)
    c->up->spare.push_back(std::move(w->data));
  delete w;
  --c->writes_pending;
  if (c->state == UpConn::State::Closing) return;
  if (status < 0) return c->close();
  if (c->state == UpConn::State::Stream) return c->pump();
  if (c->state == UpConn::State::Head && c->peer_eof && c->writes_pending == 0) c->close();
}

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<UpConn*>(h->data);
  *buf = uv_buf_init(c->up->read_buf.data(), static_cast<unsigned>(c->up->read_buf.size()));
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<UpConn*>(s->data);
  if (c->state == UpConn::State::Closing) return;
  if (n == UV_EOF) return c->on_peer_eof();
  if (n < 0) return c->close();
  if (n > 0 && c->tls) return c->on_cipher(buf->base, static_cast<size_t>(n));
  if (n > 0) c->on_data(buf->base, static_cast<size_t>(n));
}

void on_connection(uv_stream_t* server, int status) {
  auto* up = static_cast<Upstream::Impl*>(server->data);
  if (status < 0 || up->stopping) return;
  auto* c = new UpConn;
  c->up = up;
  uv_tcp_init(&up->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, c->stream()) != 0) {
    c->state = UpConn::State::Closing;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_conn_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (up->tls_ctx) c->tls = TlsPipe::server(up->tls_ctx.get());
  up->conns.insert(c);
  up->stats.connections++;
  uv_read_start(c->stream(), on_alloc, on_read);
}

}  // namespace

void UpConn::close() {
  if (state == State::Closing) return;
  state = State::Closing;
  up->conns.erase(this);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_conn_closed);
}

void UpConn::on_peer_eof() {
  peer_eof = true;
  uv_read_stop(stream());
  // Idle between requests: the client is done. Mid-response: finish it first. Mid-body: the
  // request was cut short.
  if ((state == State::Head && writes_pending == 0) || state == State::Body) close();
}

// TLS: ciphertext in; handshake replies out; the plaintext goes to on_data as if read in clear.
void UpConn::on_cipher(const char* p, size_t n) {
  bool ok = tls->feed(p, n);
  if (tls->pending_output()) send_raw(tls->take_output());
  if (!ok) return close();
  if (up->plain_buf.empty()) up->plain_buf.resize(64 * 1024);
  while (state != State::Closing) {
    long got = tls->read(up->plain_buf.data(), up->plain_buf.size());
    if (tls->pending_output() && state != State::Closing) send_raw(tls->take_output());
    if (got == 0) return;
    if (got == -1) return on_peer_eof();  // close_notify
    if (got < 0) return close();
    on_data(up->plain_buf.data(), static_cast<size_t>(got));
  }
}

void UpConn::on_data(const char* p, size_t n) {
  if (state == State::Body) {  // discard request body bytes without keeping them
    uint64_t take = std::min<uint64_t>(body_left, n);
    body_left -= take;
    up->stats.sink_bytes += take;
    p += take;
    n -= static_cast<size_t>(take);
    if (body_left == 0) start_response();
    if (state == State::Closing) return;
  }
  if (n == 0) return;
  if (in.size() + n > kMaxInput) return close();
  in.append(p, n);
  process();
}

void UpConn::process() {
  while (state == State::Head) {
    close_now = false;
    size_t end = find_head_end(in);
    if (end == std::string::npos) {
      if (in.size() > kMaxHeadBytes) return close();
      if (peer_eof && writes_pending == 0) close();
      return;
    }
    auto head = parse_request_head(std::string_view(in).substr(0, end));
    in.erase(0, end);
    if (!head || head->chunked) {
      write_copy("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      close_after = true;
      state = State::Stream;  // (a stream of zero bytes: finish_response shuts down)
      finish_response();
      return;
    }
    req = std::move(*head);
    up->stats.requests++;
    close_after = req.close;
    body_total = body_left = req.content_length > 0 ? static_cast<uint64_t>(req.content_length) : 0;
    if (body_left == 0) {
      start_response();
      continue;
    }
    state = State::Body;
    uint64_t take = std::min<uint64_t>(body_left, in.size());
    body_left -= take;
    up->stats.sink_bytes += take;
    in.erase(0, static_cast<size_t>(take));
    if (body_left == 0) start_response();
  }
}

void UpConn::write_copy(std::string data) {
  if (tls) {
    if (!tls->write(data.data(), data.size())) return close();
    data = tls->take_output();
  }
  send_raw(std::move(data));
}

void UpConn::send_raw(std::string data) {
  if (data.empty()) return;
  auto* w = new WriteReq;
  w->conn = this;
  w->data = std::move(data);
  w->req.data = w;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  ++writes_pending;
  if (uv_write(&w->req, stream(), &b, 1, on_write) != 0) {
    --writes_pending;
    delete w;
    close();
  }
}

void UpConn::start_response() {
  state = State::Stream;
  close_now = false;
  stream_left = 0;
  std::string conn_hdr = close_after ? "Connection: close\r\n" : "";
  auto reply = [&](const char* status, std::string_view body) {
    write_copy(std::string("HTTP/1.1 ") + status + "\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\nContent-Type: text/plain\r\n" + conn_hdr + "\r\n" + std::string(body));
  };
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (get && req.path == "/") {
    reply("200 OK", req.method == "HEAD" ? std::string_view() : kSmallBody);
  } else if (get && req.path == "/bytes") {
    auto n = parse_u64(query_param(req.query, "n").value_or(""));
    if (!n || *n > kMaxBytesResponse) {
      reply("400 Bad Request", "n must be a byte count up to 64 GiB\n");
    } else {
      close_now = query_param(req.query, "close").value_or("") == "1";
      if (close_now) conn_hdr = "Connection: close\r\n";
      write_copy("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(*n) +
                 "\r\nContent-Type: application/octet-stream\r\n" + conn_hdr + "\r\n");
      stream_left = req.method == "HEAD" ? 0 : *n;
    }
  } else if (req.method == "POST" && req.path == "/sink") {
    reply("200 OK", std::to_string(body_total) + "\n");
  } else {
    reply("404 Not Found", "routes: GET /, GET /bytes?n=N[&close=1], POST /sink\n");
  }
  if (state == State::Closing) return;
  pump();
}

void UpConn::pump() {
  for (size_t i = 0; i < kPumpLimit && stream_left > 0; ++i) {
    if (uv_stream_get_write_queue_size(stream()) >= kQueueLimit) return;
    size_t len = static_cast<size_t>(std::min<uint64_t>(stream_left, kChunk));
    if (tls) {
      // Each chunk is a buffer of its own until written: bound them (their callbacks pump on).
      if (writes_pending >= kTlsWritesInFlight) return;
      if (!tls->write(pattern_bytes(), len)) return close();
      stream_left -= len;
      up->stats.bytes_sent += len;
      std::string buf;
      if (!up->spare.empty()) {
        buf = std::move(up->spare.back());
        up->spare.pop_back();
      }
      tls->take_output(buf);
      send_raw(std::move(buf));
      if (state == State::Closing) return;
      continue;
    }
    auto* w = new WriteReq;
    w->conn = this;
    w->req.data = w;
    uv_buf_t b = uv_buf_init(const_cast<char*>(pattern_bytes()), static_cast<unsigned>(len));
    ++writes_pending;
    if (uv_write(&w->req, stream(), &b, 1, on_write) != 0) {
      --writes_pending;
      delete w;
      return close();
    }
    stream_left -= len;
    up->stats.bytes_sent += len;
  }
  if (stream_left == 0 && writes_pending == 0) finish_response();
}

void UpConn::finish_response() {
  if (close_now) return close();  // every byte is in the kernel; close() sends them, then FIN
  if (close_after || peer_eof) {
    if (tls && !peer_eof) {  // close_notify, then FIN once every write is out
      tls->shutdown();
      send_raw(tls->take_output());
      if (state == State::Closing) return;
    }
    state = State::Closing;
    up->conns.erase(this);
    auto* req = new uv_shutdown_t;
    req->data = this;
    if (uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) {
          auto* c = static_cast<UpConn*>(r->data);
          delete r;
          uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_conn_closed);
        }) != 0) {
      delete req;
      uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_conn_closed);
    }
    return;
  }
  state = State::Head;
  process();
}

void Upstream::Impl::shutdown_all() {
  if (stopping) return;
  stopping = true;
  close_all_handles();
}

void Upstream::Impl::close_all_handles() {
  if (closed) return;
  closed = true;
  if (listening) uv_close(reinterpret_cast<uv_handle_t*>(&server), nullptr);
  if (signals) {
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
  }
  if (timer) uv_close(reinterpret_cast<uv_handle_t*>(&lifetime), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_async), nullptr);
  std::set<UpConn*> all;
  all.swap(conns);
  for (UpConn* c : all) {
    if (c->state == UpConn::State::Closing) continue;
    c->state = UpConn::State::Closing;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_conn_closed);
  }
}

Upstream::Upstream() : impl_(std::make_unique<Impl>()) {
  uv_loop_init(&impl_->loop);
  uv_async_init(&impl_->loop, &impl_->stop_async, [](uv_async_t* a) { static_cast<Impl*>(a->data)->shutdown_all(); });
  impl_->stop_async.data = impl_.get();
}

Upstream::~Upstream() {
  stop();
  impl_->close_all_handles();
  uv_run(&impl_->loop, UV_RUN_DEFAULT);  // runs the close callbacks
  uv_loop_close(&impl_->loop);
}

std::string Upstream::use_tls(const std::string& cert_file, const std::string& key_file, int tickets) {
  std::string err;
  impl_->tls_ctx = make_tls_server_ctx(cert_file, key_file, tickets, err);
  return impl_->tls_ctx ? "" : err;
}

std::string Upstream::listen(const std::string& host, int port) {
  Impl& m = *impl_;
  sockaddr_storage addr{};
  if (std::string err = make_sockaddr(host, port, addr); !err.empty()) return err;
  uv_tcp_init(&m.loop, &m.server);
  m.server.data = &m;
  m.listening = true;
  if (int rc = uv_tcp_bind(&m.server, reinterpret_cast<const sockaddr*>(&addr), 0); rc != 0)
    return "bind " + host + ":" + std::to_string(port) + ": " + uv_strerror(rc);
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&m.server), 4096, on_connection); rc != 0)
    return std::string("listen: ") + uv_strerror(rc);
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&m.server, reinterpret_cast<sockaddr*>(&bound), &len);
  m.port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return "";
}

int Upstream::port() const { return impl_->port; }

const UpstreamStats& Upstream::stats() const { return impl_->stats; }

void Upstream::run(bool handle_signals, double lifetime_s) {
  Impl& m = *impl_;
  if (handle_signals) {
    uv_signal_init(&m.loop, &m.sigint);
    uv_signal_init(&m.loop, &m.sigterm);
    m.sigint.data = m.sigterm.data = &m;
    auto on_sig = [](uv_signal_t* s, int) { static_cast<Impl*>(s->data)->shutdown_all(); };
    uv_signal_start(&m.sigint, on_sig, SIGINT);
    uv_signal_start(&m.sigterm, on_sig, SIGTERM);
    m.signals = true;
  }
  if (lifetime_s > 0) {
    uv_timer_init(&m.loop, &m.lifetime);
    m.lifetime.data = &m;
    uv_timer_start(
        &m.lifetime, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->shutdown_all(); },
        static_cast<uint64_t>(lifetime_s * 1000), 0);
    m.timer = true;
  }
  uv_run(&m.loop, UV_RUN_DEFAULT);
}

void Upstream::start() {
  impl_->thread = std::thread([this] { run(false, 0); });
}

void Upstream::stop() {
  // Only a thread from start() is stopped from outside; run() on the caller's thread ends by
  // signal or lifetime, so the async handle is never used after it has been closed.
  if (!impl_->thread.joinable()) return;
  uv_async_send(&impl_->stop_async);
  impl_->thread.join();
}

}  // namespace sluice::bench
