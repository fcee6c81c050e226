// The policy's host-level view for transparent mode's resolver: one row per name,
// for each kind of policy (list, defaults, scripts, report mode); and the HostSet
// lookups with no port behind it.
#include <doctest/doctest.h>

#include <string>

#include "rules/dns_verdict.hpp"
#include "rules/pattern.hpp"

using namespace sluice::rules;

namespace {

HostSet set(std::initializer_list<const char*> patterns) {
  HostSet s;
  for (const char* p : patterns) s.add(parse_pattern(p).value());
  return s;
}

CanonicalHost host(const char* h) { return canonicalize_host(h).value(); }

Policy lists(Action def) {
  Policy p;
  p.name = "p";
  p.default_action = def;
  p.allow = set({"allowed.test", "*.ok.test", "port.test:443", "10.0.0.0/8"});
  p.deny = set({"denied.test", "bad.ok.test", "deny443.test:443", "allowed-but-443.test:443"});
  return p;
}

}  // namespace

TEST_CASE("dns verdict: the lists and the default decide whether a name exists") {
  struct Row {
    Action def;
    const char* name;
    bool resolve;
    const char* reason;
    const char* rule;
  };
  const Row rows[] = {
      {Action::Deny, "allowed.test", true, "allowed-by-rule", "allowed.test"},
      {Action::Deny, "x.ok.test", true, "allowed-by-rule", "*.ok.test"},
      {Action::Deny, "port.test", true, "allowed-by-rule", "port.test:443"},  // some port is allowed
      {Action::Deny, "denied.test", false, "denied-by-rule", "denied.test"},
      {Action::Deny, "bad.ok.test", false, "denied-by-rule", "bad.ok.test"},  // deny wins
      {Action::Deny, "other.test", false, "not-in-allowlist", "default"},
      {Action::Deny, "ok.test", false, "not-in-allowlist", "default"},       // *. is subdomains only
      {Action::Deny, "deny443.test", false, "not-in-allowlist", "default"},  // a port deny hides nothing...
      {Action::Allow, "deny443.test", true, "default-allow", "default"},     // ...other ports may be allowed
      {Action::Allow, "other.test", true, "default-allow", "default"},
      {Action::Allow, "denied.test", false, "denied-by-rule", "denied.test"},
      {Action::Ask, "other.test", true, "ask-by-default", "default"},
      {Action::Ask, "denied.test", false, "denied-by-rule", "denied.test"},
      {Action::Allow, "10.1.2.3", false, "not-a-name", ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    CAPTURE(to_string(r.def));
    const Policy p = lists(r.def);
    auto v = dns_verdict(p, host(r.name));
    CHECK(v.resolve == r.resolve);
    CHECK(v.reason == r.reason);
    CHECK(v.rule == r.rule);
    CHECK_FALSE(v.would_deny);
  }
}

TEST_CASE("dns verdict: a policy with scripts resolves every name its deny list leaves") {
  Policy p = lists(Action::Deny);
  p.rules.push_back(ScriptSource{"r.lua", "r.lua", "function on_connect(c) return 'deny' end"});
  auto other = dns_verdict(p, host("other.test"));
  CHECK(other.resolve);
  CHECK(other.reason == "script-decides");
  auto denied = dns_verdict(p, host("denied.test"));
  CHECK_FALSE(denied.resolve);
  CHECK(denied.reason == "denied-by-rule");
}

TEST_CASE("dns verdict: report mode resolves what enforce mode would not, flagged") {
  Policy p = lists(Action::Deny);
  p.mode = Policy::Mode::Report;
  auto v = dns_verdict(p, host("denied.test"));
  CHECK(v.resolve);
  CHECK(v.would_deny);
  CHECK(v.reason == "denied-by-rule");
  auto ok = dns_verdict(p, host("allowed.test"));
  CHECK(ok.resolve);
  CHECK_FALSE(ok.would_deny);
}

TEST_CASE("host set: lookups on some port and on every port") {
  const HostSet s = set({"a.test:443", "a.test:80", "*.b.test:22", "*.b.test", "c.test", "10.0.0.0/8:53"});
  struct Row {
    const char* host;
    const char* some;  // nullptr: no match
    const char* every;
  };
  const Row rows[] = {
      {"a.test", "a.test:443", nullptr}, {"x.b.test", "*.b.test:22", "*.b.test"},
      {"c.test", "c.test", "c.test"},    {"10.1.1.1", "10.0.0.0/8:53", nullptr},
      {"d.test", nullptr, nullptr},
  };
  for (const auto& r : rows) {
    CAPTURE(r.host);
    const HostPattern* some = s.match_some_port(host(r.host));
    const HostPattern* every = s.match_every_port(host(r.host));
    CHECK((some ? some->source : std::string("-")) == (r.some ? r.some : "-"));
    CHECK((every ? every->source : std::string("-")) == (r.every ? r.every : "-"));
  }
  // The per-port lookup is unchanged.
  CHECK(s.match(host("a.test"), 80)->source == "a.test:80");
  CHECK(s.match(host("a.test"), 22) == nullptr);
  CHECK(s.match(host("x.b.test"), 80)->source == "*.b.test");
}
