// Policy order: deny entries, then allow entries, then the default; reason codes.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rules/config.hpp"
#include "rules/policy.hpp"

using namespace sluice::rules;

TEST_CASE("to_string(Action)") {
  CHECK(std::string(to_string(Action::Allow)) == "allow");
  CHECK(std::string(to_string(Action::Deny)) == "deny");
  CHECK(std::string(to_string(Action::Ask)) == "ask");
}

TEST_CASE("Policy::judge: table") {
  const std::vector<std::string> allow = {"github.com", "*.github.com", "api.example.com:443", "10.0.0.0/8"};
  const std::vector<std::string> deny = {"gist.github.com", "*.evil.github.com", "10.0.0.1", "github.com:22"};
  auto strict = make_policy("strict", Action::Deny, allow, deny);
  auto open = make_policy("open", Action::Allow, allow, deny);
  REQUIRE(strict.ok());
  REQUIRE(open.ok());
  struct Row {
    const Policy* policy;
    const char* host;
    uint16_t port;
    Action action;
    const char* reason;
    const char* rule;
  };
  const Policy* s = strict.value().get();
  const Policy* o = open.value().get();
  const Row rows[] = {
      {s, "github.com", 443, Action::Allow, "allowed-by-rule", "github.com"},
      {s, "api.github.com", 443, Action::Allow, "allowed-by-rule", "*.github.com"},
      {s, "api.example.com", 443, Action::Allow, "allowed-by-rule", "api.example.com:443"},
      {s, "api.example.com", 80, Action::Deny, "not-in-allowlist", "default"},
      {s, "example.org", 443, Action::Deny, "not-in-allowlist", "default"},
      {s, "10.2.3.4", 443, Action::Allow, "allowed-by-rule", "10.0.0.0/8"},
      // Deny wins over allow, however specific the allow entry is.
      {s, "gist.github.com", 443, Action::Deny, "denied-by-rule", "gist.github.com"},
      {s, "x.evil.github.com", 443, Action::Deny, "denied-by-rule", "*.evil.github.com"},
      {s, "github.com", 22, Action::Deny, "denied-by-rule", "github.com:22"},
      {s, "10.0.0.1", 443, Action::Deny, "denied-by-rule", "10.0.0.1"},
      {s, "[::ffff:10.0.0.1]", 443, Action::Deny, "denied-by-rule", "10.0.0.1"},
      // Default allow: only deny entries deny.
      {o, "example.org", 443, Action::Allow, "default-allow", "default"},
      {o, "github.com", 443, Action::Allow, "allowed-by-rule", "github.com"},
      {o, "gist.github.com", 443, Action::Deny, "denied-by-rule", "gist.github.com"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.policy->name);
    CAPTURE(row.host);
    CAPTURE(row.port);
    auto h = canonicalize_host(row.host);
    REQUIRE(h.ok());
    Verdict v = row.policy->judge(h.value(), row.port);
    CHECK(v.action == row.action);
    CHECK(v.allowed() == (row.action == Action::Allow));
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
    CHECK(v.rule == row.rule);
    CHECK(v.policy == row.policy->name);
  }
}

TEST_CASE("an empty policy denies everything by default") {
  Policy p;
  p.name = "default";
  Verdict v = p.judge(canonicalize_host("example.com").value(), 443);
  CHECK(v.action == Action::Deny);
  CHECK(sluice::rules::to_string(v.reason) == "not-in-allowlist");
  CHECK(v.rule == "default");
  CHECK(v.policy == "default");
}

TEST_CASE("make_policy: errors name the flag and the bad pattern") {
  struct Row {
    std::vector<std::string> allow, deny;
    const char* error;
  };
  const Row rows[] = {
      {{"ok.test", "a.*.b"}, {}, "--allow: bad pattern \"a.*.b\""},
      {{}, {"*"}, "--deny: bad pattern \"*\""},
      {{"x.test:0"}, {}, "--allow: bad pattern \"x.test:0\": port must be"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.error);
    auto p = make_policy("flags", Action::Deny, row.allow, row.deny);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().find(row.error) != std::string::npos);
  }
  auto good = make_policy("flags", Action::Allow, {"a.test"}, {"b.test", "c.test"});
  REQUIRE(good.ok());
  CHECK(good.value()->name == "flags");
  CHECK(good.value()->default_action == Action::Allow);
  CHECK(good.value()->allow.size() == 1);
  CHECK(good.value()->deny.size() == 2);
}
