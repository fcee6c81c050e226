// Remembered answers: they settle Ask verdicts only, forget() by pattern, and the
// state file's format (written, read back, and refused when malformed).
#include <doctest/doctest.h>

#include <string>

#include "rules/config.hpp"
#include "rules/remembered.hpp"

using namespace sluice::rules;

namespace {

RememberedAnswer answer(const char* policy, const char* host, uint16_t port, Action a, Remember scope) {
  return RememberedAnswer{policy, host, port, a, scope, "2026-01-01T00:00:00.000Z"};
}

CanonicalHost host(const char* h) { return canonicalize_host(h).value(); }

}  // namespace

TEST_CASE("Remember: names") {
  CHECK(std::string(to_string(Remember::Once)) == "once");
  CHECK(parse_remember("session") == Remember::Session);
  CHECK(parse_remember("always") == Remember::Always);
  CHECK(parse_remember("forever") == std::nullopt);
}

TEST_CASE("overlay_remembered: only an Ask verdict is settled") {
  auto policy = make_policy("p", Action::Ask, {"listed.test"}, {"blocked.test"}).value();
  Remembered r;
  r.put(answer("p", "new.test", 443, Action::Allow, Remember::Session));
  r.put(answer("p", "blocked.test", 443, Action::Allow, Remember::Always));  // cannot widen a deny entry
  r.put(answer("p", "bad.test", 443, Action::Deny, Remember::Always));
  r.put(answer("other", "elsewhere.test", 443, Action::Allow, Remember::Always));
  struct Row {
    const char* host;
    uint16_t port;
    Action action;
    const char* reason;
    const char* rule;
  };
  const Row rows[] = {
      {"new.test", 443, Action::Allow, "remembered-allow", "session"},
      {"new.test", 80, Action::Ask, "ask-by-default", "default"},  // another port: not answered
      {"bad.test", 443, Action::Deny, "remembered-deny", "always"},
      {"blocked.test", 443, Action::Deny, "denied-by-rule", "blocked.test"},
      {"listed.test", 443, Action::Allow, "allowed-by-rule", "listed.test"},
      {"elsewhere.test", 443, Action::Ask, "ask-by-default", "default"},  // another policy's answer
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    CAPTURE(row.port);
    CanonicalHost h = host(row.host);
    Verdict v = overlay_remembered(policy->judge(h, row.port), &r, h.text, row.port);
    CHECK(v.action == row.action);
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
    CHECK(v.rule == row.rule);
    CHECK(v.policy == "p");
  }
  CanonicalHost h = host("new.test");
  CHECK(overlay_remembered(policy->judge(h, 443), nullptr, h.text, 443).action == Action::Ask);
}

TEST_CASE("Remembered: put replaces, forget by pattern and policy") {
  Remembered r;
  r.put(answer("p", "a.example.com", 443, Action::Allow, Remember::Session));
  r.put(answer("p", "a.example.com", 443, Action::Deny, Remember::Always));  // same key: replaced
  r.put(answer("p", "b.example.com", 80, Action::Allow, Remember::Always));
  r.put(answer("q", "b.example.com", 80, Action::Allow, Remember::Always));
  r.put(answer("p", "example.com", 443, Action::Allow, Remember::Always));
  r.put(answer("p", "10.1.2.3", 22, Action::Allow, Remember::Session));
  CHECK(r.size() == 5);
  REQUIRE(r.find("p", "a.example.com", 443) != nullptr);
  CHECK(r.find("p", "a.example.com", 443)->action == Action::Deny);
  CHECK(r.has_always());

  auto removed = r.forget(parse_pattern("*.example.com:80").value(), "q");
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].policy == "q");
  removed = r.forget(parse_pattern("*.example.com").value());
  CHECK(removed.size() == 2);  // a. and b. in p; the apex stays (strict subdomains)
  CHECK(r.find("p", "example.com", 443) != nullptr);
  removed = r.forget(parse_pattern("10.0.0.0/8").value());
  CHECK(removed.size() == 1);
  CHECK(r.forget(parse_pattern("nothing.test").value()).empty());
  CHECK(r.size() == 1);
}

TEST_CASE("Remembered: the state file holds the always answers and reads back") {
  Remembered r;
  r.put(answer("p", "api.example.com", 443, Action::Allow, Remember::Always));
  r.put(answer("p", "2001:db8::1", 443, Action::Deny, Remember::Always));
  r.put(answer("p", "session.example", 443, Action::Allow, Remember::Session));  // not written
  std::string text = r.to_state_json();
  CHECK(text.find("session.example") == std::string::npos);
  auto back = Remembered::parse_state(text, "state.json");
  REQUIRE(back.ok());
  REQUIRE(back.value().size() == 2);
  Remembered again;
  for (const auto& a : back.value()) {
    CHECK(a.scope == Remember::Always);
    again.put(a);
  }
  CHECK(again.to_state_json() == text);
  REQUIRE(again.find("p", "2001:db8::1", 443) != nullptr);
  CHECK(again.find("p", "2001:db8::1", 443)->action == Action::Deny);
  CHECK(Remembered().to_state_json() == "{\"version\":1,\"remembered\":[]}\n");
  CHECK(Remembered::parse_state(Remembered().to_state_json(), "s").value().empty());
}

TEST_CASE("Remembered::parse_state: malformed files are refused with a reason") {
  struct Row {
    const char* text;
    const char* error;
  };
  const Row rows[] = {
      {"", "at byte 0"},
      {"[]", "expected a JSON object"},
      {"{\"remembered\":[]}", "\"version\" must be 1"},
      {"{\"version\":2,\"remembered\":[]}", "\"version\" must be 1"},
      {"{\"version\":1}", "\"remembered\" must be an array"},
      {"{\"version\":1,\"remembered\":[],\"x\":1}", "unknown key \"x\""},
      {"{\"version\":1,\"remembered\":[1]}", "remembered[0] must be an object"},
      {"{\"version\":1,\"remembered\":[{\"host\":\"a.test\",\"port\":1,\"verdict\":\"allow\"}]}", ".policy must be"},
      {"{\"version\":1,\"remembered\":[{\"policy\":\"p\",\"host\":\"A.test\",\"port\":1,\"verdict\":\"allow\"}]}",
       "canonical form"},
      {"{\"version\":1,\"remembered\":[{\"policy\":\"p\",\"host\":\"a.test\",\"port\":0,\"verdict\":\"allow\"}]}",
       ".port must be"},
      {"{\"version\":1,\"remembered\":[{\"policy\":\"p\",\"host\":\"a.test\",\"port\":1,\"verdict\":\"ask\"}]}",
       ".verdict must be"},
      {"{\"version\":1,\"remembered\":[{\"policy\":\"p\",\"host\":\"a.test\",\"port\":1,\"verdict\":\"allow\",\"y\":1}]"
       "}",
       "unknown key \"y\""},
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    auto r = Remembered::parse_state(row.text, "state.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().rfind("state.json: ", 0) == 0);
    CHECK(r.error().find(row.error) != std::string::npos);
  }
}

TEST_CASE("with_list: one list replaced, everything else kept") {
  auto p = make_policy("p", Action::Ask, {"a.test", "b.test"}, {"c.test"}).value();
  p->ssh_in_band_reason = true;
  HostSet next;
  next.add(parse_pattern("new.test").value());
  auto q = with_list(*p, PolicyList::Allow, std::move(next));
  CHECK(q->name == "p");
  CHECK(q->default_action == Action::Ask);
  CHECK(q->ssh_in_band_reason);
  CHECK(q->allow.size() == 1);
  CHECK(q->deny.size() == 1);
  CHECK(sluice::rules::to_string(q->judge(host("new.test"), 443).reason) == "allowed-by-rule");
  CHECK(sluice::rules::to_string(q->judge(host("a.test"), 443).reason) == "ask-by-default");
  CHECK(sluice::rules::to_string(q->judge(host("c.test"), 443).reason) == "denied-by-rule");
  CHECK(sluice::rules::to_string(p->judge(host("a.test"), 443).reason) ==
        "allowed-by-rule");  // the original is untouched
  auto r = with_list(*p, PolicyList::Deny, HostSet());
  CHECK(r->deny.empty());
  CHECK(r->allow.size() == 2);
  CHECK(sluice::rules::to_string(r->judge(host("c.test"), 443).reason) == "ask-by-default");
}
