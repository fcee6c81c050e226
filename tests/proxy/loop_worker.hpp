// A real libuv loop behind the WorkerContext interface, for tests that drive one connection
// object (a TLS pump, a parent-proxy handshake) without a Worker: no resolver, no asks, no
// hand-over. Its destructor runs the loop until every handle is closed.
#pragma once
#include <uv.h>

#include <functional>
#include <string>
#include <vector>

#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resolver.hpp"
#include "proxy/worker_context.hpp"
#include "rules/ip.hpp"

namespace sluice::proxy::test {

class NoResolver final : public Resolver {
 public:
  void resolve(const std::string&, Callback cb) override {
    ResolveResult r;
    r.error = "no resolver in this test";
    cb(std::move(r));
  }
};

class LoopWorker final : public WorkerContext {
 public:
  LoopWorker() { uv_loop_init(&loop_); }
  ~LoopWorker() override {
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  uv_loop_t* loop() override { return &loop_; }
  Resolver& resolver() override { return resolver_; }
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
  NoResolver resolver_;
  DecisionLog log_;
  BufferPool pool_;
  WorkerMetrics metrics_;
  std::vector<rules::IpAddr> self_;
};

}  // namespace sluice::proxy::test
