// HTTP session lifecycle: request head, authorization, judging, dialing, replies.
// Byte moving (forwarding, backpressure, timers, closing) lives in session_io.cpp.
#include "proxy/http_session.hpp"

#include <sys/socket.h>

#include "proxy/base_aliases.hpp"
#include "proxy/http_session_internal.hpp"
#include "proxy/judge.hpp"
#include "rules/credentials.hpp"

namespace sluice::proxy {

HttpSession::HttpSession(WorkerContext& worker, std::shared_ptr<const rules::Config> config,
                         std::shared_ptr<rules::WorkerRules> rules, ClientInfo client, UvHandle<AnyStream>&& stream,
                         std::string first_bytes)
    : worker_(worker),
      config_(std::move(config)),
      client_info_(std::move(client)),
      listener_config_(find_listener(*config_, *client_info_.listener)),
      request_parser_(HttpParser::Kind::Request,
                      HttpParser::Limits{config_->limits.max_header_bytes, config_->limits.max_headers,
                                         config_->limits.max_request_line_bytes}),
      flow_(
          worker, *config_, client_info_, listener_config_ ? config_->policy(listener_config_->policy) : nullptr,
          std::move(rules),
          [this](FlowOutcome& o) {
            try {
              on_flow(o);
            } catch (...) {
              close_now(Termination::ProxyError);
            }
          },
          [this](TargetFlow::Phase) { update_reading(); }),
      relay_(worker.loop(), worker.buffers(), static_cast<uint64_t>(config_->limits.tunnel_idle_timeout_ms)) {
  request_parser_.on_body = [this](const char* d, size_t n) { request_body(d, n); };
  client_ = std::move(stream);
  client_.get()->handle.data = this;
  ++open_handles_;
  timer_.open(worker_.loop(), this, on_timer, open_handles_);
  last_activity_ = uv_now(worker_.loop());
  client_pending_ = std::move(first_bytes);
  got_bytes_ = !client_pending_.empty();
}

HttpSession::~HttpSession() = default;

void HttpSession::take_over_reading() {
  uv_stream_t* s = client_.stream();
  s->alloc_cb = on_alloc;
  s->read_cb = on_client_read;
  client_side_.reading = true;
}

void HttpSession::start() {
  arm(TimerKind::HeaderTimeout, config_->limits.header_timeout_ms);
  parse_client();
}

void HttpSession::start_transparent(const TransparentStart& t, const std::string& refusal) {
  transparent_ = true;
  first_kind_ = t.first_kind;
  client_tls_first_ = t.first_kind == FirstBytesKind::Tls;
  ++requests_;
  decision_ = std::make_unique<Decision>();
  decision_->kind = ConnKind::Connect;
  decision_->method = "CONNECT";
  decision_->original_dst = t.original_dst;
  is_connect_ = true;
  state_ = State::Targeting;
  if (!refusal.empty()) return reply_and_close(rules::Reason::TooManyConnections, refusal);
  auto hp = rules::split_host_port(t.target);
  if (!hp) {
    decision_->host = t.target;
    return reply_and_close(rules::Reason::BadRequest, "sluice: bad transparent target: " + hp.error());
  }
  judge_target(hp->host, hp->port);
}

void HttpSession::refuse(rules::Reason reason, const std::string& message) {
  decision_ = std::make_unique<Decision>();
  reply_and_close(reason, message);
}

void HttpSession::drain() {
  draining_ = true;
  if (state_ == State::ReadingHead && client_pending_.empty() && !request_parser_.message_started())
    close_now(Termination::Drain);
  if (state_ == State::Targeting && flow_.phase() == TargetFlow::Phase::Asking) {
    // Nobody will answer a stopping proxy: refuse now rather than at the drain deadline.
    flow_.stop();
    reply_and_close(rules::Reason::ShuttingDown, "sluice: the proxy is stopping; try again");
  }
}

void HttpSession::abort() { close_now(Termination::DrainDeadline); }

// ---- judging ---------------------------------------------------------------

void HttpSession::on_request_head(bool is_connect) {
  const HttpHead& h = request_parser_.head();
  ++requests_;
  exchange_.response_started = false;
  decision_ = std::make_unique<Decision>();
  decision_->kind = is_connect ? ConnKind::Connect : ConnKind::Http;
  decision_->method = h.method;
  if (inspected_) return on_inspected_request(is_connect);  // authorized at the CONNECT
  if (!is_connect) decision_->url = h.target;
  if (!authorized()) return;
  if (is_connect) {
    is_connect_ = true;
    // Transparent mode: the in-jail bridge names the address CMD dialed (issue 16). Taken only
    // from unix-socket clients: the jailed command cannot open one (seccomp).
    if (const std::string* od = h.header("x-sluice-original-dst"); od != nullptr && client_info_.is_unix) {
      decision_->original_dst = od->substr(0, 64);
      // The bridge saw a TLS handshake first: a refusal may be answered inside TLS.
      const std::string* first = h.header("x-sluice-first-bytes");
      client_tls_first_ = first != nullptr && *first == "tls";
    }
    auto hp = rules::split_host_port(h.target);
    if (!hp) {
      decision_->host = h.target;
      return reply_and_close(rules::Reason::BadRequest, "sluice: bad CONNECT target: " + hp.error());
    }
    return judge_target(hp->host, hp->port);
  }
  // An upgrade (WebSocket) is judged like any request; after the origin's 101 it becomes a tunnel.
  exchange_.upgrade_requested = h.upgrade;
  auto url = parse_absolute_url(h.target);
  if (!url) return reply_and_close(rules::Reason::BadRequest, "sluice: " + url.error());
  url_ = std::move(url.value());
  judge_target(url_.host, url_.port);
}

// A listener with `auth:` wants Proxy-Authorization: Basic on every request.
bool HttpSession::authorized() {
  if (listener_config_ == nullptr || !listener_config_->auth) return true;
  const std::string* header = request_parser_.head().header("proxy-authorization");
  if (header == nullptr) {
    reply_and_close(rules::Reason::ProxyAuthRequired,
                    "sluice: this listener requires proxy credentials (Proxy-Authorization: Basic)");
    return false;
  }
  auto basic = rules::parse_basic_authorization(*header);
  if (!basic || !rules::credentials_match(*listener_config_->auth, basic->username, basic->password)) {
    reply_and_close(rules::Reason::ProxyAuthFailed, "sluice: wrong proxy credentials");
    return false;
  }
  return true;
}

void HttpSession::judge_target(const std::string& raw_host, uint16_t port) {
  state_ = State::Targeting;
  arm(TimerKind::None, 0);
  decision_->host = raw_host;
  decision_->port = port;
  auto host = rules::canonicalize_host(raw_host);
  if (!host) return reply_and_close(rules::Reason::BadHost, "sluice: " + host.error());
  host_ = std::move(host.value());
  port_ = port;
  if (!is_connect_ && refuse_misused_stand_in()) return;
  if (!is_connect_ && refuse_git_request()) return;
  TargetFlow::Target target;
  target.host = host_;
  target.port = port_;
  header_edits_.clear();
  if (!is_connect_) {
    const HttpHead& h = request_parser_.head();
    facts_ = rules::RequestFacts{h.method, h.target, url_.path, &h.headers, inspected_ ? "https" : "http"};
    target.request = &facts_;
    target.edits = &header_edits_;
    // Inside an inspected tunnel sluice speaks TLS to the origin: a parent carries it as a tunnel.
    target.use = inspected_ ? Dialer::Use::Tunnel : Dialer::Use::Forward;
  } else {
    inspector_ = worker_.inspector();
    target.can_inspect = inspector_ != nullptr;
  }
  target.before_dial = [this] { return reuse_upstream(); };
  // A judgment, and a keep-alive request on a reused upstream, finish inside start(): the
  // reads are settled once afterwards instead of stopped and restarted in the same turn
  // (libuv 1.44 spends two epoll_ctl on each restart of a stopped read).
  settling_reads_ = true;
  struct Settle {  // also when the judgment throws
    bool& flag;
    ~Settle() { flag = false; }
  } settle{settling_reads_};
  flow_.start(std::move(target), *decision_);
  settling_reads_ = false;
  // An EOF read ahead behind pipelined requests: a question nobody waits for is not asked
  // (as when the EOF arrives while asking, client_eof).
  if (state_ == State::Targeting && flow_.phase() == TargetFlow::Phase::Asking && client_side_.eof)
    return finish_after_client_eof();
  update_reading();
}

bool HttpSession::reuse_upstream() {
  std::string key = host_.text + ":" + std::to_string(port_);
  if (!is_connect_ && has_stream(Side::Upstream) && !upstream_side_.eof && upstream_key_ == key) return true;
  close_upstream();  // it served another target, or cannot carry a tunnel: gone before the next dial
  upstream_key_ = std::move(key);
  return false;
}

// ---- the flow's outcome --------------------------------------------------------

void HttpSession::on_flow(FlowOutcome& o) {
  if (state_ != State::Targeting) return;
  if (auto* r = std::get_if<flow::Refused>(&o)) return reply_and_close(r->reason, r->detail, r->cause);
  if (auto* f = std::get_if<flow::DialFailed>(&o)) return reply_and_close(f->reason, f->detail);
  if (std::holds_alternative<flow::Broken>(o)) return close_now(Termination::ProxyError);
  if (!header_edits_.empty()) rules::apply_header_edits(request_parser_.head().headers, header_edits_);
  attach_credential();  // after the scripts' edits: no script sees or removes the real secret
  if (std::holds_alternative<flow::Reused>(o)) {
    decision_->addr = upstream_addr_;
    decision_->parent = upstream_parent_;
    decision_->reused = true;
    return send_request_upstream();
  }
  std::string key = std::move(upstream_key_);
  close_upstream();
  upstream_key_ = std::move(key);
  if (inspected_ || (is_connect_ && decision_->verdict.inspect && inspector_))
    return wrap_upstream(std::move(std::get<flow::Connected>(o).stream));
  upstream_ = std::move(std::get<flow::Connected>(o).stream);
  upstream_.get()->handle.data = this;
  ++open_handles_;
  upstream_addr_ = decision_->addr;
  upstream_parent_ = decision_->parent;
  on_upstream_ready();
}

void HttpSession::on_upstream_ready() {
  if (upstream_.live() && upstream_.get()->handle.type == UV_TCP) uv_tcp_nodelay(&upstream_.get()->tcp, 1);
  upstream_side_.eof = false;
  upstream_side_.shut = false;
  if (response_parser_) response_parser_->reset();
  if (!is_connect_) return send_request_upstream();
  if (!transparent_) write(Side::Client, "HTTP/1.1 200 Connection Established\r\n\r\n", false);
  log_decision(200);
  guard_tunnel_bytes();
  start_tunnel(std::exchange(client_pending_, {}), {});
}

// From here on the relay moves the bytes; the session only waits for its end.
void HttpSession::start_tunnel(std::string to_upstream, std::string to_client) {
  // What the session gathered (the 101 head) goes out before the relay's first bytes.
  flush(Side::Client);
  flush(Side::Upstream);
  if (!unfuse_tls()) return close_now(Termination::ProxyError);
  state_ = State::Tunnelling;
  // Not now: the dialer that made this upstream may still be on the stack.
  arm(TimerKind::TunnelStarted, 0);
  // The relay takes over reads that run (no stop and restart: two epoll_ctl each in libuv
  // 1.44) and an EOF the session read ahead.
  relay_.take_over(std::exchange(client_side_.reading, false), std::exchange(upstream_side_.reading, false),
                   client_side_.eof);
  relay_.start(client_.stream(), upstream_.stream(), std::move(to_upstream), std::move(to_client),
               [this](Relay::End e) { close_now(termination_of(e)); });
}

void HttpSession::release_head_state() {
  if (state_ != State::Tunnelling) return;
  flow_.release_dialer();
  request_parser_.reset();  // the head's strings
  response_parser_ = nullptr;
  facts_ = {};
  header_edits_ = {};
  url_ = {};
  if (decision_ && decision_->logged) {
    tunnel_action_ = decision_->verdict.action;
    tunnel_reason_ = decision_->verdict.reason;
    decision_ = nullptr;
  }
  timer_.close(on_handle_closed);
}

HttpParser& HttpSession::response_parser() {
  if (!response_parser_) {
    response_parser_ = std::make_unique<HttpParser>(HttpParser::Kind::Response, 4 * config_->limits.max_header_bytes);
    response_parser_->on_body = [this](const char* d, size_t n) { response_body(d, n); };
  }
  return *response_parser_;
}

// ---- replies and the log ----------------------------------------------------

void HttpSession::reply_and_close(rules::Reason reason, const std::string& body_line, Termination why) {
  if (state_ == State::Closing) return;
  if (refuse_and_continue(reason, body_line)) return;
  if (refuse_inside_tls(reason, body_line)) return;
  if (cause_ == Termination::None) cause_ = why;
  if (!decision_) decision_ = std::make_unique<Decision>();
  decision_->error = reason;
  const int status = rules::reason_info(reason).http_status;
  log_decision(status);
  flow_.stop();
  close_upstream();
  state_ = State::Closing;
  if (transparent_ && first_kind_ != FirstBytesKind::Http) return reset_client();
  if (!exchange_.response_started) {
    std::string extra = status == 407 ? "Proxy-Authenticate: Basic realm=\"sluice\"\r\n" : "";
    write(Side::Client, error_response(status, rules::c_str(reason), body_line, extra), false);
  }
  begin_linger();
}

// A refused transparent program that does not speak HTTP sees its connection reset, as a
// firewall would do it: SO_LINGER 0, so the close sends a RST.
void HttpSession::reset_client() {
  uv_os_fd_t fd = -1;
  if (client_.live() && uv_fileno(client_.handle(), &fd) == 0) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  close_now(cause_);
}

void HttpSession::log_decision(int status) {
  if (!decision_) return;
  proxy::log_decision(worker_, client_info_, *decision_, Outcome{"status", status, status == 403});
}

}  // namespace sluice::proxy
