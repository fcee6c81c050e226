// Helpers for the Lua engine tests: scripts from strings, a fake clock, a
// policy with a judge, a log sink that records.
#pragma once
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "rules/judge.hpp"
#include "rules/lua_policy.hpp"
#include "rules/pattern.hpp"

namespace lua_test {

using namespace sluice::rules;

class FakeClock final : public Clock {
 public:
  std::atomic<int64_t> ms{1'000'000};
  std::atomic<double> wall{1'700'000'000.25};
  double wall_seconds() const override { return wall.load(); }
  int64_t monotonic_ms() const override { return ms.load(); }
};

struct LogSink {
  std::mutex mu;
  std::vector<LuaLogRecord> records;
  LuaLogSink sink() {
    return [this](const LuaLogRecord& r) {
      std::lock_guard lock(mu);
      records.push_back(r);
    };
  }
};

inline std::vector<ScriptSource> sources(std::vector<std::pair<std::string, std::string>> named) {
  std::vector<ScriptSource> out;
  for (auto& [name, text] : named) out.push_back(ScriptSource{name, "/scripts/" + name, text});
  return out;
}

inline std::shared_ptr<LuaPolicy> load_scripts(std::vector<std::pair<std::string, std::string>> named,
                                               LuaLimits limits = {}, LuaEnv env = {},
                                               LuaPolicy::LoadError* error = nullptr) {
  LuaPolicy::LoadError e;
  auto p = LuaPolicy::load(sources(std::move(named)), limits, std::move(env), &e);
  if (error) *error = e;
  return p;
}

inline std::shared_ptr<LuaPolicy> load_one(const std::string& text, LuaLimits limits = {}, LuaEnv env = {}) {
  LuaPolicy::LoadError e;
  auto p = LuaPolicy::load(sources({{"t.lua", text}}), limits, std::move(env), &e);
  INFO("load error: line " << e.line << ": " << e.message);
  REQUIRE(p);
  return p;
}

inline CanonicalHost host(const std::string& h) { return canonicalize_host(h).value(); }

inline std::shared_ptr<Policy> policy(std::vector<std::string> allow = {}, std::vector<std::string> deny = {}) {
  auto p = std::make_shared<Policy>();
  p->name = "p";
  for (auto& a : allow) p->allow.add(parse_pattern(a).value());
  for (auto& d : deny) p->deny.add(parse_pattern(d).value());
  return p;
}

inline ConnectionFacts facts(const std::string& kind = "connect", uint64_t id = 7) {
  ConnectionFacts f;
  f.id = id;
  f.kind = kind;
  f.listener = "agent1";
  f.peer_known = true;
  f.pid = 4242;
  f.uid = 1000;
  f.gid = 100;
  f.client = "unix";
  return f;
}

// A judge over `p` with the script `text` (its name t.lua).
struct Judged {
  std::shared_ptr<Policy> pol;
  std::shared_ptr<LuaPolicy> lua;
  std::unique_ptr<ConnectionJudge> judge;
  Judged(std::shared_ptr<Policy> p, std::shared_ptr<LuaPolicy> l, const std::string& kind = "connect")
      : pol(std::move(p)), lua(std::move(l)), judge(std::make_unique<ConnectionJudge>(*pol, lua, facts(kind))) {}
  Verdict connect(const std::string& h, uint16_t port = 443) { return judge->judge_connect(host(h), port); }
};

}  // namespace lua_test
