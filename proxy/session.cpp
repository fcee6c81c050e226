// Session lifecycle: accept, request head, judging, resolving, connecting, replies.
// Byte moving (tunnel, forward, backpressure, timers) lives in session_io.cpp.
#include "proxy/session.hpp"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cstring>

#include "proxy/buffer_pool.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/json.hpp"
#include "proxy/session_internal.hpp"
#include "rules/address_class.hpp"

namespace sluice::proxy {

const char* Session::state_name(State s) {
  switch (s) {
    case State::ReadingHead: return "reading-head";
    case State::Judging: return "judging";
    case State::Resolving: return "resolving";
    case State::Connecting: return "connecting";
    case State::Tunnelling: return "tunnelling";
    case State::Forwarding: return "forwarding";
    case State::Closing: return "closing";
  }
  return "?";
}

Session::Session(WorkerContext& worker, std::shared_ptr<const ListenerInfo> listener,
                 std::shared_ptr<const rules::Config> config)
    : worker_(worker),
      listener_(std::move(listener)),
      config_(std::move(config)),
      id_(worker.next_connection_id()),
      request_parser_(HttpParser::Kind::Request,
                      HttpParser::Limits{config_->limits.max_header_bytes, config_->limits.max_headers,
                                         config_->limits.max_request_line_bytes}),
      response_parser_(HttpParser::Kind::Response, 4 * config_->limits.max_header_bytes) {
  for (const auto& l : config_->listeners)
    if (l.name == listener_->name) policy_ = config_->policy(l.policy);
  request_parser_.on_body = [this](const char* d, size_t n) { request_body(d, n); };
  response_parser_.on_body = [this](const char* d, size_t n) { response_body(d, n); };
  timer_.init([&](uv_timer_t* t) { return uv_timer_init(worker_.loop(), t); });
  timer_.get()->data = this;
  ++open_handles_;
  started_ms_ = uv_now(worker_.loop());
  last_activity_ = started_ms_;
}

Session::~Session() { *alive_ = false; }

bool Session::accept(uv_stream_t* server, bool is_unix) {
  int r = client_.init([&](AnyStream* s) {
    return is_unix ? uv_pipe_init(worker_.loop(), &s->pipe, 0) : uv_tcp_init(worker_.loop(), &s->tcp);
  });
  if (r != 0) {
    close_now();
    return false;
  }
  client_.get()->handle.data = this;
  ++open_handles_;
  if (uv_accept(server, client_.stream()) != 0) {
    close_now();
    return false;
  }
  uv_os_fd_t fd = -1;
  uv_fileno(client_.handle(), &fd);
  if (is_unix) {
    client_addr_ = "unix";
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer_ = PeerCred{true, cred.pid, cred.uid, cred.gid};
    }
  } else {
    uv_tcp_nodelay(&client_.get()->tcp, 1);
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&client_.get()->tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
      client_addr_ = format_sockaddr(ss);
  }
  return true;
}

void Session::start() {
  arm(TimerKind::HeaderTimeout, config_->limits.header_timeout_ms);
  update_reading();
}

void Session::refuse(int status, const char* reason, const std::string& message) {
  decision_ = std::make_unique<Decision>();
  reply_and_close(status, reason, message);
}

void Session::drain() {
  draining_ = true;
  if (state_ == State::ReadingHead && client_pending_.empty() && !request_parser_.message_started()) close_now();
}

void Session::abort() { close_now(); }

// ---- judging ---------------------------------------------------------------

void Session::on_request_head(bool is_connect) {
  const HttpHead& h = request_parser_.head();
  ++requests_;
  response_started_ = false;
  decision_ = std::make_unique<Decision>();
  decision_->kind = is_connect ? "connect" : "http";
  decision_->method = h.method;
  if (is_connect) {
    is_connect_ = true;
    auto hp = rules::split_host_port(h.target);
    if (!hp) {
      decision_->host = h.target;
      return reply_and_close(400, "bad-request", "sluice: bad CONNECT target: " + hp.error());
    }
    return judge_target(hp->host, hp->port);
  }
  decision_->url = h.target;
  // An upgrade (WebSocket) is judged like any request; after the origin's 101 it becomes a tunnel.
  upgrade_requested_ = h.upgrade;
  auto url = parse_absolute_url(h.target);
  if (!url) return reply_and_close(400, "bad-request", "sluice: " + url.error());
  url_ = std::move(url.value());
  judge_target(url_.host, url_.port);
}

void Session::judge_target(const std::string& raw_host, uint16_t port) {
  state_ = State::Judging;
  arm(TimerKind::None, 0);
  decision_->host = raw_host;
  decision_->port = port;
  auto host = rules::canonicalize_host(raw_host);
  if (!host) return reply_and_close(400, "bad-host", "sluice: " + host.error());
  host_ = std::move(host.value());
  port_ = port;
  decision_->host = host_.text;
  if (policy_ == nullptr) {
    decision_->verdict = rules::Verdict{rules::Action::Deny, "no-policy", "default", ""};
    return reply_and_close(403, "no-policy", "sluice: listener has no policy; every request is denied");
  }
  decision_->verdict = policy_->judge(host_, port_);
  const rules::Verdict& v = decision_->verdict;
  if (!v.allowed()) return reply_and_close(403, v.reason.c_str(), denial_message(v, host_, port_));
  std::string key = host_.text + ":" + std::to_string(port_);
  if (!is_connect_ && upstream_.live() && !upstream_eof_ && upstream_key_ == key) {
    decision_->addr = upstream_addr_;
    decision_->reused = true;
    return send_request_upstream();
  }
  close_upstream();
  upstream_key_ = key;
  start_resolve();
}

// ---- resolving ---------------------------------------------------------------

void Session::start_resolve() {
  state_ = State::Resolving;
  if (host_.kind == rules::HostKind::Ip) {
    ResolveResult r;
    r.ok = true;
    r.addrs.push_back(host_.addr);
    return on_resolved(std::move(r));
  }
  std::weak_ptr<bool> alive = alive_;
  worker_.resolver().resolve(host_.text, [this, alive](ResolveResult r) {
    auto a = alive.lock();
    if (!a || !*a) return;
    try {
      on_resolved(std::move(r));
    } catch (...) {
      close_now();
    }
  });
}

void Session::on_resolved(ResolveResult r) {
  if (state_ != State::Resolving) return;
  decision_->dns_ms = r.ms;
  if (!r.ok)
    return reply_and_close(502, "dns-failed", "sluice: cannot resolve " + host_.text + ": " + r.error);
  candidates_ = dialable(r.addrs);
  if (candidates_.empty()) {
    std::string cls = decision_->address_class;
    return reply_and_close(403, "resolved-address-denied",
                           "sluice: " + host_.text + " resolves only to " + cls +
                               " addresses, which sluice does not dial; list the address or range in the allow list "
                               "if you mean to reach it");
  }
  next_candidate_ = 0;
  state_ = State::Connecting;
  connect_started_ns_ = uv_hrtime();
  arm(TimerKind::ConnectTimeout, config_->limits.connect_timeout_ms);
  connect_next();
}

// The resolved-address check: DNS may answer an allowed name with an address
// inside this host, its network or a metadata service (rebinding). An address
// listed in the deny list is dropped; one listed in the allow list is an
// explicit choice and kept; the rest must pass the address classes.
std::vector<rules::IpAddr> Session::dialable(const std::vector<rules::IpAddr>& addrs) {
  std::vector<rules::IpAddr> out;
  const auto& rc = config_->resolver;
  for (const auto& a : addrs) {
    rules::CanonicalHost as_host{rules::HostKind::Ip, a.to_string(), a};
    if (policy_->deny.match(as_host, port_) != nullptr) {
      if (decision_->address_class.empty()) decision_->address_class = "deny-listed";
      continue;
    }
    if (policy_->allow.match(as_host, port_) != nullptr || !rc.check_addresses) {
      out.push_back(a);
      continue;
    }
    if (auto why = rules::refuse_address(a, rc.allow_private, rc.deny_cidrs, worker_.self_addresses())) {
      if (decision_->address_class.empty()) decision_->address_class = rules::to_string(*why);
      continue;
    }
    out.push_back(a);
  }
  return out;
}

// ---- connecting --------------------------------------------------------------

struct ConnectReq {
  uv_connect_t req;
  Session* session;
  int attempt;
};

void Session::connect_next() {
  if (next_candidate_ >= candidates_.size()) {
    return reply_and_close(502, "connect-failed",
                           "sluice: cannot connect to " + host_port_text(host_, port_) + ": " + last_connect_error_);
  }
  const rules::IpAddr addr = candidates_[next_candidate_++];
  std::string key = std::move(upstream_key_);
  close_upstream();
  upstream_key_ = std::move(key);
  upstream_.init([&](uv_tcp_t* t) { return uv_tcp_init(worker_.loop(), t); });
  upstream_.get()->data = this;
  ++open_handles_;
  sockaddr_storage ss = to_sockaddr(addr, port_);
  upstream_addr_ = format_sockaddr(ss);
  decision_->addr = upstream_addr_;
  auto* req = new ConnectReq{{}, this, ++connect_attempt_};
  int r = uv_tcp_connect(&req->req, upstream_.get(), reinterpret_cast<sockaddr*>(&ss), on_connect);
  if (r != 0) {
    delete req;
    last_connect_error_ = uv_strerror(r);
    connect_next();
  }
}

void Session::on_connect(uv_connect_t* raw, int status) {
  auto* req = reinterpret_cast<ConnectReq*>(raw);
  Session* s = req->session;
  int attempt = req->attempt;
  delete req;
  if (status == UV_ECANCELED) return;  // the handle was closed under us
  try {
    if (s->state_ != State::Connecting || attempt != s->connect_attempt_) return;
    if (status < 0) {
      s->last_connect_error_ = uv_strerror(status);
      return s->connect_next();
    }
    s->on_upstream_ready();
  } catch (...) {
    s->close_now();
  }
}

void Session::on_upstream_ready() {
  decision_->connect_ms = static_cast<double>(uv_hrtime() - connect_started_ns_) / 1e6;
  uv_tcp_nodelay(upstream_.get(), 1);
  upstream_eof_ = false;
  upstream_shut_ = false;
  response_parser_.reset();
  if (!is_connect_) return send_request_upstream();
  state_ = State::Tunnelling;
  last_activity_ = uv_now(worker_.loop());
  arm(TimerKind::IdleTimeout, config_->limits.idle_timeout_ms);
  write(Side::Client, "HTTP/1.1 200 Connection Established\r\n\r\n", nullptr, 0, false);
  log_decision(200);
  if (!client_pending_.empty()) write(Side::Upstream, std::exchange(client_pending_, {}));
  update_reading();
}

// ---- replies and the log ----------------------------------------------------

void Session::reply_and_close(int status, const char* reason, const std::string& body_line) {
  if (state_ == State::Closing) return;
  if (!decision_) decision_ = std::make_unique<Decision>();
  decision_->error = reason;
  log_decision(status);
  close_upstream();
  state_ = State::Closing;
  if (!response_started_) write(Side::Client, error_response(status, reason, body_line), nullptr, 0, false);
  begin_linger();
}

void Session::log_decision(int status) {
  if (!decision_ || decision_->logged) return;
  decision_->logged = true;
  const Decision& d = *decision_;
  if (status == 403 && worker_.log().denials_enabled()) {
    std::string target = d.host.empty() ? "?" : d.host;
    if (d.port != 0) target += ":" + std::to_string(d.port);
    worker_.log().denial("sluice: denied " + target + " (" + (d.error.empty() ? d.verdict.reason : d.error) +
                         (d.verdict.rule.empty() || d.verdict.rule == "default" ? "" : ", rule \"" + d.verdict.rule + "\"") +
                         ")");
  }
  if (!worker_.log().enabled()) return;
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "decision").num("conn", static_cast<int64_t>(id_));
  j.str("listener", listener_->name);
  if (peer_.known) {
    JsonLine p;
    p.num("pid", peer_.pid).num("uid", peer_.uid).num("gid", peer_.gid);
    j.raw("peer", p.done());
  }
  j.str("client", client_addr_);
  if (!d.kind.empty()) j.str("kind", d.kind);
  if (!d.method.empty()) j.str("method", d.method);
  if (!d.host.empty()) j.str("host", d.host);
  if (d.port != 0) j.num("port", d.port);
  if (!d.url.empty()) j.str("url", d.url);
  if (!d.verdict.reason.empty()) {
    j.str("verdict", rules::to_string(d.verdict.action)).str("reason", d.verdict.reason);
    j.str("rule", d.verdict.rule).str("policy", d.verdict.policy);
  } else {
    j.str("verdict", "deny");
  }
  if (!d.error.empty()) j.str("error", d.error);
  if (!d.addr.empty()) j.str("addr", d.addr);
  if (!d.address_class.empty()) j.str("address_class", d.address_class);
  if (!d.host_replaced.empty()) j.str("host_replaced", d.host_replaced);
  if (d.reused) j.boolean("reused", true);
  if (d.dns_ms >= 0) j.real("dns_ms", d.dns_ms);
  if (d.connect_ms >= 0) j.real("connect_ms", d.connect_ms);
  j.num("status", status);
  worker_.log().write(j.done());
}

void Session::log_close() {
  if (!client_.live() || !worker_.log().enabled()) return;
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "close").num("conn", static_cast<int64_t>(id_));
  j.str("listener", listener_->name);
  j.num("bytes_up", static_cast<int64_t>(bytes_up_)).num("bytes_down", static_cast<int64_t>(bytes_down_));
  j.num("duration_ms", static_cast<int64_t>(uv_now(worker_.loop()) - started_ms_));
  j.num("requests", static_cast<int64_t>(requests_));
  worker_.log().write(j.done());
}

}  // namespace sluice::proxy
