// The stand-ins a daemon issued to its sandboxes (`sluice serve`: POST /v1/sandboxes), in one
// place of their own (docs/credentials.md). The control plane issues a sandbox's stand-ins when
// it makes the sandbox and forgets them when it removes it; sessions read the current index at
// request time (current()) to refuse a stand-in that arrives on a listener other than its
// sandbox's. The sandbox's own stand-ins also ride in its ListenerConfig (`stand_ins`), which
// is what the session honours.
//
// One table per process: a daemon has one sandbox registry, and sessions reach the table without
// a path through the worker. Thread-safe; current() is a snapshot that later changes never touch.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "rules/gateway_credential.hpp"
#include "rules/stand_in_index.hpp"

namespace sluice::proxy {

class StandInTable {
 public:
  using Issued = std::vector<std::pair<std::string, std::string>>;  // credential name -> stand-in

  // The process's table.
  static StandInTable& process();

  // Makes a fresh stand-in per credential for `sandbox` (replacing any it had) and returns them.
  Issued issue(const std::string& sandbox,
               const std::vector<std::shared_ptr<const rules::GatewayCredential>>& credentials);
  // `sandbox`'s stand-ins are honoured nowhere and no longer recognised.
  void forget(const std::string& sandbox);
  // Every issued stand-in; null when none is.
  std::shared_ptr<const rules::StandInIndex> current() const;

 private:
  void rebuild_locked();
  std::atomic<bool> any_{false};  // the fast answer for a daemon that issued none
  mutable std::mutex mu_;
  std::map<std::string, Issued> by_sandbox_;
  std::shared_ptr<const rules::StandInIndex> index_;
};

}  // namespace sluice::proxy
