#include "proxy/socks_session.hpp"

#include "base/write.hpp"

#include "proxy/base_aliases.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/http_session.hpp"
#include "proxy/judge.hpp"
#include "proxy/net_address.hpp"
#include "proxy/ssh_disconnect.hpp"
#include "rules/credentials.hpp"

namespace sluice::proxy {

namespace {

// Early tunnel bytes held while a request waits for an answer; reading stops beyond.
constexpr size_t kMaxHeldWhileAsking = 64 * 1024;

Outcome reply_outcome(socks5::Reply r, bool denied = false) {
  return Outcome{"socks_reply", static_cast<int>(r), denied};
}

// A failed connect, in the words SOCKS has for it.
socks5::Reply connect_failure_reply(int uv_error) {
  switch (uv_error) {
    case UV_ECONNREFUSED: return socks5::Reply::ConnectionRefused;
    case UV_ENETUNREACH: return socks5::Reply::NetworkUnreachable;
    case UV_EHOSTUNREACH: return socks5::Reply::HostUnreachable;
    case UV_ETIMEDOUT: return socks5::Reply::TtlExpired;
    default: return socks5::Reply::GeneralFailure;
  }
}

// A dial failure's REP: the reason's row (rules/reason.hpp), refined by the connect error.
socks5::Reply dial_failure_reply(const flow::DialFailed& f) {
  if (f.reason == rules::Reason::ConnectFailed) return connect_failure_reply(f.uv_error);
  const uint8_t rep = rules::reason_info(f.reason).socks_reply;
  return rep != 0 ? static_cast<socks5::Reply>(rep) : socks5::Reply::GeneralFailure;  // never "succeeded"
}

}  // namespace

SocksSession::SocksSession(WorkerContext& worker, std::shared_ptr<const rules::Config> config,
                           std::shared_ptr<rules::WorkerRules> rules, ClientInfo client, UvHandle<AnyStream>&& stream,
                           std::string first_bytes)
    : worker_(worker),
      config_(std::move(config)),
      client_info_(std::move(client)),
      listener_config_(find_listener(*config_, *client_info_.listener)),
      pending_(std::move(first_bytes)),
      rules_(rules),
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
  client_ = std::move(stream);
  client_.get()->handle.data = this;
  ++open_handles_;
  timer_.open(worker_.loop(), this, on_timer, open_handles_);
  decision_.kind = ConnKind::Socks;
}

SocksSession::~SocksSession() = default;

void SocksSession::take_over_reading() {
  uv_stream_t* s = client_.stream();
  s->alloc_cb = on_alloc;
  s->read_cb = on_read;
  reading_ = true;
}

void SocksSession::start() {
  if (!pending_.empty() && pending_[0] == 0x04) return refuse_socks4();
  arm(TimerKind::HandshakeTimeout, static_cast<uint64_t>(config_->limits.header_timeout_ms));
  parse();
}

void SocksSession::refuse(const std::string&) {
  if (!pending_.empty() && pending_[0] == 0x04) return refuse_socks4();
  reply_and_close(socks5::method_reply(socks5::kMethodNone), rules::Reason::TooManyConnections,
                  Outcome{"socks_method", socks5::kMethodNone, false});
}

void SocksSession::drain() {
  if (state_ == State::Targeting && flow_.phase() == TargetFlow::Phase::Asking) {
    // Nobody will answer a stopping proxy: refuse now rather than at the drain deadline.
    flow_.stop();
    return refuse_request(socks5::Reply::GeneralFailure, rules::Reason::ShuttingDown);
  }
  bool idle = (state_ == State::Greeting || state_ == State::Authenticating || state_ == State::ReadingRequest) &&
              pending_.empty();
  if (idle) close_now(Termination::Drain);
}

// SOCKS4 and 4a are not spoken: the request is refused in SOCKS4's own words
// (VN 0, CD 91 "rejected or failed") before any more of it is read.
void SocksSession::refuse_socks4() {
  decision_.kind = ConnKind::Socks4;
  if (worker_.log().denials_enabled())
    worker_.log().denial("sluice: refused a SOCKS4 request from " + client_info_.addr +
                         ": sluice speaks SOCKS5 only (use socks5h://)");
  reply_and_close(std::string("\x00\x5b\x00\x00\x00\x00\x00\x00", 8), rules::Reason::Socks4Unsupported,
                  Outcome{"socks4_reply", 91, false});
}

// ---- reading -------------------------------------------------------------------

void SocksSession::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* s = static_cast<SocksSession*>(h->data);
  buf->base = s->worker_.buffers().get();
  buf->len = BufferPool::kBlockSize;
}

void SocksSession::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* s = static_cast<SocksSession*>(stream->data);
  base::PooledBlock block(s->worker_.buffers(), buf->base);  // back to the pool on every path
  try {
    if (nread > 0) return s->client_data(block.get(), static_cast<size_t>(nread));
    if (nread == UV_EOF) return s->client_eof();
    if (nread < 0) return s->close_now(Termination::ClientReset);
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

void SocksSession::client_data(const char* block, size_t n) {
  if (state_ == State::Closing) return;  // lingering: discarded unread
  pending_.append(block, n);
  parse();
}

void SocksSession::client_eof() {
  client_eof_ = true;
  if (state_ == State::ReadingRequest && !pending_.empty())
    return refuse_request(socks5::Reply::GeneralFailure, rules::Reason::BadRequest);
  close_now(Termination::ClientEof);
}

void SocksSession::parse() {
  while (!closed_) {
    switch (state_) {
      case State::Greeting: {
        auto g = socks5::parse_greeting(pending_);
        if (g.status == socks5::Status::NeedMore) return update_reading();
        if (g.status == socks5::Status::Error)
          return reply_and_close(socks5::method_reply(socks5::kMethodNone), rules::Reason::BadGreeting,
                                 Outcome{"socks_method", socks5::kMethodNone, false});
        pending_.erase(0, g.consumed);
        on_greeting(g);
        break;
      }
      case State::Authenticating: {
        auto u = socks5::parse_user_pass(pending_);
        if (u.status == socks5::Status::NeedMore) return update_reading();
        if (u.status == socks5::Status::Error)
          return reply_and_close(socks5::user_pass_reply(false), rules::Reason::BadAuth,
                                 Outcome{"socks_auth", 1, false});
        pending_.erase(0, u.consumed);
        on_user_pass(u);
        break;
      }
      case State::ReadingRequest: {
        auto r = socks5::parse_request(pending_);
        if (r.status == socks5::Status::NeedMore) return update_reading();
        if (r.status == socks5::Status::Error)
          return refuse_request(r.error_reply, r.error_reply == socks5::Reply::AddressTypeNotSupported
                                                   ? rules::Reason::AddressTypeNotSupported
                                                   : rules::Reason::BadRequest);
        pending_.erase(0, r.consumed);  // what remains is early tunnel data, held until the verdict
        return on_request(r);
      }
      default: return update_reading();
    }
  }
}

void SocksSession::on_greeting(const socks5::Greeting& g) {
  auto offers = [&](uint8_t m) {
    for (uint8_t x : g.methods)
      if (x == m) return true;
    return false;
  };
  const bool need_auth = listener_config_ != nullptr && listener_config_->auth.has_value();
  uint8_t method = need_auth ? socks5::kMethodUserPass : socks5::kMethodNoAuth;
  if (!offers(method))
    return reply_and_close(socks5::method_reply(socks5::kMethodNone),
                           need_auth ? rules::Reason::ProxyAuthRequired : rules::Reason::NoAcceptableMethod,
                           Outcome{"socks_method", socks5::kMethodNone, false});
  write(socks5::method_reply(method));
  state_ = need_auth ? State::Authenticating : State::ReadingRequest;
}

void SocksSession::on_user_pass(const socks5::UserPass& u) {
  if (!rules::credentials_match(*listener_config_->auth, u.username, u.password))
    return reply_and_close(socks5::user_pass_reply(false), rules::Reason::ProxyAuthFailed,
                           Outcome{"socks_auth", 1, false});
  write(socks5::user_pass_reply(true));
  state_ = State::ReadingRequest;
}

// ---- the target ------------------------------------------------------------------

void SocksSession::on_request(const socks5::Request& r) {
  state_ = State::Targeting;
  arm(TimerKind::None, 0);
  update_reading();  // nothing more is read until the verdict
  decision_.host = r.host;
  decision_.port = r.port;
  switch (r.command) {
    case static_cast<uint8_t>(socks5::Command::Connect): decision_.method = "CONNECT"; break;
    case static_cast<uint8_t>(socks5::Command::Bind): decision_.method = "BIND"; break;
    case static_cast<uint8_t>(socks5::Command::UdpAssociate): decision_.method = "UDP-ASSOCIATE"; break;
    default: decision_.method = "command-" + std::to_string(r.command);
  }
  if (r.command != static_cast<uint8_t>(socks5::Command::Connect))
    return refuse_request(socks5::Reply::CommandNotSupported, rules::Reason::CommandNotSupported);
  auto host = rules::canonicalize_host(r.host);
  if (!host) return refuse_request(socks5::Reply::GeneralFailure, rules::Reason::BadHost);
  host_ = std::move(host.value());
  port_ = r.port;
  TargetFlow::Target target;
  target.host = host_;
  target.port = port_;
  // TLS inspection over SOCKS5: port 443, or a port an inspect entry names, so ssh and other
  // protocols to an inspected host (git over ssh to github.com:22) stay opaque tunnels.
  if (const rules::Policy* p = flow_.policy(); p != nullptr && worker_.inspector() != nullptr) {
    const rules::HostPattern* named = p->inspect.match(host_, port_);
    if (const rules::GitRule* g = rules::match_git_host(p->git, host_, port_); named == nullptr && g != nullptr)
      named = g->host->match(host_, port_);  // a git rule's host with a port is inspected there too
    target.can_inspect = port_ == 443 || (named != nullptr && named->port.has_value());
  }
  flow_.start(std::move(target), decision_);
}

// The flow's outcome in SOCKS5's words: a reply code, or the tunnel.
void SocksSession::on_flow(FlowOutcome& o) {
  if (state_ != State::Targeting) return;
  if (auto* c = std::get_if<flow::Connected>(&o)) return on_connected(*c);
  if (auto* r = std::get_if<flow::Refused>(&o)) {
    if (cause_ == Termination::None) cause_ = r->cause;
    if (port_ == 22 && flow_.policy() != nullptr && flow_.policy()->ssh_in_band_reason)
      return send_in_band_reason(r->detail);
    return refuse_request(socks5::Reply::NotAllowed, r->reason);
  }
  if (auto* f = std::get_if<flow::DialFailed>(&o)) return refuse_request(dial_failure_reply(*f), f->reason);
  close_now(Termination::ProxyError);  // Broken; Reused never happens without before_dial
}

// The opt-in in-band reason: "granted", then sluice plays an ssh server that
// disconnects at once with the reason, which ssh and git print for the user.
void SocksSession::send_in_band_reason(const std::string& detail) {
  decision_.in_band_reason = true;
  std::string bytes = socks5::reply(socks5::Reply::Succeeded);
  bytes += ssh_disconnect_banner(detail);
  reply_and_close(std::move(bytes), decision_.verdict.reason, reply_outcome(socks5::Reply::Succeeded, true));
}

void SocksSession::on_connected(flow::Connected& c) {
  if (decision_.verdict.inspect) return hand_to_inspection(std::move(c.stream));
  upstream_ = std::move(c.stream);
  upstream_.get()->handle.data = this;
  ++open_handles_;
  uv_tcp_nodelay(&upstream_.get()->tcp, 1);
  // BND.ADDR is 0.0.0.0:0: a CONNECT client has no use for it, and the host's address stays private.
  write(socks5::reply(socks5::Reply::Succeeded));
  log_decision(worker_, client_info_, decision_, reply_outcome(socks5::Reply::Succeeded));
  state_ = State::Tunnelling;
  guard_tunnel_bytes();
  relay_.start(client_.stream(), upstream_.stream(), std::exchange(pending_, {}), {},
               [this](Relay::End e) { close_now(termination_of(e)); });
  arm(TimerKind::TunnelStarted, 0);  // not now: the dialer that made the upstream is on the stack
}

void SocksSession::release_head_state() {
  if (state_ != State::Tunnelling) return;
  flow_.release_dialer();
  timer_.close(on_handle_closed);
}

// An inspected target: the HTTP session's TLS path takes the client and the upstream over
// (proxy/http_session_tls.cpp), answering SOCKS5 once the upstream's certificate checked out.
void SocksSession::hand_to_inspection(UvHandle<AnyStream>&& upstream) {
  arm(TimerKind::None, 0);
  if (reading_) uv_read_stop(client_.stream());
  reading_ = false;
  flow_.stop();
  auto http = std::make_unique<HttpSession>(worker_, config_, rules_, client_info_, std::move(client_),
                                            std::exchange(pending_, {}));
  --open_handles_;  // the client is the HTTP session's now
  HttpSession* session = http.get();
  rules::CanonicalHost host = host_;
  const uint16_t port = port_;
  Decision decision = decision_;
  WorkerContext& worker = worker_;
  worker.hand_over(this, OwnedConnection(std::move(http)));  // deletes this session: no member below
  session->start_inspected_socks(std::move(host), port, std::move(decision), std::move(upstream));
}

// The credential gateway: a sandbox with stand-ins must not send one through an opaque tunnel.
void SocksSession::guard_tunnel_bytes() {
  const rules::Policy* policy = flow_.policy();
  std::vector<rules::StandIn> own;
  if (listener_config_ != nullptr && policy != nullptr)
    own = rules::stand_ins_for(listener_config_->stand_ins, policy->credentials);
  proxy::guard_tunnel_bytes(relay_, worker_, client_info_, host_, port_, std::move(own));
}

void SocksSession::update_reading() {
  if (closed_ || !client_.live()) return;
  bool want = false;
  switch (state_) {
    case State::Greeting:
    case State::Authenticating:
    case State::ReadingRequest: want = !client_eof_; break;
    case State::Targeting:  // asking: only to notice the client leaving; its bytes wait as early tunnel data
      want = flow_.phase() == TargetFlow::Phase::Asking && !client_eof_ && pending_.size() < kMaxHeldWhileAsking;
      break;
    case State::Closing: want = lingering_ && !client_eof_; break;
    case State::Tunnelling: break;  // the relay reads
  }
  if (want == reading_) return;
  reading_ = want;
  if (want)
    uv_read_start(client_.stream(), on_alloc, on_read);
  else
    uv_read_stop(client_.stream());
}

// ---- replies and closing ---------------------------------------------------------

void SocksSession::refuse_request(socks5::Reply code, rules::Reason error) {
  bool denied = code == socks5::Reply::NotAllowed;
  reply_and_close(socks5::reply(code), error, reply_outcome(code, denied));
}

void SocksSession::reply_and_close(std::string bytes, rules::Reason error, Outcome outcome) {
  if (cause_ == Termination::None) cause_ = Termination::Refused;
  if (state_ == State::Closing || closed_) return;
  decision_.error = error;
  log_decision(worker_, client_info_, decision_, outcome);
  flow_.stop();
  state_ = State::Closing;
  arm(TimerKind::None, 0);
  pending_.clear();  // bytes after a refused message are never looked at
  write(std::move(bytes));
  // FIN after the reply, then drain the client briefly so unread bytes do not
  // turn the close into a reset that destroys the reply before it is read.
  shut_ = true;
  auto* req = new uv_shutdown_t{};
  req->data = this;
  if (uv_shutdown(req, client_.stream(), on_shutdown) != 0) {
    delete req;
    return close_now(Termination::ClientReset);
  }
  update_reading();
}

void SocksSession::on_shutdown(uv_shutdown_t* req, int status) {
  auto* s = static_cast<SocksSession*>(req->data);
  delete req;
  if (status == UV_ECANCELED) return;
  try {
    if (status < 0) return s->close_now(Termination::ClientReset);
    if (s->client_eof_) return s->close_now(Termination::ClientEof);
    s->lingering_ = true;
    s->arm(TimerKind::LingerTimeout, kLingerMs);
    s->update_reading();
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

void SocksSession::write(std::string bytes) {
  if (!client_.live() || shut_) return;
  if (base::write_now(client_.stream(), std::move(bytes), {on_write, this, 0}) < 0) close_now(Termination::ClientReset);
}

void SocksSession::on_write(void* session, int, int status) {
  if (status == UV_ECANCELED) return;
  if (status < 0) static_cast<SocksSession*>(session)->close_now(Termination::ClientReset);
}

void SocksSession::close_now(Termination why) {
  if (closed_) return;
  closed_ = true;
  if (cause_ == Termination::None) cause_ = why;
  state_ = State::Closing;
  flow_.stop();
  relay_.detach();
  try {
    flow_.judge().close(relay_.bytes_up(), relay_.bytes_down(), 1, &decision_.verdict);
  } catch (...) {
    // Out of memory while accounting: the connection closes all the same.
  }
  if (client_.live()) log_close(worker_, client_info_, relay_.bytes_up(), relay_.bytes_down(), 1, cause_);
  timer_.close(on_handle_closed);
  client_.close(on_handle_closed);
  upstream_.close(on_handle_closed);
}

void SocksSession::on_handle_closed(void* data) {
  auto* s = static_cast<SocksSession*>(data);
  if (--s->open_handles_ == 0) s->worker_.connection_finished(s);
}

void SocksSession::on_timer(uv_timer_t* t) {
  auto* s = static_cast<SocksSession*>(t->data);
  try {
    switch (s->timer_.kind()) {
      case TimerKind::None: return;
      case TimerKind::HandshakeTimeout:
        s->cause_ = Termination::HeaderTimeout;
        if (s->state_ == State::ReadingRequest)
          return s->refuse_request(socks5::Reply::GeneralFailure, rules::Reason::HeaderTimeout);
        s->decision_.error = rules::Reason::HeaderTimeout;
        log_decision(s->worker_, s->client_info_, s->decision_, Outcome{"socks_method", socks5::kMethodNone, false});
        return s->close_now(Termination::HeaderTimeout);
      case TimerKind::LingerTimeout: return s->close_now(Termination::Refused);  // only a reply lingers
      case TimerKind::TunnelStarted: return s->release_head_state();
    }
  } catch (...) {
    s->close_now(Termination::ProxyError);
  }
}

}  // namespace sluice::proxy
