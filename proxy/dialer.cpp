#include "proxy/dialer.hpp"

#include "proxy/net_address.hpp"
#include "rules/resolved_check.hpp"

namespace sluice::proxy {

struct Dialer::ConnectReq {
  uv_connect_t req;
  Dialer* dialer;
  int attempt;
};

Dialer::Dialer(WorkerContext& worker, const rules::Config& config, const rules::Policy* policy,
               const rules::PolicyOverlay* overlay)
    : worker_(worker), config_(config), policy_(policy), overlay_(overlay) {}

Dialer::~Dialer() { cancel(); }

void Dialer::cancel() {
  if (resolving_) {  // the answer still on its way must find a dead token
    *alive_ = false;
    alive_ = std::make_shared<bool>(true);
    resolving_ = false;
  }
  done_ = nullptr;
  gate_ = nullptr;
  handshake_.stop();
  ++attempt_;  // a connect callback still in flight is stale
  trying_.close();
  timer_.close();
}

void Dialer::dial(const rules::CanonicalHost& host, uint16_t port, Callback done, ResolvedGate gate, Use use) {
  cancel();
  host_ = host;
  port_ = port;
  use_ = use;
  done_ = std::move(done);
  gate_ = std::move(gate);
  outcome_ = Outcome{};
  forward_via_ = nullptr;
  target_addr_.reset();
  parent_ = config_.upstream_for(policy_);
  if (parent_ && parent_->bypassed(host_, port_)) parent_ = nullptr;
  if (parent_) outcome_.parent = parent_->display();
  // The parent resolves a name itself: nothing for sluice to resolve or check.
  if (parent_ && parent_->parent_resolves() && host_.kind != rules::HostKind::Ip) return connect_parent();
  if (host_.kind == rules::HostKind::Ip) {
    ResolveResult r;
    r.ok = true;
    r.addrs.push_back(host_.addr);
    r.ms = -1;
    return on_resolved(std::move(r));
  }
  std::weak_ptr<bool> alive = alive_;
  resolving_ = true;
  worker_.resolver().resolve(host_.text, [this, alive](ResolveResult r) {
    auto a = alive.lock();
    if (!a || !*a) return;
    resolving_ = false;
    try {
      on_resolved(std::move(r));
    } catch (...) {
      fail_safely();
    }
  });
}

void Dialer::on_resolved(ResolveResult r) {
  outcome_.dns_ms = r.ms;
  if (!r.ok) return finish(Failure::DnsFailed, r.error);
  static const rules::Policy kEmpty;
  auto check = rules::check_resolved(policy_ ? *policy_ : kEmpty, config_.resolver, worker_.self_addresses(), r.addrs,
                                     port_, overlay_);
  outcome_.address_class = check.refused_class;
  candidates_ = std::move(check.dialable);
  if (candidates_.empty()) return finish(Failure::AddressDenied, "");
  if (gate_) {
    outcome_.verdict = gate_(candidates_);
    if (outcome_.verdict && !outcome_.verdict->allowed()) return finish(Failure::RefusedByRules, "");
  }
  if (parent_) {
    target_addr_ = candidates_.front();
    return connect_parent();
  }
  start_connect(port_);
}

// One connect_timeout covers everything after the target is settled: the parent's name,
// its TCP connect and its handshake.
void Dialer::start_connect(uint16_t port) {
  dial_port_ = port;
  next_ = 0;
  connect_started_ns_ = uv_hrtime();
  if (!timer_.live()) {
    timer_.init([&](uv_timer_t* t) { return uv_timer_init(worker_.loop(), t); });
    timer_.get()->data = this;
    uv_timer_start(timer_.get(), on_timeout, static_cast<uint64_t>(config_.limits.connect_timeout_ms), 0);
  }
  connect_next();
}

void Dialer::connect_parent() {
  if (auto ip = rules::IpAddr::parse(parent_->host)) {
    candidates_ = {*ip};
    return start_connect(parent_->port);
  }
  // The parent's own name is resolved like any other, but not checked: a corporate proxy
  // normally sits on a private network, and the operator named it.
  std::weak_ptr<bool> alive = alive_;
  resolving_ = true;
  worker_.resolver().resolve(parent_->host, [this, alive](ResolveResult r) {
    auto a = alive.lock();
    if (!a || !*a) return;
    resolving_ = false;
    try {
      if (!r.ok)
        return finish(Failure::ParentFailed,
                      "cannot resolve the upstream proxy " + parent_->display() + ": " + r.error);
      candidates_ = std::move(r.addrs);
      start_connect(parent_->port);
    } catch (...) {
      fail_safely();
    }
  });
}

void Dialer::connect_next() {
  if (next_ >= candidates_.size()) {
    if (parent_)
      return finish(Failure::ParentFailed,
                    "cannot connect to the upstream proxy " + parent_->display() + ": " + outcome_.error);
    return finish(Failure::ConnectFailed, outcome_.error);
  }
  const rules::IpAddr addr = candidates_[next_++];
  trying_.close();
  trying_.init([&](AnyStream* t) { return uv_tcp_init(worker_.loop(), &t->tcp); });
  trying_.get()->handle.data = this;
  sockaddr_storage ss = to_sockaddr(addr, dial_port_);
  outcome_.addr = format_sockaddr(ss);
  auto* req = new ConnectReq{{}, this, ++attempt_};
  int r = uv_tcp_connect(&req->req, &trying_.get()->tcp, reinterpret_cast<sockaddr*>(&ss), on_connect);
  if (r != 0) {
    delete req;
    outcome_.error = uv_strerror(r);
    outcome_.uv_error = r;
    connect_next();
  }
}

void Dialer::on_connect(uv_connect_t* raw, int status) {
  auto* req = reinterpret_cast<ConnectReq*>(raw);
  Dialer* d = req->dialer;
  int attempt = req->attempt;
  delete req;
  if (status == UV_ECANCELED) return;  // the handle was closed under us: `d` may be gone
  if (attempt != d->attempt_) return;
  try {
    if (status < 0) {
      d->outcome_.error = uv_strerror(status);
      d->outcome_.uv_error = status;
      return d->connect_next();
    }
    d->on_connected();
  } catch (...) {
    d->fail_safely();
  }
}

void Dialer::on_connected() {
  outcome_.connect_ms = static_cast<double>(uv_hrtime() - connect_started_ns_) / 1e6;
  if (parent_ && use_ == Use::Forward && parent_->scheme == rules::UpstreamProxy::Scheme::Http) {
    forward_via_ = parent_;
  } else if (parent_) {
    std::string name = host_.text;
    bool v6 = host_.kind == rules::HostKind::Ip && host_.addr.v6;
    std::string authority = (v6 ? "[" + name + "]" : name) + ":" + std::to_string(port_);
    std::optional<rules::IpAddr> addr = target_addr_;
    if (parent_->scheme == rules::UpstreamProxy::Scheme::Socks5h && host_.kind != rules::HostKind::Ip) addr.reset();
    return handshake_.start(trying_.stream(), *parent_, std::move(authority), std::move(name), addr, port_,
                            [this](ParentHandshake::Outcome h) { on_handshake(std::move(h)); });
  }
  outcome_.stream = std::move(trying_);
  finish(Failure::None, "");
}

void Dialer::on_handshake(ParentHandshake::Outcome h) {
  outcome_.parent_status = h.status;
  switch (h.result) {
    case ParentHandshake::Result::Ok:
      outcome_.connect_ms = static_cast<double>(uv_hrtime() - connect_started_ns_) / 1e6;
      outcome_.stream = std::move(trying_);
      return finish(Failure::None, "");
    case ParentHandshake::Result::AuthFailed: return finish(Failure::ParentAuth, h.error);
    case ParentHandshake::Result::Failed: return finish(Failure::ParentFailed, h.error);
  }
}

void Dialer::on_timeout(uv_timer_t* t) {
  auto* d = static_cast<Dialer*>(t->data);
  try {
    d->finish(d->parent_ ? Failure::ParentTimeout : Failure::ConnectTimeout, "");
  } catch (...) {
    d->fail_safely();
  }
}

// Out of memory half way: the caller must still hear of it (it reads nothing from
// its client meanwhile, so it would never notice anything else).
void Dialer::fail_safely() {
  Callback done = std::move(done_);
  cancel();
  if (!done) return;
  try {
    Outcome out;
    out.failure = Failure::ConnectFailed;
    out.error = "out of memory";
    done(out);
  } catch (...) {
  }
}

void Dialer::finish(Failure f, std::string error) {
  outcome_.failure = f;
  if (!error.empty()) outcome_.error = std::move(error);
  Callback done = std::move(done_);
  Outcome out = std::move(outcome_);
  cancel();  // closes a connect still in progress and the timer
  if (done) done(out);
}

}  // namespace sluice::proxy
