// Where Lua states come from. RulesRuntime is process-wide: the clock, the log
// sink and one counter store per policy name, kept across reloads so a reload
// does not reset rate limits or byte budgets. build() makes one worker's
// states (a LuaPolicy per policy that has rules) for a config; a reload builds
// a new set for every worker, off the worker loops, and hands them over.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "rules/clock.hpp"
#include "rules/config.hpp"
#include "rules/counters.hpp"
#include "rules/judge.hpp"
#include "rules/lua_policy.hpp"
#include "rules/result.hpp"

namespace sluice::rules {

// One worker's Lua states for one config version.
class WorkerRules {
 public:
  // The state for a policy, or null when it has no rules.
  std::shared_ptr<LuaPolicy> lua_for(const std::string& policy) const;
  size_t states() const { return by_policy_.size(); }

 private:
  friend class RulesRuntime;
  std::map<std::string, std::shared_ptr<LuaPolicy>> by_policy_;
};

class RulesRuntime {
 public:
  explicit RulesRuntime(std::shared_ptr<const Clock> clock = system_clock());
  // Before any build(): where sluice.log lines go.
  void set_log_sink(LuaLogSink sink) { log_ = std::move(sink); }

  // Thread-safe. The error names the script, line and message.
  Result<std::shared_ptr<WorkerRules>> build(const Config& config);
  std::shared_ptr<CounterStore> counters(const std::string& policy);

 private:
  std::shared_ptr<const Clock> clock_;
  LuaLogSink log_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<CounterStore>> counters_;
};

// A judge for a connection under `policy`, with the worker's state for it (rules may be null).
std::unique_ptr<ConnectionJudge> make_judge(const Policy& policy, const WorkerRules* rules, ConnectionFacts facts);

}  // namespace sluice::rules
