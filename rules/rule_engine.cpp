#include "rules/rule_engine.hpp"

namespace sluice::rules {

std::shared_ptr<LuaPolicy> WorkerRules::lua_for(const std::string& policy) const {
  auto it = by_policy_.find(policy);
  return it == by_policy_.end() ? nullptr : it->second;
}

RulesRuntime::RulesRuntime(std::shared_ptr<const Clock> clock) : clock_(std::move(clock)) {}

std::shared_ptr<CounterStore> RulesRuntime::counters(const std::string& policy) {
  std::lock_guard lock(mu_);
  auto& store = counters_[policy];
  if (!store) store = std::make_shared<CounterStore>(clock_);
  return store;
}

Result<std::shared_ptr<WorkerRules>> RulesRuntime::build(const Config& config) {
  auto rules = std::make_shared<WorkerRules>();
  for (const auto& [name, policy] : config.policies) {
    if (policy->rules.empty()) continue;
    LuaPolicy::LoadError error;
    auto lua = LuaPolicy::load(policy->rules, config.limits.lua, LuaEnv{counters(name), clock_, log_}, &error);
    if (!lua) {
      const ScriptSource& s = policy->rules[std::min(error.script, policy->rules.size() - 1)];
      return Err{s.path + (error.line > 0 ? ":" + std::to_string(error.line) : "") + ": " + error.message};
    }
    rules->by_policy_[name] = std::move(lua);
  }
  return rules;
}

std::unique_ptr<ConnectionJudge> make_judge(const Policy& policy, const WorkerRules* rules, ConnectionFacts facts) {
  return std::make_unique<ConnectionJudge>(policy, rules ? rules->lua_for(policy.name) : nullptr, std::move(facts));
}

}  // namespace sluice::rules
