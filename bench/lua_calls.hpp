// Microbenchmark of the Lua rule engine: the cost of one on_connect call as a
// connection pays it (make the judge, judge_connect, drop the judge, so `c` is
// made and released every time), and of a later on_connect on a connection
// that already has its `c`. The same loop with no rules is the baseline.
// Bounded in calls and in time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::bench {

struct LuaCallOptions {
  std::vector<std::string> rules;  // script files, in order (one policy)
  uint64_t calls = 200'000;        // per measurement, at most 10,000,000
  double max_seconds = 30;         // per measurement
  int hosts = 100;                 // the target host cycles through host0.bench.test ... hostN-1
  // Cold caches: before each call, write over 8 MiB of memory (as a proxy's socket work
  // between two connections would evict the Lua state), and time each call alone.
  bool cold = false;
};

struct LuaCallStats {
  uint64_t calls = 0;
  double median_ns = 0, p90_ns = 0, p99_ns = 0, mean_ns = 0;  // per call, from batches of 64 calls (cold: each call)
};

struct LuaCallResult {
  std::string error;            // set when a script cannot load
  LuaCallStats baseline;        // no rules: the lists alone
  LuaCallStats first_call;      // a new connection: judge made, on_connect, judge dropped
  LuaCallStats later_call;      // on_connect again on a connection that has its c
  std::string verdicts;         // how the measured calls were judged, e.g. "allow 31 / deny 199969"
  size_t lua_memory_bytes = 0;  // the state's memory after the runs
};

LuaCallResult run_lua_calls(const LuaCallOptions& o);
std::string render_lua_text(const LuaCallOptions& o, const LuaCallResult& r);
std::string render_lua_json(const LuaCallOptions& o, const LuaCallResult& r);

}  // namespace sluice::bench
