// The stand-ins a daemon issued to its sandboxes (`sluice serve`: POST /v1/sandboxes), in one
// place of their own (docs/credentials.md). The control plane issues a sandbox's stand-ins when
// it makes the sandbox and forgets them when it removes it; sessions search every issued one at
// request time (view()) to refuse a stand-in that arrives on a listener other than its sandbox's.
// The sandbox's own stand-ins also ride in its ListenerConfig (`stand_ins`), which is what the
// session honours.
//
// One table per process: a daemon has one sandbox registry, and sessions reach the table without
// a path through the worker. Thread-safe: one index under a reader-writer lock, so issuing or
// forgetting a sandbox's stand-ins costs only its own entries, however many sandboxes there are.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "rules/gateway_credential.hpp"
#include "rules/stand_in_index.hpp"

namespace sluice::proxy {

class StandInTable {
 public:
  using Issued = std::vector<std::pair<std::string, std::string>>;  // credential name -> stand-in

  // A search of every issued stand-in: holds the table's shared lock while it lives (keep it to
  // one request's checks, and copy out what you need). Empty when none is issued.
  class View {
   public:
    View() = default;
    explicit operator bool() const { return index_ != nullptr; }
    const rules::StandInIndex* operator->() const { return index_; }

   private:
    friend class StandInTable;
    View(std::shared_lock<std::shared_mutex> lock, const rules::StandInIndex* index)
        : lock_(std::move(lock)), index_(index) {}
    std::shared_lock<std::shared_mutex> lock_;
    const rules::StandInIndex* index_ = nullptr;
  };

  // The process's table.
  static StandInTable& process();

  // Makes a fresh stand-in per credential for `sandbox` (replacing any it had) and returns them.
  Issued issue(const std::string& sandbox,
               const std::vector<std::shared_ptr<const rules::GatewayCredential>>& credentials);
  // `sandbox`'s stand-ins are honoured nowhere and no longer recognised.
  void forget(const std::string& sandbox);
  // Whether any stand-in is issued (one atomic load: the answer for a daemon that issued none).
  bool any() const { return any_.load(std::memory_order_acquire); }
  View view() const;

 private:
  void forget_locked(const std::string& sandbox);
  std::atomic<bool> any_{false};
  mutable std::shared_mutex mu_;
  std::map<std::string, Issued> by_sandbox_;
  rules::StandInIndex index_;
};

}  // namespace sluice::proxy
