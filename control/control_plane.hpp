// What the control API changes, in one place. The config in force is composed
// of three parts: the base config (the file, or flags, with any live list
// replacements), the sandboxes made at run time, and the remembered answers.
// Every change builds a new snapshot and hands it to the workers; connections
// keep the snapshot they started with.
//
// Old snapshots are retired here, not dropped: a worker or a connection may hold
// the last reference, and destroying a 100,000-entry list on a worker loop would
// stall it. Once a second the control loop takes those no one holds any more
// (take_dead()) and its job thread frees them, at a low CPU priority.
//
// Thread-safe. Heavy work (reading a config file, parsing and building a list)
// runs without the state lock, serialised by a second lock, so callers run it
// on the control server's job thread and the control loop keeps answering meanwhile.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/state_file.hpp"
#include "proxy/connection.hpp"
#include "proxy/metrics.hpp"
#include "rules/config.hpp"
#include "rules/json.hpp"
#include "rules/rule_engine.hpp"

namespace sluice::proxy {

class Server;

// A control operation's answer: an HTTP status and a JSON body (errors are
// {"error": "...", ...} with a 4xx status).
struct ApiResult {
  int status = 200;
  rules::Json body;
  static ApiResult ok(rules::Json body, int status = 200) { return {status, std::move(body)}; }
  static ApiResult error(int status, const std::string& message);
};

class ControlPlane {
 public:
  struct Options {
    std::string config_path;  // empty: started from flags, reload is refused
    std::string state_path;   // empty: `always` answers are kept like `session` ones
    std::string sandbox_dir;  // empty: no sandboxes at run time
    std::string version;
  };
  // After server.start(): the server's config becomes the base.
  ControlPlane(Server& server, Options options);
  ~ControlPlane();
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  // Reads the state file and puts its answers in force. "" or an error line.
  std::string start();
  // Writes the state file's pending save; removes the sandboxes' sockets.
  void stop();

  ApiResult status() const;
  ApiResult pending() const;
  // `id` as written in the path; `body` {"verdict": "allow"|"deny", "remember": ...}.
  // `by` names who answered in the event stream ("api", "terminal").
  ApiResult answer(const std::string& id, const std::string& body, const std::string& by);
  ApiResult answer(uint64_t id, rules::Action action, rules::Remember remember, const std::string& by);
  ApiResult remembered() const;
  ApiResult forget(const std::string& body);
  ApiResult sandboxes() const;
  // `body` {"name": ..., "policy": ..., "lease": ..., "overlay": {"allow": [...], "deny": [...]}};
  // the socket is made for `peer`'s uid when known. Adds one listener to one worker: no
  // config snapshot is rebuilt.
  ApiResult add_sandbox(const std::string& body, const PeerCred& peer);
  ApiResult remove_sandbox(const std::string& name);
  // The listener config a sandbox's connections read (its stand-ins, its policy's name); null if none.
  std::shared_ptr<const rules::ListenerConfig> sandbox_listener(const std::string& name) const;
  // Transparent mode's DNS question for a jail (`sluice run --transparent --daemon`): could the
  // policy of listener `name` ever allow `host` (rules/dns_verdict.hpp)? A denial (or a report
  // mode's would-deny) is logged `dns-denied` (`dns-would-deny`) with the sandbox's name.
  ApiResult dns_verdict(const std::string& name, const std::string& host);
  // Heavy: run off the loop. `trigger` names the cause in the reload event: "api",
  // "signal" (SIGHUP), "rule-file" (a watched script changed).
  ApiResult reload(const std::string& trigger = "api");
  ApiResult replace_list(const std::string& policy, rules::PolicyList which, const std::string& body);

  // `readers_dropped`: event readers the control server dropped for falling behind.
  std::string render_metrics(const WorkerMetrics& total, const std::vector<LoopMax>& lag_max,
                             uint64_t readers_dropped) const;
  // Retired snapshots (and Lua states) that nobody holds any more, taken out of the retired
  // list: whoever drops them frees them (the control server hands them to its job thread).
  struct Dead {
    std::vector<std::shared_ptr<const rules::Config>> configs;
    std::vector<std::shared_ptr<rules::WorkerRules>> lua;
    bool empty() const { return configs.empty() && lua.empty(); }
  };
  Dead take_dead();
  // Frees them here; returns how many retired snapshots are left.
  size_t sweep();
  std::shared_ptr<const rules::Config> config() const;

  Server& server() { return server_; }
  const Options& options() const { return options_; }

 private:
  // The sandbox registry: kept outside the config snapshots. A sandbox's listener config and
  // overlay travel with its listener (ListenerInfo), so adding or removing one touches only
  // that listener, and a config replace (reload, list replacement) leaves every sandbox as is.
  struct Sandbox {
    std::shared_ptr<const rules::ListenerConfig> listener;
    std::shared_ptr<const rules::PolicyOverlay> overlay;  // null: none
  };
  std::shared_ptr<const rules::Config> compose_locked() const;
  // With `lua` (one per worker) the workers' Lua states change too.
  void apply_locked(std::shared_ptr<const rules::Config> next,
                    std::vector<std::shared_ptr<rules::WorkerRules>> lua = {});
  void remembered_changed();
  // One line for the decision log and the event stream: {"ts", "event": name, fields...}.
  void event(const std::string& name, rules::Json fields);

  Server& server_;
  Options options_;
  uint64_t started_ms_;
  std::unique_ptr<StateFileWriter> state_writer_;
  std::mutex heavy_mu_;  // one reload or list replacement at a time
  mutable std::mutex mu_;
  std::shared_ptr<const rules::Config> base_;
  std::shared_ptr<const rules::Config> current_;
  std::map<std::string, Sandbox> sandboxes_;  // by name
  std::map<std::string, uint64_t> policy_versions_;
  uint64_t generation_ = 1;
  std::vector<std::shared_ptr<const rules::Config>> retired_;
  std::vector<std::shared_ptr<rules::WorkerRules>> retired_lua_;
};

}  // namespace sluice::proxy
