// The ask broker alone: questions shared by host:port, answers delivered to every
// waiter, remembered answers, waiters leaving, the event lines, and shutdown.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/ask.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/events.hpp"
#include "rules/pattern.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;

namespace {

struct Fixture {
  EventBus bus;
  DecisionLog log;
  AskBroker broker{log};
  Fixture() {
    log.set_tap(&bus);
    bus.add_reader();  // the event lines are what the tests read
  }
  std::vector<std::string> events() { return bus.take(); }
};

AskRequest request(const char* host, uint16_t port, const char* listener = "sb", const char* kind = "connect") {
  AskRequest r;
  r.policy = "p";
  r.listener = listener;
  r.kind = kind;
  r.host = host;
  r.port = port;
  r.conn = 7;
  r.client = "127.0.0.1:5000";
  return r;
}

}  // namespace

TEST_CASE("AskBroker: connections asking for one host:port share one question; the answer releases all") {
  Fixture f;
  std::vector<AskAnswer> got;
  auto deliver = [&](const AskAnswer& a) { got.push_back(a); };
  uint64_t q1 = 0, q2 = 0, q3 = 0;
  uint64_t t1 = f.broker.join(request("a.test", 443), deliver, &q1);
  uint64_t t2 = f.broker.join(request("a.test", 443, "other-sb", "http"), deliver, &q2);
  uint64_t t3 = f.broker.join(request("a.test", 80), deliver, &q3);  // another port: another question
  CHECK(t1 != 0);
  CHECK(t2 != 0);
  CHECK(q1 == q2);
  CHECK(q3 != q1);
  auto pending = f.broker.pending();
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].id == q1);  // oldest first
  CHECK(pending[0].waiting == 2);
  CHECK(pending[0].listeners == std::vector<std::string>{"sb", "other-sb"});
  CHECK(pending[0].kinds == std::vector<std::string>{"connect", "http"});
  CHECK(f.broker.questions_total() == 2);
  auto events = f.events();
  REQUIRE(events.size() == 2);  // one "ask" line per question, not per connection
  CHECK(events[0].find("\"event\":\"ask\"") != std::string::npos);
  CHECK(events[0].find("\"host\":\"a.test\",\"port\":443") != std::string::npos);

  auto q = f.broker.answer(q1, AskAnswer{rules::Action::Allow, rules::Remember::Once, "api", 0});
  REQUIRE(q.has_value());
  CHECK(q->waiting == 2);
  REQUIRE(got.size() == 2);
  CHECK(got[0].action == rules::Action::Allow);
  CHECK(got[0].question == q1);
  CHECK(f.broker.pending().size() == 1);
  CHECK_FALSE(f.broker.answer(q1, AskAnswer{rules::Action::Allow, rules::Remember::Once, "api", 0}).has_value());
  events = f.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].find("\"event\":\"answer\"") != std::string::npos);
  CHECK(events[0].find("\"released\":2") != std::string::npos);
  f.broker.leave(t1, false);                  // already released: nothing happens
  CHECK(f.broker.remembered()->size() == 0);  // once is not remembered
  f.broker.leave(t3, true);
  CHECK(f.broker.pending().empty());
  events = f.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].find("\"event\":\"ask-expired\"") != std::string::npos);
  CHECK(events[0].find("\"reason\":\"timeout\"") != std::string::npos);
  CHECK(f.broker.answer_counts() ==
        std::vector<std::pair<std::string, uint64_t>>{{"allow|once|api", 1}, {"deny|once|timeout", 1}});
}

TEST_CASE("AskBroker: session and always answers are remembered and answer later joins at once") {
  Fixture f;
  int changed = 0;
  f.broker.on_remembered_changed([&] { ++changed; });
  std::vector<AskAnswer> got;
  uint64_t q = 0;
  f.broker.join(
      request("b.test", 443), [&](const AskAnswer& a) { got.push_back(a); }, &q);
  f.broker.answer(q, AskAnswer{rules::Action::Deny, rules::Remember::Always, "terminal", 0});
  CHECK(changed == 1);
  auto snapshot = f.broker.remembered();
  REQUIRE(snapshot->find("p", "b.test", 443) != nullptr);
  CHECK(snapshot->find("p", "b.test", 443)->scope == rules::Remember::Always);
  // A join that races the snapshot: answered before join returns, with no ticket.
  got.clear();
  uint64_t ticket = f.broker.join(request("b.test", 443), [&](const AskAnswer& a) { got.push_back(a); });
  CHECK(ticket == 0);
  REQUIRE(got.size() == 1);
  CHECK(got[0].action == rules::Action::Deny);
  CHECK(got[0].by == "remembered");
  CHECK(f.broker.pending().empty());
  // Snapshots are values: the one taken before stays as it was.
  auto removed = f.broker.forget(rules::parse_pattern("*.test").value(), "");
  CHECK(removed.size() == 1);
  CHECK(changed == 2);
  CHECK(snapshot->size() == 1);
  CHECK(f.broker.remembered()->size() == 0);
  CHECK(f.broker.forget(rules::parse_pattern("*.test").value(), "").empty());
  CHECK(changed == 2);  // nothing removed, nothing changed
  f.broker.load_remembered(
      {rules::RememberedAnswer{"p", "c.test", 1, rules::Action::Allow, rules::Remember::Always, ""}});
  CHECK(f.broker.remembered()->find("p", "c.test", 1) != nullptr);
}

TEST_CASE("AskBroker: after close() every join is a denial and nothing is pending") {
  Fixture f;
  f.broker.join(request("d.test", 1), [](const AskAnswer&) {});
  f.broker.close();
  CHECK(f.broker.pending().empty());
  AskAnswer got;
  CHECK(f.broker.join(request("d.test", 1), [&](const AskAnswer& a) { got = a; }) == 0);
  CHECK(got.action == rules::Action::Deny);
  CHECK(got.by == "closed");
}
