// The judgment pipeline and asks: remembered answers settle an Ask verdict
// (the default's or a script's) and nothing else; a human's answer stands for
// the target for the rest of the connection, and on_request still runs after it.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rules/remembered.hpp"
#include "tests/rules/lua_support.hpp"

using namespace lua_test;

TEST_CASE("ConnectionJudge: remembered answers settle Ask verdicts from the default and from scripts") {
  auto p = policy({"listed.test"}, {"blocked.test"});
  p->default_action = Action::Ask;
  auto lua = load_one(R"(
    function on_connect(c)
      if c.host == "scripted.test" then return "ask" end
      if c.host == "never.test" then return "deny" end
    end)");
  Remembered r;
  r.put(RememberedAnswer{"p", "scripted.test", 443, Action::Allow, Remember::Always, ""});
  r.put(RememberedAnswer{"p", "asked.test", 443, Action::Deny, Remember::Session, ""});
  r.put(RememberedAnswer{"p", "never.test", 443, Action::Allow, Remember::Always, ""});
  r.put(RememberedAnswer{"p", "blocked.test", 443, Action::Allow, Remember::Always, ""});
  Judged j(p, lua);
  j.judge->set_remembered(&r);
  struct Row {
    const char* host;
    Action action;
    const char* reason;
  };
  const Row rows[] = {
      {"scripted.test", Action::Allow, "remembered-allow"},  // the script's ask, answered before
      {"asked.test", Action::Deny, "remembered-deny"},       // the default's ask
      {"fresh.test", Action::Ask, "ask-by-default"},         // nothing remembered: still a question
      {"never.test", Action::Deny, "denied-by-script"},      // a script's deny is not an ask
      {"blocked.test", Action::Deny, "denied-by-rule"},      // nor is a deny entry
      {"listed.test", Action::Allow, "allowed-by-rule"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    Verdict v = j.connect(row.host);
    CHECK(v.action == row.action);
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
  }
}

TEST_CASE("ConnectionJudge::answered: the answer stands for the target; on_request runs after an allow") {
  auto p = policy();
  p->default_action = Action::Ask;
  auto lua = load_one(R"(
    function on_request(c, r)
      if r.path == "/forbidden" then return "deny" end
      if r.path == "/again" then return "ask" end
      r:set_header("X-Answered", c.host)
    end)");
  Judged j(p, lua, "http");
  HeaderFields headers;
  RequestFacts req{"GET", "http://new.test/x", "/x", &headers};
  std::vector<HeaderEdit> edits;
  Verdict first = j.judge->judge_request(host("new.test"), 80, req, &edits);
  REQUIRE(first.action == Action::Ask);
  CHECK(edits.empty());  // on_request waits for the answer
  Verdict human = first;
  human.action = Action::Allow;
  human.reason = sluice::rules::Reason::AskAllowed;
  human.rule = "once";
  Verdict v = j.judge->answered(host("new.test"), 80, human, &req, &edits);
  CHECK(sluice::rules::to_string(v.reason) == "ask-allowed");
  REQUIRE(edits.size() == 1);
  CHECK(edits[0].value == "new.test");
  // The next request to the same target on this connection is not asked again...
  edits.clear();
  v = j.judge->judge_request(host("new.test"), 80, req, &edits);
  CHECK(sluice::rules::to_string(v.reason) == "ask-allowed");
  CHECK(edits.size() == 1);
  // ...but on_request still judges each request, and a script asking again has its answer.
  RequestFacts forbidden{"GET", "http://new.test/forbidden", "/forbidden", &headers};
  CHECK(sluice::rules::to_string(j.judge->judge_request(host("new.test"), 80, forbidden, &edits).reason) ==
        "denied-by-script");
  RequestFacts again{"GET", "http://new.test/again", "/again", &headers};
  CHECK(sluice::rules::to_string(j.judge->answered(host("new.test"), 80, human, &again, &edits).reason) ==
        "ask-allowed");
  // Another target asks afresh.
  CHECK(j.judge->judge_request(host("other.test"), 80, req, &edits).action == Action::Ask);
}
