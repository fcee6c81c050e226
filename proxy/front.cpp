#include "proxy/front.hpp"

#include <sys/socket.h>

#include "proxy/base_aliases.hpp"
#include "proxy/decision.hpp"
#include "proxy/http_session.hpp"
#include "proxy/net_address.hpp"
#include "proxy/socks_session.hpp"

namespace sluice::proxy {

Front::Front(WorkerContext& worker, std::shared_ptr<const ListenerInfo> listener,
             std::shared_ptr<const rules::Config> config, std::shared_ptr<rules::WorkerRules> rules)
    : worker_(worker), config_(std::move(config)), rules_(std::move(rules)) {
  client_info_.id = worker.next_connection_id();
  client_info_.listener = std::move(listener);
  client_info_.started_ms = uv_now(worker.loop());
}

Front::~Front() = default;

bool Front::accept(uv_stream_t* server, bool is_unix) {
  client_info_.is_unix = is_unix;
  int r = client_.init([&](AnyStream* s) {
    return is_unix ? uv_pipe_init(worker_.loop(), &s->pipe, 0) : uv_tcp_init(worker_.loop(), &s->tcp);
  });
  if (r != 0) {
    worker_.connection_finished(this);
    return false;
  }
  client_.get()->handle.data = this;
  if (uv_accept(server, client_.stream()) != 0) {
    // Not a connection yet (the client gave up in the accept queue): no close line.
    client_info_.listener.reset();
    close(Termination::ClientReset);
    return false;
  }
  uv_os_fd_t fd = -1;
  uv_fileno(client_.handle(), &fd);
  if (is_unix) {
    client_info_.addr = "unix";
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
      client_info_.peer = PeerCred{true, cred.pid, cred.uid, cred.gid};
  } else {
    uv_tcp_nodelay(&client_.get()->tcp, 1);
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&client_.get()->tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
      client_info_.addr = format_sockaddr(ss);
  }
  return true;
}

void Front::start(std::string refusal) {
  refusal_ = std::move(refusal);
  header_timer_.init([&](uv_timer_t* t) { return uv_timer_init(worker_.loop(), t); });
  header_timer_.get()->data = this;
  uv_timer_start(header_timer_.get(), on_header_timeout, static_cast<uint64_t>(config_->limits.header_timeout_ms), 0);
  if (uv_read_start(client_.stream(), on_alloc, on_read) != 0) close(Termination::ProxyError);
}

void Front::start_transparent(TransparentStart t, std::string refusal) {
  auto http = std::make_unique<HttpSession>(worker_, config_, rules_, std::move(client_info_), std::move(client_),
                                            std::exchange(t.first, {}));
  HttpSession* session = http.get();
  WorkerContext& worker = worker_;
  worker.hand_over(this, OwnedConnection(std::move(http)));  // deletes this front: no member below
  try {
    session->start_transparent(t, refusal);
  } catch (...) {
    session->abort();
  }
}

void Front::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* f = static_cast<Front*>(h->data);
  buf->base = f->worker_.buffers().get();
  buf->len = BufferPool::kBlockSize;
}

void Front::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* f = static_cast<Front*>(stream->data);
  // The pool is the worker's: it outlives this front, which the hand-over deletes.
  base::PooledBlock block(f->worker_.buffers(), buf->base);
  if (nread > 0) {
    try {
      return f->hand_over(block.get(), static_cast<size_t>(nread));
    } catch (...) {
      return f->close(Termination::ProxyError);  // failed before the hand-over: the front still owns the client
    }
  }
  // EOF or error before a single byte: nothing to answer, but the close is logged.
  if (nread < 0) f->close(nread == UV_EOF ? Termination::ClientEof : Termination::ClientReset);
}

// A client that connects and says nothing is closed without a reply, as before any protocol.
void Front::on_header_timeout(uv_timer_t* t) { static_cast<Front*>(t->data)->close(Termination::HeaderTimeout); }

void Front::hand_over(const char* block, size_t n) {
  header_timer_.close();
  std::string first(block, n);
  const bool socks = first[0] == 0x05 || first[0] == 0x04;
  std::string refusal = std::move(refusal_);
  SocksSession* socks_session = nullptr;
  HttpSession* http_session = nullptr;
  std::unique_ptr<SocksSession> s5;
  std::unique_ptr<HttpSession> http;
  if (socks) {
    s5 = std::make_unique<SocksSession>(worker_, config_, rules_, std::move(client_info_), std::move(client_),
                                        std::move(first));
    socks_session = s5.get();
    socks_session->take_over_reading();  // the read runs on, into the session
  } else {
    http = std::make_unique<HttpSession>(worker_, config_, rules_, std::move(client_info_), std::move(client_),
                                         std::move(first));
    http_session = http.get();
    http_session->take_over_reading();  // the read runs on, into the session
  }
  WorkerContext& worker = worker_;
  // Deletes this front: no member is touched below.
  worker.hand_over(this, socks ? OwnedConnection(std::move(s5)) : OwnedConnection(std::move(http)));
  try {
    if (socks_session) {
      if (refusal.empty()) return socks_session->start();
      return socks_session->refuse(refusal);
    }
    if (refusal.empty()) return http_session->start();
    http_session->refuse(rules::Reason::TooManyConnections, refusal);
  } catch (...) {
    if (socks_session)
      socks_session->abort();
    else
      http_session->abort();
  }
}

void Front::close(Termination why) {
  if (closed_) return;
  closed_ = true;
  header_timer_.close();
  // Every accepted connection gets its close line, also one the sniffer ends (docs/decision-log.md).
  if (client_.live() && client_info_.listener) log_close(worker_, client_info_, 0, 0, 0, why);
  if (client_.live()) return client_.close(on_closed);
  worker_.connection_finished(this);
}

void Front::on_closed(void* data) {
  auto* f = static_cast<Front*>(data);
  f->worker_.connection_finished(f);
}

}  // namespace sluice::proxy
