// HTTP session lifecycle: request head, authorization, judging, dialing, replies.
// Byte moving (forwarding, backpressure, timers, closing) lives in session_io.cpp.
#include "proxy/http_session.hpp"

#include "proxy/base_aliases.hpp"
#include "proxy/judge.hpp"
#include "proxy/http_session_internal.hpp"
#include "rules/credentials.hpp"

namespace sluice::proxy {

namespace {
const rules::ListenerConfig* find_listener(const rules::Config& c, const std::string& name) {
  for (const auto& l : c.listeners)
    if (l.name == name) return &l;
  return nullptr;
}
}  // namespace

HttpSession::HttpSession(WorkerContext& worker, std::shared_ptr<const rules::Config> config,
                 std::shared_ptr<rules::WorkerRules> rules, ClientInfo client, UvHandle<AnyStream>&& stream,
                 std::string first_bytes)
    : worker_(worker),
      config_(std::move(config)),
      client_info_(std::move(client)),
      listener_config_(find_listener(*config_, client_info_.listener->name)),
      judge_(worker, client_info_, listener_config_ ? config_->policy(listener_config_->policy) : nullptr,
             std::move(rules), config_->remembered.get()),
      request_parser_(HttpParser::Kind::Request,
                      HttpParser::Limits{config_->limits.max_header_bytes, config_->limits.max_headers,
                                         config_->limits.max_request_line_bytes}),
      response_parser_(HttpParser::Kind::Response, 4 * config_->limits.max_header_bytes),
      dialer_(worker, *config_, listener_config_ ? config_->policy(listener_config_->policy) : nullptr),
      relay_(worker.loop(), worker.buffers(), static_cast<uint64_t>(config_->limits.tunnel_idle_timeout_ms)) {
  if (listener_config_ != nullptr) policy_ = config_->policy(listener_config_->policy);
  request_parser_.on_body = [this](const char* d, size_t n) { request_body(d, n); };
  response_parser_.on_body = [this](const char* d, size_t n) { response_body(d, n); };
  client_ = std::move(stream);
  client_.get()->handle.data = this;
  ++open_handles_;
  timer_.init([&](uv_timer_t* t) { return uv_timer_init(worker_.loop(), t); });
  timer_.get()->data = this;
  ++open_handles_;
  last_activity_ = uv_now(worker_.loop());
  client_pending_ = std::move(first_bytes);
  got_bytes_ = !client_pending_.empty();
}

HttpSession::~HttpSession() = default;

void HttpSession::start() {
  arm(TimerKind::HeaderTimeout, config_->limits.header_timeout_ms);
  parse_client();
}

void HttpSession::refuse(rules::Reason reason, const std::string& message) {
  decision_ = std::make_unique<Decision>();
  reply_and_close(reason, message);
}

void HttpSession::drain() {
  draining_ = true;
  if (state_ == State::ReadingHead && client_pending_.empty() && !request_parser_.message_started())
    close_now(Termination::Drain);
  if (state_ == State::Asking) {
    // Nobody will answer a stopping proxy: refuse now rather than at the drain deadline.
    stop_asking(false);
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
  if (!is_connect) decision_->url = h.target;
  if (!authorized()) return;
  if (is_connect) {
    is_connect_ = true;
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
  state_ = State::Judging;
  arm(TimerKind::None, 0);
  decision_->host = raw_host;
  decision_->port = port;
  auto host = rules::canonicalize_host(raw_host);
  if (!host) return reply_and_close(rules::Reason::BadHost, "sluice: " + host.error());
  host_ = std::move(host.value());
  port_ = port;
  decision_->host = host_.text;
  // The whole judgment order lives in rules/judge.hpp: deny entries, Lua, allow entries, default.
  if (is_connect_) {
    decision_->verdict = judge_.connect(to_string(decision_->kind), host_, port_);
  } else {
    const HttpHead& h = request_parser_.head();
    rules::RequestFacts facts{h.method, h.target, url_.path, &h.headers};
    header_edits_.clear();
    decision_->verdict = judge_.request(host_, port_, facts, &header_edits_);
  }
  if (decision_->verdict.action == rules::Action::Ask) return ask();
  act_on_verdict();
}

// ---- asking ------------------------------------------------------------------

void HttpSession::ask() {
  state_ = State::Asking;
  AskRequest r{decision_->verdict.policy, client_info_.listener->name, to_string(decision_->kind), host_.text, port_,
               client_info_.id, client_info_.addr, client_info_.peer};
  ask_ticket_ = worker_.ask(r, [this](const AskAnswer& a) {
    try {
      on_answer(a);
    } catch (...) {
      close_now(Termination::ProxyError);
    }
  }, &decision_->question);
  if (ask_ticket_ == 0) {
    decision_->verdict.action = rules::Action::Deny;
    decision_->verdict.reason = rules::Reason::AskUnavailable;
    return act_on_verdict();
  }
  ask_started_ms_ = uv_now(worker_.loop());
  arm(TimerKind::AskTimeout, static_cast<uint64_t>(config_->limits.ask_timeout_ms));
  update_reading();  // only to notice the client going away; nothing is parsed meanwhile
}

void HttpSession::on_answer(const AskAnswer& a) {
  if (state_ != State::Asking) return;
  ask_ticket_ = 0;
  arm(TimerKind::None, 0);
  rules::Verdict human = decision_->verdict;
  human.action = a.action;
  const bool earlier = a.by == "remembered";
  if (a.action == rules::Action::Allow) human.reason = earlier ? rules::Reason::RememberedAllow : rules::Reason::AskAllowed;
  else human.reason = earlier ? rules::Reason::RememberedDeny : rules::Reason::AskDenied;
  human.rule = rules::to_string(a.remember);
  human.error.clear();
  if (a.question != 0) decision_->question = a.question;
  decision_->ask_ms = static_cast<double>(uv_now(worker_.loop()) - ask_started_ms_);
  // The answer stands for this target; a plain-HTTP request still meets on_request.
  if (is_connect_) {
    decision_->verdict = judge_.answered(host_, port_, human, nullptr, nullptr);
  } else {
    const HttpHead& h = request_parser_.head();
    rules::RequestFacts facts{h.method, h.target, url_.path, &h.headers};
    header_edits_.clear();
    decision_->verdict = judge_.answered(host_, port_, human, &facts, &header_edits_);
  }
  act_on_verdict();
}

void HttpSession::on_ask_timeout() {
  if (state_ != State::Asking) return;
  stop_asking(true);
  cause_ = Termination::AskTimeout;
  decision_->verdict.action = rules::Action::Deny;
  decision_->verdict.reason = rules::Reason::AskTimeout;
  decision_->ask_ms = static_cast<double>(uv_now(worker_.loop()) - ask_started_ms_);
  act_on_verdict();
}

void HttpSession::stop_asking(bool timeout) {
  if (ask_ticket_ != 0) worker_.cancel_ask(std::exchange(ask_ticket_, 0), timeout);
}

// ---- after the verdict ---------------------------------------------------------

void HttpSession::act_on_verdict() {
  const rules::Verdict& v = decision_->verdict;
  if (!v.allowed()) return reply_and_close(v.reason, denial_message(v, host_, port_));
  if (!header_edits_.empty()) rules::apply_header_edits(request_parser_.head().headers, header_edits_);
  std::string key = host_.text + ":" + std::to_string(port_);
  if (!is_connect_ && upstream_.live() && !upstream_side_.eof && upstream_key_ == key) {
    decision_->addr = upstream_addr_;
    decision_->reused = true;
    return send_request_upstream();
  }
  close_upstream();
  upstream_key_ = key;
  state_ = State::Dialing;
  dialer_.dial(
      host_, port_,
      [this](Dialer::Outcome& o) {
        try {
          on_dialed(o);
        } catch (...) {
          close_now(Termination::ProxyError);
        }
      },
      [this](const std::vector<rules::IpAddr>& addrs) { return judge_.resolved(addrs); },
      is_connect_ ? Dialer::Use::Tunnel : Dialer::Use::Forward);
}

// ---- dialing -----------------------------------------------------------------

void HttpSession::on_dialed(Dialer::Outcome& o) {
  if (state_ != State::Dialing) return;
  decision_->dns_ms = o.dns_ms;
  decision_->connect_ms = o.connect_ms;
  decision_->addr = o.addr;
  decision_->address_class = o.address_class;
  if (o.verdict) decision_->verdict = *o.verdict;  // on_resolved spoke
  const std::string target = host_port_text(host_, port_);
  switch (o.failure) {
    case Dialer::Failure::DnsFailed:
      return reply_and_close(rules::Reason::DnsFailed, "sluice: cannot resolve " + host_.text + ": " + o.error);
    case Dialer::Failure::AddressDenied:
      return reply_and_close(rules::Reason::ResolvedAddressDenied,
                             "sluice: " + host_.text + " resolves only to " + o.address_class +
                                 " addresses, which sluice does not dial; list the address or range in the allow "
                                 "list if you mean to reach it");
    case Dialer::Failure::RefusedByRules:
      return reply_and_close(decision_->verdict.reason, denial_message(decision_->verdict, host_, port_));
    case Dialer::Failure::ConnectFailed:
      return reply_and_close(rules::Reason::ConnectFailed, "sluice: cannot connect to " + target + ": " + o.error);
    case Dialer::Failure::ConnectTimeout:
      return reply_and_close(rules::Reason::ConnectTimeout,
                             "sluice: connecting to " + target + " timed out after " +
                                 std::to_string(config_->limits.connect_timeout_ms) + " ms");
    case Dialer::Failure::ParentFailed:
      return reply_and_close(rules::Reason::UpstreamProxyFailed, "sluice: upstream proxy failed for " + target + ": " + o.error);
    case Dialer::Failure::ParentAuth:
      return reply_and_close(rules::Reason::UpstreamProxyAuth,
                             "sluice: the upstream proxy refused sluice's credentials for " + target + ": " + o.error);
    case Dialer::Failure::ParentTimeout:
      return reply_and_close(rules::Reason::UpstreamProxyTimeout,
                             "sluice: the upstream proxy " + o.parent + " did not connect " + target + " within " +
                                 std::to_string(config_->limits.connect_timeout_ms) + " ms");
    case Dialer::Failure::None:
      break;
  }
  std::string key = std::move(upstream_key_);
  close_upstream();
  upstream_key_ = std::move(key);
  upstream_ = std::move(o.stream);
  upstream_.get()->data = this;
  ++open_handles_;
  upstream_addr_ = o.addr;
  on_upstream_ready();
}

void HttpSession::on_upstream_ready() {
  uv_tcp_nodelay(upstream_.get(), 1);
  upstream_side_.eof = false;
  upstream_side_.shut = false;
  response_parser_.reset();
  if (!is_connect_) return send_request_upstream();
  write(Side::Client, "HTTP/1.1 200 Connection Established\r\n\r\n", nullptr, 0, false);
  log_decision(200);
  start_tunnel(std::exchange(client_pending_, {}), {});
}

// From here on the relay moves the bytes; the session only waits for its end.
void HttpSession::start_tunnel(std::string to_upstream, std::string to_client) {
  // What the session gathered (the 101 head) goes out before the relay's first bytes.
  flush(Side::Client);
  flush(Side::Upstream);
  state_ = State::Tunnelling;
  arm(TimerKind::None, 0);
  for (auto [h, reading] : {std::pair{client_.stream(), &client_side_.reading}, std::pair{upstream_.stream(), &upstream_side_.reading}}) {
    if (*reading) uv_read_stop(h);
    *reading = false;
  }
  relay_.start(client_.stream(), upstream_.stream(), std::move(to_upstream), std::move(to_client),
               [this](Relay::End e) { close_now(termination_of(e)); });
}

// ---- replies and the log ----------------------------------------------------

void HttpSession::reply_and_close(rules::Reason reason, const std::string& body_line, Termination why) {
  if (state_ == State::Closing) return;
  if (cause_ == Termination::None) cause_ = why;
  if (!decision_) decision_ = std::make_unique<Decision>();
  decision_->error = reason;
  const int status = rules::reason_info(reason).http_status;
  log_decision(status);
  dialer_.cancel();
  close_upstream();
  state_ = State::Closing;
  if (!exchange_.response_started) {
    std::string extra = status == 407 ? "Proxy-Authenticate: Basic realm=\"sluice\"\r\n" : "";
    write(Side::Client, error_response(status, rules::c_str(reason), body_line, extra), nullptr, 0, false);
  }
  begin_linger();
}

void HttpSession::log_decision(int status) {
  if (!decision_) return;
  proxy::log_decision(worker_, client_info_, *decision_, Outcome{"status", status, status == 403});
}

}  // namespace sluice::proxy
