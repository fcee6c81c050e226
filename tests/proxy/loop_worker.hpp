// A real libuv loop behind the WorkerContext interface, for tests that drive one connection
// object (a TLS pump, a parent-proxy handshake, a dialer) without a Worker: a fake resolver
// of the test's choice, no asks, no hand-over. Its destructor runs the loop until every
// handle is closed.
#pragma once
#include <uv.h>

#include <functional>
#include <string>
#include <vector>

#include "fake_resolvers.hpp"
#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resolver.hpp"
#include "proxy/worker_context.hpp"
#include "rules/ip.hpp"

namespace sluice::proxy::test {

// R: the resolver, made on the worker's loop; resolver() gives it with its own type, so a
// test fills a TableResolver's answers through the worker.
template <class R = NoResolver>
class LoopWorker final : public WorkerContext {
 public:
  LoopWorker() : resolver_(&loop_) { uv_loop_init(&loop_); }
  ~LoopWorker() override {
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  uv_loop_t* loop() override { return &loop_; }
  R& resolver() override { return resolver_; }
  DecisionLog& log() override { return log_; }
  BufferPool& buffers() override { return pool_; }
  WorkerMetrics& metrics() override { return metrics_; }
  uint64_t ask(const AskRequest&, std::function<void(const AskAnswer&)>, uint64_t*) override { return 0; }
  void cancel_ask(uint64_t, bool) override {}
  uint64_t next_connection_id() override { return 1; }
  const std::vector<rules::IpAddr>& self_addresses() override { return self_; }
  void connection_finished(void*) override {}
  void hand_over(void*, OwnedConnection) override {}

 private:
  uv_loop_t loop_{};
  R resolver_;
  DecisionLog log_;
  BufferPool pool_;
  WorkerMetrics metrics_;
  std::vector<rules::IpAddr> self_;
};

}  // namespace sluice::proxy::test
