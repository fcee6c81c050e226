// The Lua rules of one policy on one worker: one sandboxed state (created when
// the config is loaded, never per connection) holding every script of the
// policy, each with its own globals. Hooks are looked up once at load; calling
// one runs that hook of every script in order until one gives a verdict.
//
// Not thread-safe: a LuaPolicy belongs to one worker loop. What workers share
// (counters, the clock, the log sink) is in LuaEnv and is thread-safe.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rules/clock.hpp"
#include "rules/counters.hpp"
#include "rules/host.hpp"
#include "rules/host_set.hpp"
#include "rules/ip.hpp"
#include "rules/lua_sandbox.hpp"
#include "rules/policy.hpp"

namespace sluice::rules {

enum class Hook { Connect, Request, Resolved, Close };
inline constexpr size_t kHookCount = 4;
const char* hook_name(Hook h);  // "on_connect", ...

// What the session knows about a client connection.
struct ConnectionFacts {
  uint64_t id = 0;
  std::string kind;      // "connect" | "http" | "socks"
  std::string listener;  // the sandbox
  bool peer_known = false;
  int64_t pid = 0, uid = 0, gid = 0;
  std::string client;  // "IP:PORT" for TCP clients, "unix" for unix-socket clients
};

using HeaderFields = std::vector<std::pair<std::string, std::string>>;

// One plain-HTTP request as a script sees it.
struct RequestFacts {
  std::string_view method;
  std::string_view url;   // as sent
  std::string_view path;  // origin-form path and query
  const HeaderFields* headers = nullptr;
  std::string_view scheme = "http";  // "https": a request inside an inspected TLS tunnel
};

// r:set_header / r:remove_header, in the order the scripts made them.
struct HeaderEdit {
  std::string name;
  std::string value;
  bool remove = false;
};
// Applies edits: each removes every field of its name (case-insensitive), a set then appends one.
void apply_header_edits(HeaderFields& headers, const std::vector<HeaderEdit>& edits);

struct CloseStats {
  uint64_t bytes_up = 0, bytes_down = 0, duration_ms = 0, requests = 0;
  std::string verdict;  // the last verdict on the connection: "allow", "deny", "ask" or ""
};

struct LuaLogRecord {
  uint64_t conn = 0;
  std::string script;
  std::string level;  // debug | info | warn | error
  std::string message;
};
using LuaLogSink = std::function<void(const LuaLogRecord&)>;

// What every worker's state for one policy shares.
struct LuaEnv {
  std::shared_ptr<CounterStore> counters;
  std::shared_ptr<const Clock> clock;
  LuaLogSink log;  // may be empty: sluice.log then goes nowhere
};

// A hook's answer. Error: the script failed (runtime error, budget, memory cap).
struct HookResult {
  enum class Kind { None, Allow, Deny, Ask, Error };
  Kind kind = Kind::None;
  std::string script;  // the script that answered or failed
  std::string reason;  // {reason = "..."}: text for the client
  std::string error;   // "script.lua:12: message"
};

// A connection's Lua side: its `c` table, made at its first hook call, and the
// target c.host / c.port show.
struct LuaConnection {
  const ConnectionFacts* facts = nullptr;
  std::string host;
  uint16_t port = 0;
  std::string_view scheme;  // "http" or "https" (an inspected request); empty for a tunnel
  int ref = -2;             // registry reference of `c` (LUA_NOREF until made)
};

class LuaPolicy {
 public:
  struct LoadError {
    size_t script = 0;    // index into the scripts given to load()
    int line = 0;         // 0 when unknown
    std::string message;  // without the "name:line: " prefix
  };
  // Compiles and runs every script (its top level, under the budget). Null on failure.
  static std::shared_ptr<LuaPolicy> load(const std::vector<ScriptSource>& scripts, const LuaLimits& limits, LuaEnv env,
                                         LoadError* error);
  ~LuaPolicy();
  LuaPolicy(const LuaPolicy&) = delete;
  LuaPolicy& operator=(const LuaPolicy&) = delete;

  bool has(Hook h) const { return present_[static_cast<size_t>(h)]; }
  bool has_any() const { return present_[0] || present_[1] || present_[2] || present_[3]; }

  HookResult on_connect(LuaConnection& c);
  HookResult on_request(LuaConnection& c, const RequestFacts& r, std::vector<HeaderEdit>* edits);
  HookResult on_resolved(LuaConnection& c, const std::vector<IpAddr>& addrs);
  // Every script's on_close runs; returns the errors, if any.
  std::vector<std::string> on_close(LuaConnection& c, const CloseStats& stats);
  // Drops the connection's `c`.
  void release(LuaConnection& c);

  size_t memory_used() const { return sandbox_->memory_used(); }
  const LuaLimits& limits() const { return sandbox_->limits(); }

  // ---- for the sluice module and the r methods (lua_module.cpp, lua_values.cpp) ----
  struct Script {
    std::string name;
    int env = -2;
    std::array<int, kHookCount> hooks{-2, -2, -2, -2};
  };
  struct CallContext;
  const LuaEnv& env() const { return env_; }
  CallContext* active_call() const { return active_; }
  // sluice.match: 1 match, 0 no match, -1 bad pattern (why in `error`).
  int match(std::string_view host, std::string_view pattern, uint16_t port, std::string* error);

 private:
  LuaPolicy() = default;
  HookResult run(Hook h, CallContext& proto);

  std::unique_ptr<LuaSandbox> sandbox_;
  LuaEnv env_;
  std::vector<Script> scripts_;
  std::array<bool, kHookCount> present_{};
  CallContext* active_ = nullptr;
  uint64_t request_seq_ = 0;
  // sluice.match patterns, parsed once; bounded, cleared when full.
  std::unordered_map<std::string, std::unique_ptr<HostSet>> patterns_;
};

}  // namespace sluice::rules
