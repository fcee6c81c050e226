// The data plane as one object: binds listeners, runs N workers, swaps
// configs (and the Lua states made for them) on reload and drains on stop.
// Used by `sluice serve` and `sluice run`.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/ask.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/events.hpp"
#include "proxy/listener.hpp"
#include "proxy/metrics.hpp"
#include "proxy/worker.hpp"
#include "rules/config.hpp"
#include "rules/rule_engine.hpp"
#include "tls/inspector.hpp"

namespace sluice::proxy {

// The Inspector settings a config's `tls:` section asks for.
tls::InspectorSettings inspector_settings(const rules::TlsConfig& t);

class Server {
 public:
  Server() = default;
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listener and starts `workers` loops (0 = one per core). "" or an error.
  // `loop_probe_ms` > 0 runs the loop-lag probe on every worker (GET /v1/metrics).
  std::string start(std::shared_ptr<const rules::Config> config, int workers, int loop_probe_ms = 0);
  // Applies a new config to new connections; in-flight ones keep theirs. The Lua
  // states for every worker are built here, on the caller's thread, before any
  // worker sees them: a script that fails to load changes nothing.
  // Listener addresses and resolver servers cannot change without a restart.
  std::string reload(std::shared_ptr<const rules::Config> config);
  // "" when `next` may replace `current` without a restart, else why not. Listeners named in
  // `ignore` (sandboxes made at run time) are left out of the comparison.
  static std::string reload_blocker(const rules::Config& current, const rules::Config& next,
                                    const std::vector<std::string>& ignore = {});
  // One Lua state set per worker for `config`, or an error naming script:line.
  // Thread-safe; heavy (scripts are compiled and run): call it off the loops.
  rules::Result<std::vector<std::shared_ptr<rules::WorkerRules>>> build_rules(const rules::Config& config);
  // Hands `config` to every worker as it is (the caller checked it); new connections use it.
  // With `rules` (one per worker, from build_rules) the Lua states change too; without,
  // the workers keep theirs (the policies' scripts did not change). Returns the Lua states
  // replaced, for the caller to let go of off the loops.
  std::vector<std::shared_ptr<rules::WorkerRules>> apply(std::shared_ptr<const rules::Config> config,
                                                         std::vector<std::shared_ptr<rules::WorkerRules>> rules = {});
  // TLS inspection for `config`: the Inspector in force when its `tls:` settings did not
  // change (or a preset one: `sluice run`'s per-run CA), a new one loaded from the files
  // otherwise, null when nothing needs one; an error when a policy inspects with no CA.
  // Heavy (reads and checks the key): call it off the loops.
  rules::Result<std::shared_ptr<tls::Inspector>> inspector_for(const rules::Config& config) const;
  void set_inspector(std::shared_ptr<tls::Inspector> inspector);
  // Before start(): a CA made in memory, used while the config names none.
  void preset_inspector(std::shared_ptr<tls::Inspector> inspector) { preset_inspector_ = std::move(inspector); }
  std::shared_ptr<tls::Inspector> inspector() const;
  // A listener bound after start(): every worker starts accepting on it. Not thread-safe
  // against itself or remove_listener (the control plane serialises them).
  void add_listener(BoundListener l);
  // A sandbox's listener (one unix socket): one worker accepts on it, and owns the socket
  // (no copy per worker), round-robin over the workers. 10,000 sandboxes then cost 10,000
  // descriptors, not 10,000 per worker plus one, and no other worker wakes for a connection.
  // A sandbox's connections share one worker; many sandboxes spread over all of them.
  void add_sandbox_listener(BoundListener l);
  // Stops accepting on it, closes it and removes its socket file. False if there is none.
  bool remove_listener(const std::string& name);
  // `done` runs once, on some worker's thread (or this one, with no workers), with every
  // worker's counters; the second argument has each worker's probe maximum (ms).
  void collect_metrics(std::function<void(WorkerMetrics, std::vector<LoopMax>)> done);
  size_t active_connections() const { return shared_.active.load(); }
  size_t worker_count() const { return workers_.size(); }
  // Stops accepting, lets open connections finish for drain_timeout_ms, joins workers.
  void stop();
  // After start(): one unix socketpair per worker for `listener`; returns the far ends
  // (close-on-exec), on which a bridge hands over accepted TCP connections (SCM_RIGHTS)
  // instead of relaying their bytes. Empty, with *error set, on failure.
  std::vector<int> open_channels(const std::string& listener, std::string* error);

  const std::vector<BoundListener>& listeners() const { return listeners_; }
  // The config in force. Safe from any thread: the control plane swaps it on its job
  // thread while the control loop and the main thread read it.
  std::shared_ptr<const rules::Config> config() const {
    std::lock_guard lock(config_mu_);
    return config_;
  }
  DecisionLog& log() { return log_; }
  EventBus& events() { return events_; }
  AskBroker& asks() { return asks_; }

 private:
  rules::Result<std::vector<std::shared_ptr<rules::WorkerRules>>> build_rules(const rules::Config& config,
                                                                              size_t workers);

  void set_config_ptr(std::shared_ptr<const rules::Config> c) {
    std::lock_guard lock(config_mu_);
    config_ = std::move(c);
  }

  mutable std::mutex config_mu_;
  std::shared_ptr<const rules::Config> config_;  // under config_mu_
  std::shared_ptr<tls::Inspector> preset_inspector_;
  rules::RulesRuntime runtime_;
  std::vector<std::shared_ptr<rules::WorkerRules>> rules_;  // what each worker has now
  std::vector<BoundListener> listeners_;
  size_t next_owner_ = 0;  // the worker the next sandbox listener goes to
  std::vector<std::unique_ptr<Worker>> workers_;
  SharedState shared_;
  EventBus events_;
  DecisionLog log_;
  AskBroker asks_{log_};
  bool stopped_ = false;
};

}  // namespace sluice::proxy
