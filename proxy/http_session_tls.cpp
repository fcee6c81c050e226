// HTTP session, TLS inspection (docs/tls.md): the upstream handshake before the 200, the
// client's handshake against a leaf for the CONNECT host, and the requests inside, pinned
// to that host. The bytes themselves move through proxy/tls_pump.hpp: attached, the
// session reads and writes plaintext through the pumps (no socket in between); an
// upgrade's relay gets the pumps' socketpairs (unfuse_tls).
#include <charconv>

#include "proxy/decision_log.hpp"
#include "proxy/http_session.hpp"
#include "proxy/http_session_internal.hpp"
#include "proxy/json.hpp"
#include "proxy/socks5.hpp"
#include "tls/inspector.hpp"

namespace sluice::proxy {

namespace {
constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";
}  // namespace

// A new upstream connection for an inspected tunnel: its TLS handshake first, verified
// against the tunnel's host (tls/engine.hpp).
void HttpSession::wrap_upstream(UvHandle<AnyStream>&& tcp) {
  upstream_addr_ = decision_->addr;
  upstream_parent_ = decision_->parent;
  if (tcp.get()->handle.type == UV_TCP) uv_tcp_nodelay(&tcp.get()->tcp, 1);
  pump_ =
      TlsPump::start(worker_, std::move(tcp), inspector_->upstream_engine(host_.text, port_), TlsPump::Role::Client, {},
                     {}, static_cast<uint64_t>(config_->limits.connect_timeout_ms), [this](TlsPump::Handshake& h) {
                       try {
                         on_upstream_tls(h);
                       } catch (...) {
                         close_now(Termination::ProxyError);
                       }
                     });
}

void HttpSession::start_inspected_socks(rules::CanonicalHost host, uint16_t port, Decision decision,
                                        UvHandle<AnyStream>&& upstream) {
  socks_ = true;
  is_connect_ = true;
  state_ = State::Targeting;
  requests_ = 1;
  host_ = std::move(host);
  port_ = port;
  decision_ = std::make_unique<Decision>(std::move(decision));
  inspector_ = worker_.inspector();
  upstream_key_ = host_.text + ":" + std::to_string(port_);
  if (!inspector_) return close_now(Termination::ProxyError);  // a reload removed the CA in between
  wrap_upstream(std::move(upstream));
}

void HttpSession::on_upstream_tls(TlsPump::Handshake& h) {
  TlsPump* pump = std::exchange(pump_, nullptr);
  // Every line from here on says whether this upstream's handshake resumed (never a failed one).
  tls_resumed_ = decision_->tls_resumed = h.resumed;
  if (!h.ok && socks_ && is_connect_) {  // SOCKS5 has no body for the reason: the log has it
    decision_->tls_error = h.error;
    decision_->error = rules::Reason::UpstreamTlsFailed;
    proxy::log_decision(worker_, client_info_, *decision_,
                        Outcome{"socks_reply", static_cast<int>(socks5::Reply::GeneralFailure), false});
    if (cause_ == Termination::None) cause_ = Termination::Refused;
    write(Side::Client, socks5::reply(socks5::Reply::GeneralFailure), false);
    return begin_linger();
  }
  if (!h.ok) {
    decision_->tls_error = h.error;
    return reply_and_close(rules::Reason::UpstreamTlsFailed,
                           "sluice: TLS to " + host_port_text(host_, port_) + " failed: " + h.error);
  }
  tls_[1] = pump;
  pump->attach({on_tls_event, this, 1});
  if (is_connect_) return start_client_tls();
  on_upstream_ready();
}

bool HttpSession::refuse_inside_tls(rules::Reason reason, const std::string& body_line) {
  if (!is_connect_ || inspected_ || socks_ || state_ != State::Targeting || exchange_.response_started ||
      decision_ == nullptr || decision_->original_dst.empty() || !client_tls_first_ || !inspector_ ||
      flow_.policy() == nullptr || rules::reason_info(reason).http_status != 403 ||
      !flow_.policy()->inspects(host_, port_))
    return false;
  decision_->error = reason;
  log_decision(403);  // the connection's refusal; the request inside is logged when it comes
  flow_.stop();
  close_upstream();
  refusal_inside_.emplace(reason, body_line);
  refusal_verdict_ = decision_->verdict;
  start_client_tls();
  return true;
}

// The upstream is verified: the client gets its 200 and then talks TLS to sluice's leaf.
// (Or, refusal_inside_: there is no upstream, and every request inside gets the refusal.)
void HttpSession::start_client_tls() {
  auto leaf = inspector_->leaf(host_.text);
  if (!leaf) {
    refusal_inside_.reset();
    return reply_and_close(rules::Reason::UpstreamTlsFailed, "sluice: cannot mint a certificate for " + host_.text);
  }
  decision_->inspected = true;
  if (refusal_inside_) {
    // Logged as refused already.
  } else if (socks_) {
    proxy::log_decision(worker_, client_info_, *decision_, Outcome{"socks_reply", 0, false});
  } else {
    log_decision(200);
  }
  if (client_side_.reading) uv_read_stop(client_.stream());
  client_side_.reading = false;
  // The client's socket goes to the pump; bytes already read after the CONNECT are its
  // ClientHello (or the proof that it is not TLS).
  std::string raw_first = std::exchange(corked_[0], {});
  if (!transparent_) raw_first += socks_ ? socks5::reply(socks5::Reply::Succeeded) : std::string(kEstablished);
  UvHandle<AnyStream> raw = std::move(client_);
  --open_handles_;  // its close callback is the pump's now
  client_handed_ = true;
  pump_ = TlsPump::start(worker_, std::move(raw), inspector_->server_engine(*leaf), TlsPump::Role::Server,
                         std::move(raw_first), std::exchange(client_pending_, {}),
                         static_cast<uint64_t>(config_->limits.header_timeout_ms), [this](TlsPump::Handshake& h) {
                           try {
                             on_client_tls(h);
                           } catch (...) {
                             close_now(Termination::ProxyError);
                           }
                         });
}

void HttpSession::on_client_tls(TlsPump::Handshake& h) {
  TlsPump* pump = std::exchange(pump_, nullptr);
  // A name other than the tunnel's: refused whether or not the client then accepted the leaf
  // (it usually rejects it, the leaf being for the CONNECT host).
  if (!h.sni.empty() && !pinned_host(h.sni, port_)) {
    h.error = "the ClientHello names " + h.sni + ", the tunnel is for " + host_.text;
    log_tls_failure(rules::Reason::HostMismatch, h);
    if (h.ok) pump->abort();
    return close_now(Termination::TlsFailed);
  }
  if (!h.ok) {
    log_tls_failure(h.not_tls ? rules::Reason::NotTls : rules::Reason::ClientTlsFailed, h);
    return close_now(Termination::TlsFailed);  // the pump closes the client's socket itself
  }
  tls_[0] = pump;
  pump->attach({on_tls_event, this, 0});
  inspected_ = true;
  is_connect_ = false;  // from here on, requests
  state_ = State::ReadingHead;
  request_parser_.reset();
  exchange_ = {};
  arm(TimerKind::HeaderTimeout, config_->limits.header_timeout_ms);
  update_reading();
}

void HttpSession::on_tls_event(void* session, int side, TlsPump::Event e, const char* data, size_t n) {
  auto* s = static_cast<HttpSession*>(session);
  const bool client = side == 0;
  try {
    switch (e) {
      case TlsPump::Event::Data:
        s->cork();
        if (client)
          s->client_data(data, n);
        else
          s->upstream_data(data, n);
        return s->uncork();
      case TlsPump::Event::Eof: return client ? s->client_eof() : s->upstream_eof();
      case TlsPump::Event::Reset: return client ? s->close_now(Termination::ClientReset) : s->upstream_reset();
      case TlsPump::Event::Wrote: return s->update_reading();
      case TlsPump::Event::ShutDone: return s->on_shutdown_done(client ? Side::Client : Side::Upstream);
    }
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

bool HttpSession::unfuse_tls() {
  for (int i = 0; i < 2; ++i) {
    if (tls_[i] == nullptr) continue;
    SideState& side = i == 0 ? client_side_ : upstream_side_;
    tls_[i]->set_reading(false);
    side.reading = false;
    std::string error;
    UvHandle<AnyStream> plain = std::exchange(tls_[i], nullptr)->open_plaintext(error);
    if (!plain.live()) return false;  // the pump is gone
    plain.get()->handle.data = this;
    ++open_handles_;
    (i == 0 ? client_ : upstream_) = std::move(plain);
  }
  return true;
}

// "host", "host:port" or "[v6]:port" naming the tunnel's own host and port.
bool HttpSession::pinned_host(std::string_view authority, uint16_t default_port) const {
  auto a = rules::split_authority(authority, false);
  if (!a) return false;
  uint16_t port = default_port;
  if (a->has_port) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(a->port.data(), a->port.data() + a->port.size(), v);
    if (ec != std::errc{} || p != a->port.data() + a->port.size() || v == 0 || v > 65535) return false;
    port = static_cast<uint16_t>(v);
  }
  auto host = rules::canonicalize_host(a->host);
  return host && host->text == host_.text && port == port_;
}

// A request that arrived decrypted. It may only be for the tunnel's host: anything else
// would let an allowed CONNECT carry requests for a host the policy never judged.
void HttpSession::on_inspected_request(bool is_connect) {
  const HttpHead& h = request_parser_.head();
  decision_->kind = ConnKind::Http;
  decision_->inspected = true;
  decision_->tls_resumed = tls_resumed_;
  decision_->host = host_.text;
  decision_->port = port_;
  if (is_connect) return reply_and_close(rules::Reason::BadRequest, "sluice: CONNECT inside an inspected HTTPS tunnel");
  auto url = parse_inspected_target(h.target);
  if (!url) return reply_and_close(rules::Reason::BadRequest, "sluice: " + url.error());
  const std::string tunnel = host_port_text(host_, port_);
  if (!url->host.empty()) {
    std::string authority = url->host.find(':') != std::string::npos ? "[" + url->host + "]" : url->host;
    if (!pinned_host(authority + ":" + std::to_string(url->port), port_))
      return reply_and_close(rules::Reason::HostMismatch,
                             "sluice: this tunnel is for " + tunnel + "; the request names " + url->host);
  }
  if (const std::string* host_header = h.header("host"); host_header != nullptr && !pinned_host(*host_header, 443))
    return reply_and_close(rules::Reason::HostMismatch,
                           "sluice: this tunnel is for " + tunnel + "; the Host header names " + *host_header);
  url->host = host_.text;
  url->port = port_;
  url->port_explicit = port_ != 443;
  url_ = std::move(url.value());
  std::string authority = host_.kind == rules::HostKind::Ip && host_.addr.v6 ? "[" + host_.text + "]" : host_.text;
  if (url_.port_explicit) authority += ":" + std::to_string(port_);
  decision_->url = "https://" + authority + url_.path;
  exchange_.upgrade_requested = h.upgrade;
  if (refusal_inside_) {
    decision_->verdict = refusal_verdict_;
    state_ = State::Targeting;  // as if judged: refuse_and_continue may keep the connection
    return reply_and_close(refusal_inside_->first, refusal_inside_->second);
  }
  judge_target(host_.text, port_);
}

bool HttpSession::refuse_and_continue(rules::Reason reason, const std::string& body_line) {
  const HttpHead& h = request_parser_.head();
  const bool bodiless = !h.chunked && (!h.has_content_length || h.content_length == 0);
  if (!inspected_ || state_ != State::Targeting || !bodiless || !h.keep_alive || h.upgrade || draining_ ||
      (client_side_.eof && client_pending_.empty()))  // an EOF read ahead behind pipelined requests
    return false;
  decision_->error = reason;
  const int status = rules::reason_info(reason).http_status;
  log_decision(status);
  flow_.stop();
  write(Side::Client, error_response(status, rules::c_str(reason), body_line, {}, false), false);
  // The request ends (llhttp reports its end once resumed); the next one may follow.
  state_ = State::ReadingHead;
  exchange_ = {};
  exchange_.response_started = true;  // request_done() must not wait for a response
  request_parser_.resume();
  arm(TimerKind::KeepAliveTimeout, static_cast<uint64_t>(config_->limits.keepalive_timeout_ms));
  parse_client(true);
  return true;
}

void HttpSession::log_tls_failure(rules::Reason reason, const TlsPump::Handshake& h) {
  if (!worker_.log().wanted()) return;
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "tls").num("conn", static_cast<int64_t>(client_info_.id));
  j.str("listener", client_info_.listener->name).str("client", client_info_.addr);
  j.str("host", host_.text).num("port", port_).str("reason", rules::c_str(reason));
  if (!h.alert.empty()) j.str("alert", h.alert);
  if (!h.sni.empty()) j.str("sni", h.sni);
  if (!h.error.empty()) j.str("error", h.error);
  worker_.log().write(j.done());
}

}  // namespace sluice::proxy
