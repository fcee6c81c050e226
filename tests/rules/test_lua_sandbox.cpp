// The sandbox: which libraries a script gets, the instruction budget, the
// memory cap, and how failures come back (script:line and the on_error verdict).
#include <doctest/doctest.h>

#include <string>

#include "lua_support.hpp"

using namespace lua_test;

namespace {

// Runs `body` as the body of on_connect; returns what the hook answered.
HookResult run_connect(const std::string& body, LuaLimits limits = {}) {
  auto lua = load_one("function on_connect(c)\n" + body + "\nend\n", limits);
  ConnectionFacts f = facts();
  LuaConnection c;
  c.facts = &f;
  c.host = "example.com";
  c.port = 443;
  HookResult r = lua->on_connect(c);
  lua->release(c);
  return r;
}

}  // namespace

TEST_CASE("only base, string, table, math and utf8 are there") {
  // Each row is a Lua expression that must be true in the sandbox.
  const char* rows[] = {
      "io == nil",
      "os == nil",
      "require == nil",
      "package == nil",
      "debug == nil",
      "coroutine == nil",
      "dofile == nil",
      "loadfile == nil",
      "print == nil",
      "string.dump == nil",
      "type(string.format) == 'function'",
      "type(table.concat) == 'function'",
      "type(math.floor) == 'function'",
      "type(utf8.char) == 'function'",
      "type(pcall) == 'function' and type(setmetatable) == 'function'",
      "type(collectgarbage('count')) == 'number'",
      "not pcall(collectgarbage, 'collect')",
      "not pcall(collectgarbage)",
      "not pcall(collectgarbage, 'stop')",
      "load('return 1 + 1')() == 2",
      "select(2, load('\\27Lua\\84\\0')):find('binary') ~= nil",
      "not pcall(load, 'return 1', 'x', 'b')",
      "not pcall(load, 'return 1', 'x', 'bt')",
      "not pcall(setmetatable, {}, {__gc = function() end})",
      "getmetatable(setmetatable({}, {__index = {}})) ~= nil",
      "type(sluice) == 'table' and type(sluice.counter) == 'function'",
      "not pcall(function() sluice.log = nil end)",
  };
  for (const char* expr : rows) {
    CAPTURE(expr);
    HookResult r = run_connect(std::string("if ") + expr + " then return 'allow' end return 'deny'");
    INFO(r.error);
    CHECK(r.kind == HookResult::Kind::Allow);
  }
}

TEST_CASE("touching a missing library is a runtime error naming script:line") {
  HookResult r = run_connect("local f = io.open('/etc/passwd')");
  CHECK(r.kind == HookResult::Kind::Error);
  CHECK(r.script == "t.lua");
  CHECK(r.error.find("t.lua:2:") == 0);
  CHECK(r.error.find("io") != std::string::npos);
}

TEST_CASE("error() messages carry script:line, with or without a level") {
  CHECK(run_connect("error('boom')").error == "t.lua:2: boom");
  CHECK(run_connect("error('flat', 0)").error == "t.lua:2: flat");
  CHECK(run_connect("error({})").error == "t.lua:2: (error object is a table value)");
}

TEST_CASE("the instruction budget ends a runaway loop") {
  LuaLimits limits;
  limits.instruction_budget = 100000;
  HookResult r = run_connect("local n = 0\nwhile true do n = n + 1 end", limits);
  CHECK(r.kind == HookResult::Kind::Error);
  CHECK(r.error.find("t.lua:3:") == 0);
  CHECK(r.error.find("instruction budget of 100000 instructions exhausted") != std::string::npos);

  SUBCASE("pcall cannot swallow it") {
    HookResult p = run_connect("while true do pcall(function() while true do end end) end", limits);
    CHECK(p.kind == HookResult::Kind::Error);
    CHECK(p.error.find("instruction budget") != std::string::npos);
  }
  SUBCASE("the budget is per call: the next call runs again") {
    auto lua = load_one(
        "n = 0\nfunction on_connect(c)\n n = n + 1\n if n == 1 then while true do end end\n"
        " return 'allow'\nend\n",
        limits);
    ConnectionFacts f = facts();
    LuaConnection c;
    c.facts = &f;
    CHECK(lua->on_connect(c).kind == HookResult::Kind::Error);
    CHECK(lua->on_connect(c).kind == HookResult::Kind::Allow);
    lua->release(c);
  }
  SUBCASE("a budget big enough for the work lets it finish") {
    CHECK(run_connect("local n = 0 for i = 1, 1000 do n = n + i end return 'allow'", limits).kind ==
          HookResult::Kind::Allow);
  }
}

TEST_CASE("the memory cap stops a memory bomb and the state recovers") {
  LuaLimits limits;
  limits.memory_bytes = 1024 * 1024;
  auto lua = load_one(
      "function on_connect(c)\n"
      "  if c.host == 'bomb.test' then\n"
      "    local t = {}\n"
      "    for i = 1, 1e7 do t[i] = string.rep('x', 100) .. i end\n"
      "  elseif c.host == 'huge.test' then\n"
      "    local s = string.rep('x', 1 << 30)\n"

      "  end\n"
      "  return 'allow'\n"
      "end\n",
      limits);
  ConnectionFacts f = facts();
  LuaConnection c;
  c.facts = &f;
  auto call = [&](const char* h) {
    c.host = h;
    return lua->on_connect(c);
  };
  HookResult bomb = call("bomb.test");
  CHECK(bomb.kind == HookResult::Kind::Error);
  CHECK(bomb.error.find("t.lua:4:") == 0);
  CHECK(bomb.error.find("memory cap of 1024 KiB exceeded") != std::string::npos);
  CHECK(lua->memory_used() <= limits.memory_bytes);
  CHECK(call("fine.test").kind == HookResult::Kind::Allow);

  HookResult huge = call("huge.test");
  CHECK(huge.kind == HookResult::Kind::Error);
  CHECK(huge.error.find("memory cap of 1024 KiB exceeded") != std::string::npos);
  CHECK(call("fine.test").kind == HookResult::Kind::Allow);

  lua->release(c);
}

TEST_CASE("a failing hook answers with the policy's on_error verdict") {
  auto lua = load_one("function on_connect(c) error('broken rule') end");
  auto pol = policy({"example.com"});
  SUBCASE("on_error: deny (the default)") {
    Judged j(pol, lua);
    Verdict v = j.connect("example.com");
    CHECK(v.action == Action::Deny);
    CHECK(sluice::rules::to_string(v.reason) == "script-error");
    CHECK(v.rule == "t.lua");
    CHECK(v.hook == "on_connect");
    CHECK(v.error == "t.lua:1: broken rule");
  }
  SUBCASE("on_error: allow") {
    pol->on_error = Action::Allow;
    Judged j(pol, lua);
    Verdict v = j.connect("example.com");
    CHECK(v.action == Action::Allow);
    CHECK(sluice::rules::to_string(v.reason) == "allowed-on-script-error");
    CHECK(v.error == "t.lua:1: broken rule");
    // Plain HTTP: the next request to the same target reuses the verdict without the error.
    ConnectionJudge http(*pol, lua, facts("http"));
    HeaderFields headers;
    RequestFacts r{"GET", "http://example.com/", "/", &headers};
    std::vector<HeaderEdit> edits;
    CHECK(http.judge_request(host("example.com"), 80, r, &edits).error == "t.lua:1: broken rule");
    Verdict again = http.judge_request(host("example.com"), 80, r, &edits);
    CHECK(sluice::rules::to_string(again.reason) == "allowed-on-script-error");
    CHECK(again.error.empty());
  }
}

TEST_CASE("a budget failure also answers with on_error") {
  LuaLimits limits;
  limits.instruction_budget = 10000;
  auto lua = load_one("function on_connect(c) while true do end end", limits);
  Judged j(policy({"example.com"}), lua);
  Verdict v = j.connect("example.com");
  CHECK(v.action == Action::Deny);
  CHECK(sluice::rules::to_string(v.reason) == "script-error");
  CHECK(v.error.find("instruction budget") != std::string::npos);
}
