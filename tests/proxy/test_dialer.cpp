// The dialer alone on a real libuv loop, with a fake resolver and real loopback
// sockets: every outcome (connected, DNS failure, every address refused by the
// resolved-address check, connection refused, next address tried) and cancel().
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "fake_resolvers.hpp"
#include "loop_worker.hpp"
#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/dialer.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resolver.hpp"
#include "proxy/worker_context.hpp"
#include "tests/loopback_listener.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;
using FakeWorker = sluice::proxy::test::LoopWorker<sluice::proxy::test::TableResolver>;
// The upstreams: their accepts are left to the kernel's queue.
using sluice::test::LoopbackListener;

namespace {

uint16_t closed_port() {
  LoopbackListener l;
  return l.port;  // closed again when `l` goes
}

rules::CanonicalHost host(const char* text) { return rules::canonicalize_host(text).value(); }

ResolveResult resolved(std::vector<const char*> addrs) {
  ResolveResult r;
  r.ok = true;
  r.ms = 0.5;
  for (const char* a : addrs) r.addrs.push_back(rules::IpAddr::parse(a).value());
  return r;
}

struct Run {
  bool called = false;
  Dialer::Failure failure = Dialer::Failure::None;
  std::string error, address_class, addr;
  int uv_error = 0;
  double dns_ms = -2, connect_ms = -2;
  bool live = false;
};

Run dial(FakeWorker& w, const rules::Config& cfg, const rules::Policy& p, const char* name, uint16_t port) {
  Run out;
  Dialer d(w, cfg, &p);
  UvHandle<AnyStream> kept{UvHandle<AnyStream>::Empty{}};
  d.dial(host(name), port, [&](Dialer::Outcome& o) {
    out.called = true;
    out.failure = o.failure;
    out.error = o.error;
    out.address_class = o.address_class;
    out.addr = o.addr;
    out.uv_error = o.uv_error;
    out.dns_ms = o.dns_ms;
    out.connect_ms = o.connect_ms;
    out.live = o.stream.live();
    kept = std::move(o.stream);
  });
  for (int i = 0; i < 2000 && !out.called; ++i) uv_run(w.loop(), UV_RUN_ONCE);
  return out;
}

}  // namespace

TEST_CASE("dialer outcomes") {
  FakeWorker w;
  rules::Config cfg;
  cfg.limits.connect_timeout_ms = 2000;
  auto listed = rules::make_policy("listed", rules::Action::Deny, {"127.0.0.1", "127.0.0.2"}, {}).value();
  auto bare = rules::make_policy("bare", rules::Action::Allow, {}, {}).value();
  LoopbackListener up;
  w.resolver().answers["up.test"] = resolved({"127.0.0.2", "127.0.0.1"});  // the first refuses, the second answers
  w.resolver().answers["loop.test"] = resolved({"127.0.0.1", "::1"});

  Run ip = dial(w, cfg, *listed, "127.0.0.1", up.port);
  CHECK(ip.failure == Dialer::Failure::None);
  CHECK(ip.live);
  CHECK(ip.dns_ms == -1);  // a literal is never resolved
  CHECK(ip.connect_ms >= 0);
  CHECK(ip.addr == "127.0.0.1:" + std::to_string(up.port));

  int asked = w.resolver().asked;
  Run next = dial(w, cfg, *listed, "up.test", up.port);
  CHECK(w.resolver().asked == asked + 1);
  CHECK(next.failure == Dialer::Failure::None);
  CHECK(next.live);
  CHECK(next.dns_ms == 0.5);
  CHECK(next.addr == "127.0.0.1:" + std::to_string(up.port));

  Run denied = dial(w, cfg, *bare, "loop.test", up.port);
  CHECK(denied.failure == Dialer::Failure::AddressDenied);
  CHECK(denied.address_class == "loopback");
  CHECK_FALSE(denied.live);

  Run nx = dial(w, cfg, *listed, "nowhere.test", up.port);
  CHECK(nx.failure == Dialer::Failure::DnsFailed);
  CHECK(nx.error == "NXDOMAIN");

  uint16_t closed = closed_port();
  Run refused = dial(w, cfg, *listed, "127.0.0.1", closed);
  CHECK(refused.failure == Dialer::Failure::ConnectFailed);
  CHECK(refused.uv_error == UV_ECONNREFUSED);
  CHECK(refused.addr == "127.0.0.1:" + std::to_string(closed));
}

TEST_CASE("dialer: cancel() means no callback") {
  FakeWorker w;
  rules::Config cfg;
  auto p = rules::make_policy("p", rules::Action::Allow, {"127.0.0.1"}, {}).value();
  w.resolver().answers["up.test"] = resolved({"127.0.0.1"});
  LoopbackListener up;
  bool called = false;
  {
    Dialer d(w, cfg, p.get());
    d.dial(host("up.test"), up.port, [&](Dialer::Outcome&) { called = true; });
    d.cancel();
    for (int i = 0; i < 20; ++i) uv_run(w.loop(), UV_RUN_NOWAIT);
    d.dial(host("127.0.0.1"), up.port, [&](Dialer::Outcome&) { called = true; });
  }  // destroyed mid-connect
  for (int i = 0; i < 20; ++i) uv_run(w.loop(), UV_RUN_NOWAIT);
  CHECK_FALSE(called);
}
