// The sluice module: counters (windows, sharing across states and threads,
// surviving a rebuild), log, now, match and in_cidr.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "lua_support.hpp"
#include "rules/counters.hpp"

using namespace lua_test;

TEST_CASE("Counter: a running total") {
  Counter c(0);
  c.add(5, 0);
  c.add(-2, 999999);
  CHECK(c.get(123456789) == 3);
  CHECK_FALSE(c.idle(0));
  c.add(-3, 0);
  CHECK(c.idle(0));
}

TEST_CASE("Counter: a sliding window expires its counts bucket by bucket") {
  const int64_t window = 16000;  // 16 buckets of 1 s
  Counter c(window);
  int64_t t0 = 1'000'000;
  c.add(1, t0);
  c.add(2, t0 + 5000);
  CHECK(c.get(t0 + 5000) == 3);
  CHECK(c.get(t0 + 15999) == 3);
  CHECK(c.get(t0 + 16000) == 2);  // the first count's bucket left the window
  CHECK(c.get(t0 + 20999) == 2);
  CHECK(c.get(t0 + 21000) == 0);
  CHECK(c.idle(t0 + 21000));
  // A bucket slot reused after a full turn starts from zero.
  c.add(7, t0 + 16000 * 3);
  CHECK(c.get(t0 + 16000 * 3) == 7);
}

TEST_CASE("CounterStore: one counter per key and window; full stores drop idle counters only") {
  auto clock = std::make_shared<FakeClock>();
  CounterStore store(clock, 3);
  auto a = store.get("a", 0);
  CHECK(store.get("a", 0) == a);
  auto a60 = store.get("a", 60000);
  CHECK(a60 != a);
  auto b = store.get("b", 1000);
  b->add(1, clock->ms);
  CHECK(store.size() == 3);
  CHECK(store.get("c", 0) == nullptr);  // all held by "scripts" (our shared_ptrs)
  b.reset();
  CHECK(store.get("c", 0) == nullptr);  // b is not held but its count is still in its window
  clock->ms += 2000;
  auto c = store.get("c", 0);  // b expired: swept
  CHECK(c != nullptr);
  CHECK(store.size() == 3);
}

TEST_CASE("sluice.counter: add/get, windows in seconds, shared between states") {
  auto clock = std::make_shared<FakeClock>();
  LuaEnv env;
  env.clock = clock;
  env.counters = std::make_shared<CounterStore>(clock);
  const char* script =
      "function on_connect(c)\n"
      "  local n = sluice.counter(c.listener .. ':' .. c.host, 60):add(1)\n"
      "  local total = sluice.counter('total'):add(0.5)\n"
      "  if n > 2 then return {verdict = 'deny', reason = n .. ' ' .. total} end\n"
      "end\n";
  // Two states, as two workers have: the counters are the same.
  auto w1 = load_one(script, {}, env);
  auto w2 = load_one(script, {}, env);
  auto pol = policy({"x.test", "other.test"});
  CHECK(Judged(pol, w1).connect("x.test").allowed());
  CHECK(Judged(pol, w2).connect("x.test").allowed());
  Verdict third = Judged(pol, w1).connect("x.test");
  CHECK(sluice::rules::to_string(third.reason) == "denied-by-script");
  CHECK(third.message == "3 1.5");  // integral values come back as integers
  CHECK(Judged(pol, w2).connect("other.test").allowed());
  clock->ms += 61000;
  CHECK(Judged(pol, w2).connect("x.test").allowed());  // the window moved on
}

TEST_CASE("counters are exact under concurrent workers") {
  auto env_counters = std::make_shared<CounterStore>(system_clock());
  LuaEnv env;
  env.counters = env_counters;
  const char* script = "function on_connect(c) sluice.counter('hits', 3600):add(1) end";
  std::vector<std::thread> threads;
  const int kPerThread = 2000;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      auto lua = LuaPolicy::load(sources({{"t.lua", script}}), {}, env, nullptr);
      auto pol = policy();
      for (int i = 0; i < kPerThread; ++i) {
        ConnectionJudge j(*pol, lua, facts());
        j.judge_connect(canonicalize_host("x.test").value(), 443);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(env_counters->get("hits", 3600000)->get(env_counters->now_ms()) == 2 * kPerThread);
}

TEST_CASE("counter arguments are checked") {
  const char* rows[] = {
      "sluice.counter()",
      "sluice.counter('k', -1)",
      "sluice.counter('k', 0/0)",
      "sluice.counter(string.rep('k', 2000))",
      "sluice.counter('k'):add(1/0)",
      "sluice.counter('k'):add('x')",
      "sluice.counter('k').add({}, 1)",
  };
  for (const char* expr : rows) {
    CAPTURE(expr);
    auto lua = load_one(std::string("function on_connect(c) ") + expr + " end");
    Verdict v = Judged(policy(), lua).connect("x.test");
    CHECK(sluice::rules::to_string(v.reason) == "script-error");
    CHECK(v.error.find("t.lua:1:") == 0);
  }
}

TEST_CASE("sluice.log goes to the sink with the connection and the script") {
  LogSink sink;
  LuaEnv env;
  env.log = sink.sink();
  auto lua =
      load_scripts({{"logger.lua", "function on_connect(c) sluice.log('warn', 'going to ' .. c.host) end"}}, {}, env);
  REQUIRE(lua);
  Judged(policy(), lua).connect("x.test");
  REQUIRE(sink.records.size() == 1);
  CHECK(sink.records[0].conn == 7);
  CHECK(sink.records[0].script == "logger.lua");
  CHECK(sink.records[0].level == "warn");
  CHECK(sink.records[0].message == "going to x.test");
  auto bad = load_one("function on_connect(c) sluice.log('loud', 'x') end");
  CHECK(sluice::rules::to_string(Judged(policy(), bad).connect("x.test").reason) == "script-error");
}

TEST_CASE("sluice.now follows the clock") {
  auto clock = std::make_shared<FakeClock>();
  clock->wall = 1700000000.5;
  LuaEnv env;
  env.clock = clock;
  auto lua = load_one("function on_connect(c) if sluice.now() == 1700000000.5 then return 'allow' end end", {}, env);
  CHECK(sluice::rules::to_string(Judged(policy(), lua).connect("x.test").reason) == "allowed-by-script");
}

TEST_CASE("sluice.match uses the allow-list matcher") {
  struct Row {
    const char* host;
    const char* pattern;
    int port;  // 0: not given
    bool match;
  };
  const Row rows[] = {
      {"github.com", "github.com", 0, true},        {"GitHub.COM.", "github.com", 0, true},
      {"api.github.com", "*.github.com", 0, true},  {"github.com", "*.github.com", 0, false},
      {"github.com", "github.com:443", 443, true},  {"github.com", "github.com:443", 22, false},
      {"github.com", "github.com:443", 0, false},   {"10.1.2.3", "10.0.0.0/8", 0, true},
      {"[::ffff:10.1.2.3]", "10.0.0.0/8", 0, true}, {"127.1", "127.0.0.1", 0, true},
      {"not a host", "github.com", 0, false},
  };
  for (const Row& row : rows) {
    CAPTURE(row.host);
    CAPTURE(row.pattern);
    std::string call = std::string("sluice.match('") + row.host + "', '" + row.pattern + "'" +
                       (row.port ? ", " + std::to_string(row.port) : std::string()) + ")";
    auto lua = load_one("function on_connect(c) if " + call + " then return 'allow' end return 'deny' end");
    CHECK(Judged(policy(), lua).connect("x.test").allowed() == row.match);
  }
  auto bad = load_one("function on_connect(c) sluice.match('x.test', 'a.*.b') end");
  Verdict v = Judged(policy(), bad).connect("x.test");
  CHECK(sluice::rules::to_string(v.reason) == "script-error");
  CHECK(v.error.find("sluice.match:") != std::string::npos);
}

TEST_CASE("sluice.in_cidr") {
  struct Row {
    const char* addr;
    const char* cidr;
    bool in;
  };
  const Row rows[] = {
      {"10.1.2.3", "10.0.0.0/8", true},
      {"11.1.2.3", "10.0.0.0/8", false},
      {"10.1.2.3:443", "10.0.0.0/8", true},
      {"2001:db8::5", "2001:db8::/32", true},
      {"[2001:db8::5]:443", "2001:db8::/32", true},
      {"::ffff:10.0.0.1", "10.0.0.0/8", true},
      {"unix", "10.0.0.0/8", false},
      {"10.0.0.1", "2001:db8::/32", false},
  };
  for (const Row& row : rows) {
    CAPTURE(row.addr);
    auto lua = load_one(std::string("function on_connect(c) if sluice.in_cidr('") + row.addr + "', '" + row.cidr +
                        "') then return 'allow' end return 'deny' end");
    CHECK(Judged(policy(), lua).connect("x.test").allowed() == row.in);
  }
  auto bad = load_one("function on_connect(c) sluice.in_cidr('10.0.0.1', '10.0.0.1/8') end");
  CHECK(sluice::rules::to_string(Judged(policy(), bad).connect("x.test").reason) == "script-error");
}
