// HTTP session byte moving: reads, parsing, forwarding, backpressure, timers and
// closing. A tunnel's bytes are the relay's (proxy/relay.hpp).
#include <cctype>
#include <cstdio>
#include <cstring>
#include <utility>

#include "base/write.hpp"
#include "proxy/base_aliases.hpp"
#include "proxy/http_session.hpp"
#include "proxy/http_session_internal.hpp"

namespace sluice::proxy {

namespace {
std::string chunk_header(size_t n) {
  char buf[24];
  int len = std::snprintf(buf, sizeof buf, "%zx\r\n", n);
  return std::string(buf, static_cast<size_t>(len));
}
}  // namespace

// ---- reading -----------------------------------------------------------------

void HttpSession::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* s = static_cast<HttpSession*>(h->data);
  buf->base = s->worker_.buffers().get();
  buf->len = BufferPool::kBlockSize;
}

void HttpSession::on_client_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* s = static_cast<HttpSession*>(stream->data);
  base::PooledBlock block(s->worker_.buffers(), buf->base);  // back to the pool on every path
  try {
    if (nread > 0) {
      s->cork();
      s->client_data(block.get(), static_cast<size_t>(nread));
      return s->uncork();
    }
    if (nread == UV_EOF) return s->client_eof();
    if (nread < 0) return s->close_now(Termination::ClientReset);
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

void HttpSession::on_upstream_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* s = static_cast<HttpSession*>(stream->data);
  base::PooledBlock block(s->worker_.buffers(), buf->base);
  try {
    if (nread > 0) {
      s->cork();
      s->upstream_data(block.get(), static_cast<size_t>(nread));
      return s->uncork();
    }
    if (nread == UV_EOF) return s->upstream_eof();
    if (nread < 0) return s->upstream_reset();
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

void HttpSession::client_data(const char* block, size_t n) {
  // Bytes read ahead while a whole request waits for its response (the next request, unparsed)
  // move nothing of this exchange: they do not hold off its timeout.
  if (state_ != State::Forwarding || !exchange_.request_complete) last_activity_ = uv_now(worker_.loop());
  got_bytes_ = true;
  if (state_ == State::Closing) return;  // lingering: discarded
  client_pending_.append(block, n);
  parse_client();
}

void HttpSession::client_eof() {
  client_side_.eof = true;
  switch (state_) {
    case State::Forwarding:
      if (!exchange_.request_complete) return close_now(Termination::ClientEof);  // request cut short
      // Read ahead: the response still goes out, then what was read before the EOF (pipelined
      // requests) is answered, then the session closes (response_done, parse_client).
      break;
    case State::Targeting:
      // Asked: the client left, nobody waits for the answer. Judging or dialing (read ahead):
      // the verdict still comes, a tunnel passes the EOF on after the 200 (start_tunnel).
      if (flow_.phase() == TargetFlow::Phase::Asking) return close_now(Termination::ClientEof);
      break;
    default: return close_now(Termination::ClientEof);
  }
  update_reading();
}

void HttpSession::upstream_data(const char* block, size_t n) {
  last_activity_ = uv_now(worker_.loop());
  if (state_ == State::Forwarding && exchange_.in_flight) return parse_upstream(block, n);
  // Bytes from an idle upstream answer nothing: it cannot be reused.
  close_upstream();
  update_reading();
}

void HttpSession::upstream_eof() {
  upstream_side_.eof = true;
  if (state_ == State::Forwarding && exchange_.in_flight) {
    auto r = response_parser().finish();
    if (r.event == HttpParser::Event::Done && exchange_.response_started) {
      response_done();
      return;
    }
    if (!exchange_.response_started)
      return reply_and_close(rules::Reason::UpstreamClosed,
                             "sluice: " + host_port_text(host_, port_) + " closed the connection without a response");
    return close_now(Termination::UpstreamEof);  // the client sees a cut-short body, as it would directly
  }
  close_upstream();
  update_reading();
}

// A read error (reset) is never the end of a message: a response under way is cut,
// so the client cannot take a truncated body for a complete one.
void HttpSession::upstream_reset() {
  upstream_side_.eof = true;
  if (state_ == State::Forwarding && exchange_.in_flight) {
    if (!exchange_.response_started)
      return reply_and_close(rules::Reason::UpstreamClosed,
                             "sluice: " + host_port_text(host_, port_) + " reset the connection without a response",
                             Termination::UpstreamReset);
    return close_now(Termination::UpstreamReset);
  }
  close_upstream();
  update_reading();
}

// ---- parsing -----------------------------------------------------------------

// `kick`: feed even with nothing pending, because llhttp reports the end of a
// body-less message only when executed again after a resume.
void HttpSession::parse_client(bool kick) {
  while (!closed_ && (kick || !client_pending_.empty())) {
    kick = false;
    bool body_phase = state_ == State::Forwarding && exchange_.in_flight && !exchange_.request_complete;
    if (state_ != State::ReadingHead && !body_phase) break;
    if (state_ == State::ReadingHead && !client_pending_.empty() && timer_.kind() != TimerKind::HeaderTimeout)
      arm(TimerKind::HeaderTimeout, config_->limits.header_timeout_ms);
    auto r = request_parser_.feed(client_pending_.data(), client_pending_.size());
    client_pending_.erase(0, r.consumed);
    switch (r.event) {
      case HttpParser::Event::NeedMore: break;
      case HttpParser::Event::Head: return on_request_head(false);
      case HttpParser::Event::Upgrade:
        if (request_parser_.head().method == "CONNECT") return on_request_head(true);
        // An upgrade request has ended; what follows is the new protocol, held until the 101.
        exchange_.request_complete = true;
        return update_reading();
      case HttpParser::Event::Done:
        request_done();
        if (state_ == State::ReadingHead) {  // a refused request ended (refuse_and_continue)
          request_parser_.resume();
          continue;
        }
        return update_reading();
      case HttpParser::Event::Error:
        return reply_and_close(request_parser_.error_status() == 431   ? rules::Reason::HeaderTooLarge
                               : request_parser_.error_status() == 414 ? rules::Reason::UriTooLong
                               : request_parser_.error_status() == 501 ? rules::Reason::UnsupportedTransferCoding
                                                                       : rules::Reason::BadRequest,
                               "sluice: " + request_parser_.error_message());
    }
  }
  // The EOF was read ahead: no more of this head or body will come.
  const bool body_phase = state_ == State::Forwarding && exchange_.in_flight && !exchange_.request_complete;
  if (client_side_.eof && !closed_ && (state_ == State::ReadingHead || body_phase)) return finish_after_client_eof();
  update_reading();
}

void HttpSession::parse_upstream(const char* data, size_t n) {
  size_t off = 0;
  bool kick = false;  // see parse_client
  while ((off < n || kick) && !closed_ && state_ == State::Forwarding) {
    kick = false;
    auto r = response_parser().feed(data + off, n - off);
    off += r.consumed;
    switch (r.event) {
      case HttpParser::Event::NeedMore: break;
      case HttpParser::Event::Head:
        response_head();
        if (state_ != State::Forwarding) return;
        response_parser().resume();
        kick = true;
        break;
      case HttpParser::Event::Done:
        response_parser().resume();
        if (exchange_.informational) {
          kick = true;
          break;
        }
        if (off < n) exchange_.upstream_garbage = true;
        return response_done();
      case HttpParser::Event::Upgrade:
        if (exchange_.upgrade_requested && response_parser().head().status == 101)
          return start_tunnel(std::exchange(client_pending_, {}), std::string(data + off, n - off));
        [[fallthrough]];
      case HttpParser::Event::Error:
        if (!exchange_.response_started)
          return reply_and_close(
              rules::Reason::BadUpstreamResponse,
              "sluice: bad response from " + host_port_text(host_, port_) + ": " + response_parser().error_message());
        return close_now(Termination::BadResponse);  // a response that went bad half way: cut
    }
  }
}

// ---- forwarding --------------------------------------------------------------

void HttpSession::send_request_upstream() {
  state_ = State::Forwarding;
  last_activity_ = uv_now(worker_.loop());
  const HttpHead& req = request_parser_.head();
  std::string host_header = host_.kind == rules::HostKind::Ip && host_.addr.v6 ? "[" + host_.text + "]" : host_.text;
  if (url_.port_explicit) host_header += ":" + std::to_string(url_.port);
  response_parser().expect_head_response(req.method == "HEAD");
  exchange_.in_flight = true;
  exchange_.request_complete = false;
  exchange_.response_started = false;
  exchange_.informational = false;
  exchange_.upstream_garbage = false;
  exchange_.close_after = !req.keep_alive || draining_;
  arm(TimerKind::ForwardTimeout, forward_limit_ms());
  // The Host sent upstream comes from the URL; a client Host that disagrees is noted.
  if (const std::string* client_host = req.header("host"); client_host != nullptr) {
    std::string lowered = *client_host;
    for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lowered != host_header) decision_->host_replaced = *client_host;
  }
  const std::string* upgrade = exchange_.upgrade_requested ? req.header("upgrade") : nullptr;
  std::string head = build_upstream_request(req, url_, host_header, upgrade ? *upgrade : std::string_view{});
  // Through an http parent: absolute-form and the parent's credentials (proxy/dialer.hpp).
  if (const auto* parent = flow_.forward_via()) head = rules::to_parent_form(head, host_header, parent->auth);
  if (git_.push_check)
    hold_push(std::move(head));  // nothing goes upstream before the git guard read the commands
  else
    write(Side::Upstream, head);
  request_parser_.resume();
  parse_client(true);
}

void HttpSession::request_body(const char* data, size_t n) {
  if (git_.holding || git_.discarding) return git_body(data, n);
  if (body_replace_) return replace_in_body(data, n);  // the credential gateway's body filter
  forward_request_body(data, n);
}

void HttpSession::forward_request_body(const char* data, size_t n) {
  if (request_parser_.head().chunked) {
    std::string out = chunk_header(n);
    out.append(data, n);
    out += "\r\n";
    return write(Side::Upstream, std::move(out));
  }
  if (tls_[1] != nullptr) return write_tls(Side::Upstream, {data, n}, true);
  write(Side::Upstream, std::string(data, n));
}

void HttpSession::request_done() {
  if (git_.holding || git_.discarding) return git_body_done();
  if (body_replace_) finish_body_replace();
  exchange_.request_complete = true;
  if (request_parser_.head().chunked) write(Side::Upstream, "0\r\n\r\n");
  // The wait changes from the client's body to the upstream's response.
  if (!exchange_.response_started) arm(TimerKind::ForwardTimeout, forward_limit_ms());
}

void HttpSession::response_head() {
  const HttpHead& h = response_parser().head();
  if (h.status == 101) {
    const std::string* to = h.header("upgrade");
    if (!exchange_.upgrade_requested || to == nullptr)
      return reply_and_close(rules::Reason::BadUpstreamResponse, "sluice: upstream switched protocols unasked");
    exchange_.informational = false;
    exchange_.response_started = true;
    write(Side::Client, build_client_response(h, false, false, *to));
    return log_decision(101);
  }
  exchange_.informational = h.status >= 100 && h.status < 200;
  if (exchange_.informational) return write(Side::Client, build_client_response(h, false, false));
  // An http parent refusing sluice's credentials is sluice's failure, not the origin's answer.
  if (h.status == 407 && flow_.forward_via())
    return reply_and_close(rules::Reason::UpstreamProxyAuth,
                           "sluice: the upstream proxy refused sluice's credentials (407)");
  const HttpHead& req = request_parser_.head();
  exchange_.response_started = true;
  bool no_body = req.method == "HEAD" || h.status == 204 || h.status == 304;
  bool client_is_11 = req.http_major == 1 && req.http_minor >= 1;
  bool length_known = h.has_content_length && !h.chunked;
  exchange_.client_chunked = !no_body && !length_known && client_is_11;
  // A body the client can only see end by the connection closing.
  bool close_delimited = !no_body && !length_known && !client_is_11;
  // A declined upgrade: the client's parser is past the point of no return.
  if (close_delimited || exchange_.upgrade_requested) exchange_.close_after = true;
  arm(TimerKind::ForwardTimeout, forward_limit_ms());  // now the response streams
  write(Side::Client, build_client_response(h, exchange_.client_chunked, exchange_.close_after));
  log_decision(h.status);
}

void HttpSession::response_body(const char* data, size_t n) {
  if (exchange_.informational) return;
  if (exchange_.client_chunked) {
    std::string out = chunk_header(n);
    out.append(data, n);
    out += "\r\n";
    return write(Side::Client, std::move(out));
  }
  if (tls_[0] != nullptr) return write_tls(Side::Client, {data, n}, true);
  write(Side::Client, std::string(data, n));
}

void HttpSession::response_done() {
  if (exchange_.client_chunked) write(Side::Client, "0\r\n\r\n");
  exchange_.in_flight = false;
  const HttpHead& h = response_parser().head();
  bool upstream_reusable =
      h.keep_alive && exchange_.request_complete && !exchange_.upstream_garbage && !upstream_side_.eof;
  if (!upstream_reusable) close_upstream();
  // A client that sent EOF after pipelined requests (read ahead, unparsed) still gets their answers.
  const bool client_done = client_side_.eof && client_pending_.empty();
  if (exchange_.close_after || !exchange_.request_complete || client_done || draining_) {
    if (cause_ == Termination::None)
      cause_ = client_side_.eof ? Termination::ClientEof : draining_ ? Termination::Drain : Termination::Done;
    state_ = State::Closing;
    return begin_linger();
  }
  state_ = State::ReadingHead;
  request_parser_.resume();
  arm(TimerKind::KeepAliveTimeout, static_cast<uint64_t>(config_->limits.keepalive_timeout_ms));
  parse_client();
}

// ---- backpressure ------------------------------------------------------------

bool HttpSession::has_stream(Side s) const {
  return s == Side::Client ? client_.live() || tls_[0] != nullptr : upstream_.live() || tls_[1] != nullptr;
}

size_t HttpSession::queued(Side s) const {
  if (const TlsPump* tls = tls_[s == Side::Client ? 0 : 1]) return tls->queued();
  if (s == Side::Client) return client_.live() ? uv_stream_get_write_queue_size(client_.stream()) : 0;
  return upstream_.live() ? uv_stream_get_write_queue_size(upstream_.stream()) : 0;
}

void HttpSession::update_reading() {
  if (closed_ || settling_reads_) return;
  bool want_client = false;
  bool want_upstream = false;
  bool upstream_open = has_stream(Side::Upstream) && !upstream_side_.eof;
  switch (state_) {
    case State::ReadingHead:
      want_client = !client_side_.eof && client_pending_.size() <= config_->limits.max_header_bytes;
      want_upstream = upstream_open;  // notice an idle keep-alive upstream closing
      break;
    case State::Targeting:
      // Judging, asking, dialing: what the client sends meanwhile waits unparsed in
      // client_pending_, up to the head limit; none of it is parsed or forwarded before the
      // verdict (a refusal discards it). The read stays armed from the head on (libuv 1.44
      // spends two epoll_ctl restarting a stopped read), and notices a client leaving while
      // asked (client_eof).
      want_client = !client_side_.eof && client_pending_.size() <= config_->limits.max_header_bytes;
      if (flow_.phase() == TargetFlow::Phase::Asking) want_upstream = upstream_open;
      break;
    case State::Tunnelling:  // the relay reads
      break;
    case State::Forwarding:
      want_upstream = upstream_open && queued(Side::Client) < kHighWatermark;
      if (!exchange_.request_complete) {
        want_client = !client_side_.eof && queued(Side::Upstream) < kHighWatermark;
        break;
      }
      // The request is whole: the read stays armed for the next one (libuv 1.44 spends two
      // epoll_ctl restarting a stopped read). What arrives waits unparsed, up to the head limit,
      // until the response is done; an EOF is noted (client_eof). After an upgrade request the
      // bytes are the new protocol's, held in the socket until the 101.
      want_client = !client_side_.eof && !exchange_.upgrade_requested &&
                    client_pending_.size() <= config_->limits.max_header_bytes;
      break;
    case State::Closing: want_client = lingering_ && !client_side_.eof; break;
  }
  if (has_stream(Side::Client) && want_client != client_side_.reading) {
    client_side_.reading = want_client;
    if (tls_[0] != nullptr)
      tls_[0]->set_reading(want_client);
    else if (want_client)
      uv_read_start(client_.stream(), on_alloc, on_client_read);
    else
      uv_read_stop(client_.stream());
  }
  if (has_stream(Side::Upstream) && want_upstream != upstream_side_.reading) {
    upstream_side_.reading = want_upstream;
    if (tls_[1] != nullptr)
      tls_[1]->set_reading(want_upstream);
    else if (want_upstream)
      uv_read_start(upstream_.stream(), on_alloc, on_upstream_read);
    else
      uv_read_stop(upstream_.stream());
  }
}

// ---- writing -----------------------------------------------------------------

void HttpSession::uncork() {
  if (cork_ == 0 || --cork_ > 0) return;
  flush(Side::Upstream);
  flush(Side::Client);
}

void HttpSession::flush(Side to) {
  if (TlsPump* tls = tls_[to == Side::Client ? 0 : 1]) {  // the records written while corked
    if (tls->flush() < 0) close_now(to == Side::Client ? Termination::ClientReset : Termination::UpstreamReset);
    return;
  }
  std::string& pending = corked_[to == Side::Client ? 0 : 1];
  if (pending.empty()) return;
  const int saved = std::exchange(cork_, 0);
  write(to, std::exchange(pending, {}), false);  // counted when it was corked
  cork_ = saved;
}

void HttpSession::write(Side to, std::string bytes, bool count) {
  const bool to_client = to == Side::Client;
  uv_stream_t* stream =
      to_client ? (client_.live() ? client_.stream() : nullptr) : (upstream_.live() ? upstream_.stream() : nullptr);
  if (tls_[to_client ? 0 : 1] != nullptr) return write_tls(to, bytes, count);
  if (stream == nullptr || (to_client ? client_side_.shut : upstream_side_.shut)) return;
  if (cork_ > 0) {
    corked_[to_client ? 0 : 1] += bytes;
    if (count) (to_client ? bytes_down_ : bytes_up_) += bytes.size();
    return;
  }
  const size_t n = bytes.size();
  if (base::write_now(stream, std::move(bytes), {on_write, this, static_cast<int>(to)}) < 0)
    return close_now(to_client ? Termination::ClientReset : Termination::UpstreamReset);
  if (count) (to_client ? bytes_down_ : bytes_up_) += n;
  if (queued(to) >= kHighWatermark) update_reading();
}

void HttpSession::write_tls(Side to, std::string_view bytes, bool count) {
  const bool to_client = to == Side::Client;
  TlsPump* tls = tls_[to_client ? 0 : 1];
  if (tls == nullptr || (to_client ? client_side_.shut : upstream_side_.shut)) return;
  if (tls->write(bytes, cork_ == 0) < 0)
    return close_now(to_client ? Termination::ClientReset : Termination::UpstreamReset);
  if (count) (to_client ? bytes_down_ : bytes_up_) += bytes.size();
  if (queued(to) >= kHighWatermark) update_reading();
}

void HttpSession::on_write(void* session, int side, int status) {
  if (status == UV_ECANCELED) return;
  auto* s = static_cast<HttpSession*>(session);
  try {
    if (status < 0)
      return s->close_now(static_cast<Side>(side) == Side::Client ? Termination::ClientReset
                                                                  : Termination::UpstreamReset);
    s->update_reading();
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

void HttpSession::shutdown(Side side) {
  const bool client = side == Side::Client;
  bool& shut = client ? client_side_.shut : upstream_side_.shut;
  if (!has_stream(side) || shut) return;
  flush(side);  // the FIN goes after every byte written before it
  shut = true;
  if (TlsPump* tls = tls_[client ? 0 : 1]) {  // close_notify, then the FIN; ShutDone follows
    if (tls->shutdown() < 0) on_shutdown_done(side);
    return;
  }
  auto* req = new uv_shutdown_t{};
  req->data = this;
  if (uv_shutdown(req, client ? client_.stream() : upstream_.stream(), on_shutdown) != 0) {
    delete req;
    on_shutdown_done(side);
  }
}

void HttpSession::on_shutdown(uv_shutdown_t* req, int status) {
  auto* s = static_cast<HttpSession*>(req->data);
  bool client_side = req->handle == s->client_.stream();
  delete req;
  if (status == UV_ECANCELED) return;
  try {
    s->on_shutdown_done(client_side ? Side::Client : Side::Upstream);
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

void HttpSession::on_shutdown_done(Side side) {
  (side == Side::Client ? client_side_.shut_done : upstream_side_.shut_done) = true;
  if (state_ == State::Closing && side == Side::Client) {
    if (client_side_.eof) return close_now(Termination::ClientEof);
    lingering_ = true;
    arm(TimerKind::LingerTimeout, kLingerMs);
    update_reading();
  }
}

// ---- closing -----------------------------------------------------------------

// Our reply is queued: send FIN after it, then drain the client briefly so
// unread request bytes do not turn the close into a reset that eats the reply.
void HttpSession::begin_linger() {
  state_ = State::Closing;
  close_upstream();
  shutdown(Side::Client);
  update_reading();
  if (!has_stream(Side::Client)) close_now(Termination::ClientReset);
}

void HttpSession::finish_after_client_eof() {
  if (cause_ == Termination::None) cause_ = Termination::ClientEof;
  flow_.stop();
  begin_linger();  // the FIN after what is written; the shutdown's end closes (client_side_.eof)
}

void HttpSession::close_upstream() {
  corked_[1].clear();  // nothing more goes to this upstream
  relay_.detach();
  if (upstream_.live()) {
    upstream_.close(on_handle_closed);
  }
  if (tls_[1] != nullptr) std::exchange(tls_[1], nullptr)->detach();  // close_notify, FIN, gone
  upstream_side_ = {};                                                // the next upstream starts afresh
  upstream_key_.clear();
}

void HttpSession::close_now(Termination why) {
  if (closed_) return;
  closed_ = true;
  if (cause_ == Termination::None) cause_ = why;
  state_ = State::Closing;
  flow_.stop();
  corked_[0].clear();
  corked_[1].clear();
  relay_.detach();
  try {
    rules::Verdict released;  // a tunnel's decision freed by release_head_state
    released.action = tunnel_action_;
    released.reason = tunnel_reason_;
    flow_.judge().close(bytes_up_ + relay_.bytes_up(), bytes_down_ + relay_.bytes_down(), requests_,
                        decision_ ? &decision_->verdict : &released);
  } catch (...) {
    // Out of memory while accounting: the connection closes all the same.
  }
  if (pump_ != nullptr) std::exchange(pump_, nullptr)->abort();
  for (TlsPump*& tls : tls_)
    if (tls != nullptr) std::exchange(tls, nullptr)->detach();
  if (client_.live() || client_handed_)
    log_close(worker_, client_info_, bytes_up_ + relay_.bytes_up(), bytes_down_ + relay_.bytes_down(), requests_,
              cause_);
  timer_.close(on_handle_closed);
  client_.close(on_handle_closed);
  upstream_.close(on_handle_closed);
}

void HttpSession::on_handle_closed(void* data) {
  auto* s = static_cast<HttpSession*>(data);
  if (--s->open_handles_ == 0) s->worker_.connection_finished(s);
}

// ---- timers ----

uint64_t HttpSession::forward_limit_ms() const {
  const auto& l = config_->limits;
  if (!exchange_.request_complete) return static_cast<uint64_t>(l.request_body_timeout_ms);
  if (!exchange_.response_started) return static_cast<uint64_t>(l.response_timeout_ms);
  return static_cast<uint64_t>(l.idle_timeout_ms);
}

// The timer runs from the last byte moved; it fires late rather than being re-armed per read.
void HttpSession::on_forward_timeout() {
  const uint64_t idle = uv_now(worker_.loop()) - last_activity_;
  const uint64_t limit = forward_limit_ms();
  if (idle < limit) return arm(TimerKind::ForwardTimeout, limit - idle);
  if (exchange_.in_flight && exchange_.request_complete && !exchange_.response_started)
    return reply_and_close(
        rules::Reason::UpstreamTimeout,
        "sluice: " + host_port_text(host_, port_) + " sent no response within " + std::to_string(limit) + " ms",
        Termination::IdleTimeout);
  close_now(Termination::IdleTimeout);  // a body that stopped arriving, or a response that stopped streaming
}

void HttpSession::on_timer(uv_timer_t* t) {
  auto* s = static_cast<HttpSession*>(t->data);
  try {
    const auto& limits = s->config_->limits;
    switch (s->timer_.kind()) {
      case TimerKind::None: return;
      case TimerKind::HeaderTimeout:
        if (!s->got_bytes_ && s->requests_ == 0) return s->close_now(Termination::HeaderTimeout);
        return s->reply_and_close(
            rules::Reason::HeaderTimeout,
            "sluice: request head not received within " + std::to_string(limits.header_timeout_ms) + " ms",
            Termination::HeaderTimeout);
      case TimerKind::KeepAliveTimeout: return s->close_now(Termination::IdleTimeout);
      case TimerKind::ForwardTimeout: return s->on_forward_timeout();
      case TimerKind::LingerTimeout:
        return s->close_now(Termination::Refused);  // only a reply or a finished exchange lingers
      case TimerKind::TunnelStarted: return s->release_head_state();
    }
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

}  // namespace sluice::proxy
