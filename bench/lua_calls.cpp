#include "bench/lua_calls.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "rules/judge.hpp"
#include "rules/lua_policy.hpp"
#include "rules/pattern.hpp"

namespace sluice::bench {

namespace {

constexpr int kBatch = 64;

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

LuaCallStats summarize(std::vector<double>& per_call, uint64_t calls) {
  LuaCallStats s;
  s.calls = calls;
  if (per_call.empty()) return s;
  double sum = 0;
  for (double x : per_call) sum += x;
  s.mean_ns = sum / static_cast<double>(per_call.size());
  std::sort(per_call.begin(), per_call.end());
  auto at = [&](double q) { return per_call[std::min(per_call.size() - 1, static_cast<size_t>(q * per_call.size()))]; };
  s.median_ns = at(0.5);
  s.p90_ns = at(0.9);
  s.p99_ns = at(0.99);
  return s;
}

// Runs `one(i)` in timed batches until `calls` or the time limit.
template <class F>
LuaCallStats measure(const LuaCallOptions& o, F&& one) {
  for (int i = 0; i < 2000; ++i) one(static_cast<uint64_t>(i));  // warm caches and the allocator
  std::vector<double> per_call;
  uint64_t done = 0;
  uint64_t deadline = now_ns() + static_cast<uint64_t>(o.max_seconds * 1e9);
  if (o.cold) {
    static std::vector<char> evict(8u << 20);
    while (done < o.calls && now_ns() < deadline) {
      std::memset(evict.data(), static_cast<int>(done), evict.size());
      uint64_t t0 = now_ns();
      one(done);
      per_call.push_back(static_cast<double>(now_ns() - t0));
      ++done;
    }
    return summarize(per_call, done);
  }
  while (done < o.calls && now_ns() < deadline) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < kBatch; ++i) one(done + static_cast<uint64_t>(i));
    per_call.push_back(static_cast<double>(now_ns() - t0) / kBatch);
    done += kBatch;
  }
  return summarize(per_call, done);
}

}  // namespace

LuaCallResult run_lua_calls(const LuaCallOptions& o_in) {
  LuaCallOptions o = o_in;
  o.calls = std::clamp<uint64_t>(o.calls, kBatch, o.cold ? 100'000 : 10'000'000);
  o.max_seconds = std::clamp(o.max_seconds, 0.1, 300.0);
  o.hosts = std::clamp(o.hosts, 1, 100000);
  LuaCallResult r;
  std::vector<rules::ScriptSource> sources;
  for (const auto& path : o.rules) {
    std::ifstream in(path);
    if (!in) {
      r.error = "cannot read " + path;
      return r;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    size_t slash = path.rfind('/');
    sources.push_back({slash == std::string::npos ? path : path.substr(slash + 1), path, ss.str()});
  }
  rules::LuaPolicy::LoadError e;
  auto lua = rules::LuaPolicy::load(sources, rules::LuaLimits{}, rules::LuaEnv{}, &e);
  if (!lua) {
    r.error = (e.script < o.rules.size() ? o.rules[e.script] : std::string("?")) + ":" + std::to_string(e.line) + ": " +
              e.message;
    return r;
  }
  rules::Policy policy;
  policy.name = "bench";
  policy.allow.add(rules::parse_pattern("*.bench.test").value());
  std::vector<rules::CanonicalHost> hosts;
  for (int i = 0; i < o.hosts; ++i)
    hosts.push_back(rules::canonicalize_host("host" + std::to_string(i) + ".bench.test").value());
  rules::ConnectionFacts facts;
  facts.kind = "connect";
  facts.listener = "bench";
  facts.client = "unix";
  facts.peer_known = true;
  facts.pid = 1;
  // Counted by index, not by name: a map lookup per call would be timed with the rule.
  uint64_t verdicts[3] = {0, 0, 0};
  bool counting = false;
  auto connection = [&](const std::shared_ptr<rules::LuaPolicy>& state, uint64_t i) {
    facts.id = i;
    rules::ConnectionJudge judge(policy, state, facts);
    rules::Verdict v = judge.judge_connect(hosts[i % hosts.size()], 443);
    if (counting) ++verdicts[static_cast<size_t>(v.action)];
  };
  r.baseline = measure(o, [&](uint64_t i) { connection(nullptr, i); });
  counting = true;
  r.first_call = measure(o, [&](uint64_t i) { connection(lua, i); });
  counting = false;
  {
    rules::ConnectionJudge judge(policy, lua, facts);
    r.later_call = measure(o, [&](uint64_t i) { judge.judge_connect(hosts[i % hosts.size()], 443); });
  }
  for (rules::Action a : {rules::Action::Allow, rules::Action::Deny, rules::Action::Ask}) {
    uint64_t n = verdicts[static_cast<size_t>(a)];
    if (n > 0)
      r.verdicts += std::string(r.verdicts.empty() ? "" : " / ") + rules::to_string(a) + " " + std::to_string(n);
  }
  r.lua_memory_bytes = lua->memory_used();
  return r;
}

std::string render_lua_text(const LuaCallOptions& o, const LuaCallResult& r) {
  if (!r.error.empty()) return "error: " + r.error + "\n";
  std::string out = "rules:";
  for (const auto& p : o.rules) out += " " + p;
  out += "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-36s %10s %10s %10s %10s %10s\n",
                o.cold ? "per call (cold caches)" : "per call (batches of 64)", "calls", "median µs", "mean µs",
                "p90 µs", "p99 µs");
  out += line;
  auto row = [&](const char* name, const LuaCallStats& s) {
    std::snprintf(line, sizeof line, "%-36s %10llu %10.3f %10.3f %10.3f %10.3f\n", name,
                  static_cast<unsigned long long>(s.calls), s.median_ns / 1000, s.mean_ns / 1000, s.p90_ns / 1000,
                  s.p99_ns / 1000);
    out += line;
  };
  row("no rules (lists only)", r.baseline);
  row("on_connect, new connection", r.first_call);
  row("on_connect, connection with its c", r.later_call);
  std::snprintf(line, sizeof line,
                "added by the rules per new connection: %.3f µs (median); verdicts: %s; state %zu KiB\n",
                (r.first_call.median_ns - r.baseline.median_ns) / 1000, r.verdicts.c_str(), r.lua_memory_bytes / 1024);
  out += line;
  return out;
}

std::string render_lua_json(const LuaCallOptions& o, const LuaCallResult& r) {
  auto stats = [](const LuaCallStats& s) {
    char b[200];
    std::snprintf(b, sizeof b, "{\"calls\":%llu,\"median_ns\":%.1f,\"mean_ns\":%.1f,\"p90_ns\":%.1f,\"p99_ns\":%.1f}",
                  static_cast<unsigned long long>(s.calls), s.median_ns, s.mean_ns, s.p90_ns, s.p99_ns);
    return std::string(b);
  };
  std::string rules;
  for (const auto& p : o.rules) rules += (rules.empty() ? "\"" : ",\"") + p + "\"";
  if (!r.error.empty()) return "{\"error\":\"" + r.error + "\"}";
  return "{\"scenario\":\"lua\",\"cold\":" + std::string(o.cold ? "true" : "false") + ",\"rules\":[" + rules +
         "],\"baseline\":" + stats(r.baseline) + ",\"first_call\":" + stats(r.first_call) +
         ",\"later_call\":" + stats(r.later_call) + ",\"verdicts\":\"" + r.verdicts +
         "\",\"lua_memory_bytes\":" + std::to_string(r.lua_memory_bytes) + "}";
}

}  // namespace sluice::bench
