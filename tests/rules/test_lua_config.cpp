// Rules in the config: rules/on_error/mode/limits keys, scripts read relative
// to the config file, load errors as file:line, and reloads through
// RulesRuntime (a good one replaces the states, a bad one leaves the old ones
// working; counters carry over).
#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "lua_support.hpp"
#include "rules/config.hpp"
#include "rules/rule_engine.hpp"

using namespace lua_test;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/sluice-lua-test-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path + "'";
    if (system(cmd.c_str()) != 0) MESSAGE("could not remove " << path);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
};

std::string errors_of(const ConfigLoad& load) {
  std::string out;
  for (const auto& e : load.errors) out += e.to_string() + "\n";
  return out;
}

const char* kConfig =
    "listeners:\n"
    "  - name: a\n"
    "    tcp: 127.0.0.1:0\n"
    "    policy: p\n"
    "policies:\n"
    "  p:\n"
    "    allow: [x.test]\n"
    "    rules: [one.lua, sub/two.lua]\n"
    "    on_error: allow\n"
    "    mode: report\n"
    "limits:\n"
    "  lua_instruction_budget: 5000\n"
    "  lua_memory_kb: 512\n";

}  // namespace

TEST_CASE("rules, on_error, mode and the Lua limits load") {
  TempDir d;
  d.write("one.lua", "function on_connect(c) return nil end\n");
  REQUIRE(mkdir((d.path + "/sub").c_str(), 0700) == 0);
  d.write("sub/two.lua", "function on_close(c, s) end\n");
  std::string cfg_path = d.write("c.yaml", kConfig);
  ConfigLoad load = load_config_file(cfg_path);
  INFO(errors_of(load));
  REQUIRE(load.config);
  const Policy* p = load.config->policy("p");
  REQUIRE(p->rules.size() == 2);
  CHECK(p->rules[0].name == "one.lua");
  CHECK(p->rules[0].path == d.path + "/one.lua");
  CHECK(p->rules[0].text == "function on_connect(c) return nil end\n");
  CHECK(p->rules[1].path == d.path + "/sub/two.lua");
  CHECK(p->on_error == Action::Allow);
  CHECK(p->mode == Policy::Mode::Report);
  CHECK(load.config->limits.lua.instruction_budget == 5000);
  CHECK(load.config->limits.lua.memory_bytes == 512 * 1024);
  CHECK(rule_files(*load.config) == std::vector<std::string>{d.path + "/one.lua", d.path + "/sub/two.lua"});

  ConfigLoad defaults = load_config_text("listeners: [{name: a, tcp: '127.0.0.1:0'}]\n", "d.yaml");
  REQUIRE(defaults.config);
  CHECK(defaults.config->limits.lua.instruction_budget == LuaLimits{}.instruction_budget);
  CHECK(defaults.config->limits.lua.memory_bytes == LuaLimits{}.memory_bytes);
  CHECK(defaults.config->policy("default")->on_error == Action::Deny);
  CHECK(defaults.config->policy("default")->mode == Policy::Mode::Enforce);
}

TEST_CASE("rule errors are reported with file:line") {
  TempDir d;
  d.write("syntax.lua", "function on_connect(c)\n  return 'allow\nend\n");
  d.write("runtime.lua", "local x = nil\nlocal y = x.field\n");
  d.write("hook.lua", "on_connect = 42\n");
  d.write("loop.lua", "while true do end\n");
  d.write("ok.lua", "function on_connect(c) end\n");
  d.write("big.lua", "-- " + std::string(1024 * 1024, 'x') + "\n");
  auto config = [&](const std::string& policy_extra) {
    return std::string("listeners: [{name: a, tcp: '127.0.0.1:0', policy: p}]\npolicies:\n  p:\n") + policy_extra;
  };
  struct Row {
    std::string policy;
    std::string error;  // expected to_string() of the first error
  };
  const Row rows[] = {
      {"    rules: [syntax.lua]\n", d.path + "/syntax.lua:2: unfinished string near ''allow'"},
      {"    rules: [ok.lua, runtime.lua]\n", d.path + "/runtime.lua:2: attempt to index a nil value (local 'x')"},
      {"    rules: [hook.lua]\n", d.path + "/hook.lua: hook.lua: on_connect must be a function, not a number"},
      {"    rules: [loop.lua]\n", d.path + "/loop.lua:1: instruction budget of " +
                                      std::to_string(LuaLimits{}.instruction_budget) + " instructions exhausted"},
      {"    rules: [missing.lua]\n",
       d.path + "/c.yaml:4:13: cannot read rules file " + d.path + "/missing.lua: No such file or directory"},
      {"    rules: [ok.lua, ok.lua]\n", d.path + "/c.yaml:4:21: policy 'p' lists rules file 'ok.lua' twice"},
      {"    rules: [/dev/zero]\n", d.path + "/c.yaml:4:13: cannot read rules file /dev/zero: not a regular file"},
      {"    rules: [big.lua]\n",
       d.path + "/c.yaml:4:13: cannot read rules file " + d.path + "/big.lua: larger than 1 MiB"},
      {"    rules: ok.lua\n", d.path + "/c.yaml:4:12: policy 'p' rules must be a list"},
      {"    on_error: maybe\n", d.path + "/c.yaml:4:15: policy 'p' on_error must be deny or allow, not 'maybe'"},
      {"    mode: loud\n", d.path + "/c.yaml:4:11: policy 'p' mode must be enforce or report, not 'loud'"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.policy);
    std::string path = d.write("c.yaml", config(row.policy));
    ConfigLoad load = load_config_file(path);
    REQUIRE_FALSE(load.config);
    REQUIRE_FALSE(load.errors.empty());
    CHECK(load.errors[0].to_string() == row.error);
  }
  ConfigLoad small =
      load_config_text("listeners: [{name: a, tcp: '127.0.0.1:0'}]\nlimits: {lua_memory_kb: 100}\n", "s.yaml");
  REQUIRE_FALSE(small.errors.empty());
  CHECK(small.errors[0].to_string() == "s.yaml:2:25: lua_memory_kb must be at least 256");
}

TEST_CASE("reload: a good config replaces the states, in-flight judges keep theirs, counters carry over") {
  TempDir d;
  d.write("r.lua",
          "VERSION = 1\n"
          "function on_connect(c)\n"
          "  local n = sluice.counter('seen'):add(1)\n"
          "  return {verdict = 'deny', reason = 'v' .. VERSION .. ' n' .. n}\n"
          "end\n");
  std::string cfg = d.write("c.yaml",
                            "listeners: [{name: a, tcp: '127.0.0.1:0', policy: p}]\n"
                            "policies:\n  p:\n    rules: [r.lua]\n");
  RulesRuntime runtime;
  ConfigLoad v1 = load_config_file(cfg);
  REQUIRE(v1.config);
  auto rules1 = runtime.build(*v1.config);
  REQUIRE(rules1.ok());
  const Policy& p1 = *v1.config->policy("p");
  auto in_flight = make_judge(p1, rules1.value().get(), facts());
  CHECK(in_flight->judge_connect(host("x.test"), 443).message == "v1 n1");

  SUBCASE("a good new version") {
    d.write("r.lua",
            "VERSION = 2\n"
            "function on_connect(c)\n"
            "  local n = sluice.counter('seen'):add(1)\n"
            "  return {verdict = 'deny', reason = 'v' .. VERSION .. ' n' .. n}\n"
            "end\n");
    ConfigLoad v2 = load_config_file(cfg);
    REQUIRE(v2.config);
    auto rules2 = runtime.build(*v2.config);
    REQUIRE(rules2.ok());
    auto fresh = make_judge(*v2.config->policy("p"), rules2.value().get(), facts());
    CHECK(fresh->judge_connect(host("x.test"), 443).message == "v2 n2");
    // The connection that started under version 1 stays there, sharing the counters.
    CHECK(in_flight->judge_connect(host("y.test"), 443).message == "v1 n3");
  }
  SUBCASE("a broken new version is refused; the old states keep working") {
    d.write("r.lua", "VERSION = 3\nfunction on_connect(c)\n  return 'deny\nend\n");
    ConfigLoad v3 = load_config_file(cfg);
    REQUIRE_FALSE(v3.config);
    REQUIRE(v3.errors.size() == 1);
    CHECK(v3.errors[0].to_string().find(d.path + "/r.lua:3:") == 0);
    auto next = make_judge(p1, rules1.value().get(), facts("connect", 8));
    CHECK(next->judge_connect(host("x.test"), 443).message == "v1 n2");
  }
}

TEST_CASE("RulesRuntime::build reports a state that cannot load") {
  // The loader already tried the scripts; a build can still fail, e.g. with a
  // smaller memory cap than the script needs at load.
  auto cfg = std::make_shared<Config>();
  auto p = std::make_shared<Policy>();
  p->name = "p";
  p->rules = sources({{"big.lua", "big = string.rep('x', 400 * 1024)"}});
  cfg->policies["p"] = p;
  cfg->limits.lua.memory_bytes = 256 * 1024;
  RulesRuntime runtime;
  auto built = runtime.build(*cfg);
  REQUIRE_FALSE(built.ok());
  CHECK(built.error().find("/scripts/big.lua") == 0);
  CHECK(built.error().find("memory cap") != std::string::npos);
  cfg->limits.lua.memory_bytes = 4 * 1024 * 1024;
  auto ok = runtime.build(*cfg);
  REQUIRE(ok.ok());
  CHECK(ok.value()->states() == 1);
  CHECK(ok.value()->lua_for("p") != nullptr);
  CHECK(ok.value()->lua_for("other") == nullptr);
}
