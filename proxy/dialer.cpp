#include "proxy/dialer.hpp"

#include "proxy/net_address.hpp"
#include "rules/resolved_check.hpp"

namespace sluice::proxy {

struct Dialer::ConnectReq {
  uv_connect_t req;
  Dialer* dialer;
  int attempt;
};

Dialer::Dialer(WorkerContext& worker, const rules::Config& config, const rules::Policy* policy)
    : worker_(worker), config_(config), policy_(policy) {}

Dialer::~Dialer() { cancel(); }

void Dialer::cancel() {
  if (resolving_) {  // the answer still on its way must find a dead token
    *alive_ = false;
    alive_ = std::make_shared<bool>(true);
    resolving_ = false;
  }
  done_ = nullptr;
  gate_ = nullptr;
  ++attempt_;  // a connect callback still in flight is stale
  trying_.close();
  timer_.close();
}

void Dialer::dial(const rules::CanonicalHost& host, uint16_t port, Callback done, ResolvedGate gate) {
  cancel();
  host_ = host;
  port_ = port;
  done_ = std::move(done);
  gate_ = std::move(gate);
  outcome_ = Outcome{};
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
                                     port_);
  outcome_.address_class = check.refused_class;
  candidates_ = std::move(check.dialable);
  if (candidates_.empty()) return finish(Failure::AddressDenied, "");
  if (gate_) {
    outcome_.verdict = gate_(candidates_);
    if (outcome_.verdict && !outcome_.verdict->allowed()) return finish(Failure::RefusedByRules, "");
  }
  next_ = 0;
  connect_started_ns_ = uv_hrtime();
  timer_.init([&](uv_timer_t* t) { return uv_timer_init(worker_.loop(), t); });
  timer_.get()->data = this;
  uv_timer_start(timer_.get(), on_timeout, static_cast<uint64_t>(config_.limits.connect_timeout_ms), 0);
  connect_next();
}

void Dialer::connect_next() {
  if (next_ >= candidates_.size()) return finish(Failure::ConnectFailed, outcome_.error);
  const rules::IpAddr addr = candidates_[next_++];
  trying_.close();
  trying_.init([&](uv_tcp_t* t) { return uv_tcp_init(worker_.loop(), t); });
  trying_.get()->data = this;
  sockaddr_storage ss = to_sockaddr(addr, port_);
  outcome_.addr = format_sockaddr(ss);
  auto* req = new ConnectReq{{}, this, ++attempt_};
  int r = uv_tcp_connect(&req->req, trying_.get(), reinterpret_cast<sockaddr*>(&ss), on_connect);
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
    d->outcome_.connect_ms = static_cast<double>(uv_hrtime() - d->connect_started_ns_) / 1e6;
    d->outcome_.stream = std::move(d->trying_);
    d->finish(Failure::None, "");
  } catch (...) {
    d->fail_safely();
  }
}

void Dialer::on_timeout(uv_timer_t* t) {
  auto* d = static_cast<Dialer*>(t->data);
  try {
    d->finish(Failure::ConnectTimeout, "");
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
