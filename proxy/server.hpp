// The data plane as one object: binds listeners, runs N workers, swaps
// configs on reload and drains on stop. Used by `sluice serve` and `sluice run`.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "proxy/decision_log.hpp"
#include "proxy/listener.hpp"
#include "proxy/worker.hpp"
#include "rules/config.hpp"

namespace sluice::proxy {

class Server {
 public:
  Server() = default;
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listener and starts `workers` loops (0 = one per core). "" or an error.
  std::string start(std::shared_ptr<const rules::Config> config, int workers);
  // Applies a new config to new connections; in-flight ones keep theirs.
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
  std::shared_ptr<const rules::Config> config_;
  std::vector<BoundListener> listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
  SharedState shared_;
  DecisionLog log_;
  bool stopped_ = false;
};

}  // namespace sluice::proxy
