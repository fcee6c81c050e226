// The data plane as one object: binds listeners, runs N workers, swaps
// configs (and the Lua states made for them) on reload and drains on stop.
// Used by `sluice serve` and `sluice run`.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "proxy/decision_log.hpp"
#include "proxy/listener.hpp"
#include "proxy/worker.hpp"
#include "rules/config.hpp"
#include "rules/rule_engine.hpp"

namespace sluice::proxy {

class Server {
 public:
  Server() = default;
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listener and starts `workers` loops (0 = one per core). "" or an error.
  std::string start(std::shared_ptr<const rules::Config> config, int workers);
  // Applies a new config to new connections; in-flight ones keep theirs. The Lua
  // states for every worker are built here, on the caller's thread, before any
  // worker sees them: a script that fails to load changes nothing.
  // Listener addresses and resolver servers cannot change without a restart.
  std::string reload(std::shared_ptr<const rules::Config> config);
  // Stops accepting, lets open connections finish for drain_timeout_ms, joins workers.
  void stop();
  // After start(): one unix socketpair per worker for `listener`; returns the far ends
  // (close-on-exec), on which a bridge hands over accepted TCP connections (SCM_RIGHTS)
  // instead of relaying their bytes. Empty, with *error set, on failure.
  std::vector<int> open_channels(const std::string& listener, std::string* error);

  const std::vector<BoundListener>& listeners() const { return listeners_; }
  const rules::Config& config() const { return *config_; }
  DecisionLog& log() { return log_; }

 private:
  // One Lua state set per worker for `config`, or an error naming script:line.
  rules::Result<std::vector<std::shared_ptr<rules::WorkerRules>>> build_rules(const rules::Config& config,
                                                                              size_t workers);

  std::shared_ptr<const rules::Config> config_;
  rules::RulesRuntime runtime_;
  std::vector<BoundListener> listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
  SharedState shared_;
  DecisionLog log_;
  bool stopped_ = false;
};

}  // namespace sluice::proxy
