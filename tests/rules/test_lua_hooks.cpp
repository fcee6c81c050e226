// Every hook and every return form, through ConnectionJudge: the judgment
// order (deny entries, scripts, allow entries, default), report mode, and
// what scripts see in c, r, addrs and stats.
#include <doctest/doctest.h>

#include <string>

#include "lua_support.hpp"

using namespace lua_test;

TEST_CASE("return forms of on_connect") {
  struct Row {
    const char* ret;  // the Lua expression returned
    Action action;
    const char* reason;
    const char* message;
    bool error;
  };
  const Row rows[] = {
      {"'allow'", Action::Allow, "allowed-by-script", "", false},
      {"'deny'", Action::Deny, "denied-by-script", "", false},
      {"'ask'", Action::Ask, "ask-by-script", "", false},
      {"{verdict = 'deny', reason = 'not on weekends'}", Action::Deny, "denied-by-script", "not on weekends", false},
      {"{verdict = 'allow', reason = 'fine'}", Action::Allow, "allowed-by-script", "fine", false},
      {"{verdict = 'ask'}", Action::Ask, "ask-by-script", "", false},
      {"{verdict = 'deny', reason = 'two\\r\\nlines'}", Action::Deny, "denied-by-script", "two  lines", false},
      {"{verdict = 'deny', reason = string.rep('x', 1000)}", Action::Deny, "denied-by-script", nullptr, false},
      // Malformed answers are script errors: on_error (deny) decides.
      {"'alow'", Action::Deny, "script-error", "", true},
      {"42", Action::Deny, "script-error", "", true},
      {"true", Action::Deny, "script-error", "", true},
      {"{reason = 'no verdict'}", Action::Deny, "script-error", "", true},
      {"{verdict = 'deny', reason = {}}", Action::Deny, "script-error", "", true},
  };
  for (const Row& row : rows) {
    CAPTURE(row.ret);
    auto lua = load_one(std::string("function on_connect(c)\n  return ") + row.ret + "\nend\n");
    Judged j(policy({"example.com"}), lua);
    Verdict v = j.connect("other.test");
    CHECK(v.action == row.action);
    CHECK(v.allowed() == (row.action == Action::Allow));
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
    CHECK(v.rule == "t.lua");
    CHECK(v.hook == "on_connect");
    CHECK(v.policy == "p");
    if (row.message)
      CHECK(v.message == row.message);
    else
      CHECK(v.message == std::string(300, 'x'));
    CHECK(v.error.empty() == !row.error);
    if (row.error) CHECK(v.error.find("t.lua:1: on_connect returned") == 0);
  }
}

TEST_CASE("nil means no opinion: the allow list and the default decide") {
  auto lua = load_one("function on_connect(c) return nil end");
  Judged j(policy({"example.com"}), lua);
  Verdict allowed = j.connect("example.com");
  CHECK(allowed.action == Action::Allow);
  CHECK(sluice::rules::to_string(allowed.reason) == "allowed-by-rule");
  CHECK(allowed.rule == "example.com");
  CHECK(allowed.hook.empty());
  Judged k(policy({"example.com"}), lua);
  Verdict denied = k.connect("other.test");
  CHECK(sluice::rules::to_string(denied.reason) == "not-in-allowlist");
}

TEST_CASE("judgment order: deny entries, then scripts in order, then allow entries, then default") {
  const char* counting =
      "calls = 0\n"
      "function on_connect(c)\n"
      "  calls = calls + 1\n"
      "  sluice.counter('calls'):add(1)\n"
      "  if c.host == 'script-allows.test' or c.host == 'listed-deny.test' then return 'allow' end\n"
      "  if c.host == 'script-denies.test' then return 'deny' end\n"
      "end\n";
  LuaEnv env;
  env.counters = std::make_shared<CounterStore>(system_clock());
  auto lua = load_scripts({{"a.lua", counting}}, {}, env);
  REQUIRE(lua);
  auto pol = policy({"script-denies.test"}, {"listed-deny.test"});
  auto calls = [&] { return env.counters->get("calls", 0)->get(0); };

  Verdict v = Judged(pol, lua).connect("listed-deny.test");
  CHECK(sluice::rules::to_string(v.reason) == "denied-by-rule");  // the deny list wins, the script is not asked
  CHECK(calls() == 0);
  v = Judged(pol, lua).connect("script-denies.test");
  CHECK(sluice::rules::to_string(v.reason) == "denied-by-script");  // the script wins over the allow list
  CHECK(calls() == 1);
  v = Judged(pol, lua).connect("script-allows.test");
  CHECK(sluice::rules::to_string(v.reason) == "allowed-by-script");  // the script wins over the default
  CHECK(calls() == 2);
}

TEST_CASE("several scripts: the first non-nil verdict wins, later scripts are not called") {
  LuaEnv env;
  env.counters = std::make_shared<CounterStore>(system_clock());
  auto lua =
      load_scripts({{"first.lua", "function on_connect(c) sluice.counter('first'):add(1) end"},
                    {"second.lua",
                     "function on_connect(c) sluice.counter('second'):add(1)\n"
                     "  if c.host == 'x.test' then return {verdict = 'deny', reason = 'second says no'} end end"},
                    {"third.lua", "function on_connect(c) sluice.counter('third'):add(1) return 'allow' end"}},
                   {}, env);
  REQUIRE(lua);
  auto pol = policy();
  Verdict v = Judged(pol, lua).connect("x.test");
  CHECK(sluice::rules::to_string(v.reason) == "denied-by-script");
  CHECK(v.rule == "second.lua");
  CHECK(v.message == "second says no");
  CHECK(env.counters->get("third", 0)->get(0) == 0);
  v = Judged(pol, lua).connect("y.test");
  CHECK(sluice::rules::to_string(v.reason) == "allowed-by-script");
  CHECK(v.rule == "third.lua");
  CHECK(env.counters->get("first", 0)->get(0) == 2);
  CHECK(env.counters->get("third", 0)->get(0) == 1);
}

TEST_CASE("scripts keep their own globals") {
  auto lua = load_scripts({{"a.lua", "x = 'a'\nfunction on_connect(c) c.state.a = x end"},
                           {"b.lua",
                            "x = 'b'\nfunction on_connect(c) if c.state.a == 'a' and x == 'b' then "
                            "return 'allow' end return 'deny' end"}});
  REQUIRE(lua);
  CHECK(sluice::rules::to_string(Judged(policy(), lua).connect("x.test").reason) == "allowed-by-script");
}

TEST_CASE("on_connect sees the connection") {
  auto lua = load_one(
      "function on_connect(c)\n"
      "  local ok = c.host == 'api.example.com' and c.port == 8443 and c.kind == 'connect' and\n"
      "    c.listener == 'agent1' and c.client == 'unix' and c.id == 7 and\n"
      "    c.peer.pid == 4242 and c.peer.uid == 1000 and c.peer.gid == 100 and type(c.state) == 'table'\n"
      "  if ok then return 'allow' end\n"
      "  return {verdict = 'deny', reason = 'saw ' .. tostring(c.host) .. ':' .. tostring(c.port)}\n"
      "end\n");
  Judged j(policy(), lua);
  Verdict v = j.judge->judge_connect(host("API.Example.COM."), 8443);
  INFO(v.message);
  CHECK(sluice::rules::to_string(v.reason) == "allowed-by-script");

  SUBCASE("no peer credentials: c.peer is nil") {
    auto l2 = load_one("function on_connect(c) if c.peer == nil then return 'allow' end end");
    auto pol = policy();
    ConnectionFacts f = facts();
    f.peer_known = false;
    f.client = "127.0.0.1:5555";
    ConnectionJudge judge(*pol, l2, f);
    CHECK(sluice::rules::to_string(judge.judge_connect(host("x.test"), 443).reason) == "allowed-by-script");
  }
}

TEST_CASE("c.state lives as long as the connection, through every hook") {
  LuaEnv env;
  env.counters = std::make_shared<CounterStore>(system_clock());
  auto lua = load_one(
      "function on_connect(c) c.state.seen = {'connect'} end\n"
      "function on_resolved(c, addrs) table.insert(c.state.seen, 'resolved') end\n"
      "function on_close(c, stats)\n"
      "  table.insert(c.state.seen, 'close')\n"
      "  if table.concat(c.state.seen, ',') == 'connect,resolved,close' then sluice.counter('ok'):add(1) end\n"
      "end\n",
      {}, env);
  auto pol = policy({"x.test"});
  {
    ConnectionJudge j(*pol, lua, facts());
    CHECK(j.judge_connect(host("x.test"), 443).allowed());
    CHECK_FALSE(j.judge_resolved({IpAddr::parse("192.0.2.1").value()}).has_value());
    CHECK(j.close(CloseStats{}).empty());
    CHECK(j.close(CloseStats{}).empty());  // once only
  }
  CHECK(env.counters->get("ok", 0)->get(0) == 1);
  // A second connection starts with a fresh c.state.
  {
    ConnectionJudge j(*pol, lua, facts("connect", 8));
    j.judge_connect(host("x.test"), 443);
    j.judge_resolved({IpAddr::parse("192.0.2.1").value()});
    j.close(CloseStats{});
  }
  CHECK(env.counters->get("ok", 0)->get(0) == 2);
}

TEST_CASE("on_request: method, url, path, headers, and header edits") {
  auto lua = load_one(
      "function on_request(c, r)\n"
      "  if r.method ~= 'POST' or r.url ~= 'http://x.test/a?b=1' or r.path ~= '/a?b=1' then\n"
      "    return {verdict = 'deny', reason = 'bad request facts'} end\n"
      "  if r.headers['x-one'] ~= '1' or r.headers['x-multi'] ~= 'a, b' then\n"
      "    return {verdict = 'deny', reason = 'bad headers'} end\n"
      "  r:set_header('Authorization', 'Bearer s3cret')\n"
      "  r:remove_header('Cookie')\n"
      "  if r.headers.authorization ~= 'Bearer s3cret' or r.headers.cookie ~= nil then\n"
      "    return {verdict = 'deny', reason = 'view not updated'} end\n"
      "end\n");
  auto pol = policy({"x.test"});
  ConnectionJudge j(*pol, lua, facts("http"));
  HeaderFields headers = {
      {"X-One", "1"}, {"X-Multi", "a"}, {"x-multi", "b"}, {"Cookie", "c=1"}, {"Authorization", "Basic client"}};
  RequestFacts r{"POST", "http://x.test/a?b=1", "/a?b=1", &headers};
  std::vector<HeaderEdit> edits;
  Verdict v = j.judge_request(host("x.test"), 80, r, &edits);
  INFO(v.message << v.error);
  CHECK(v.allowed());
  CHECK(sluice::rules::to_string(v.reason) == "allowed-by-rule");
  REQUIRE(edits.size() == 2);
  CHECK(edits[0].name == "Authorization");
  CHECK(edits[0].value == "Bearer s3cret");
  CHECK_FALSE(edits[0].remove);
  CHECK(edits[1].name == "Cookie");
  CHECK(edits[1].remove);
  apply_header_edits(headers, edits);
  HeaderFields expected = {{"X-One", "1"}, {"X-Multi", "a"}, {"x-multi", "b"}, {"Authorization", "Bearer s3cret"}};
  CHECK(headers == expected);
}

TEST_CASE("on_request may refuse; header edits are checked") {
  struct Row {
    const char* body;
    const char* reason;
    const char* error;  // part of the error, or nullptr
  };
  const Row rows[] = {
      {"if r.method == 'POST' then return {verdict = 'deny', reason = 'read-only'} end", "denied-by-script", nullptr},
      {"r:set_header('Host', 'evil.test')", "script-error", "Host is managed by sluice"},
      {"r:set_header('Content-Length', '0')", "script-error", "managed by sluice"},
      {"r:remove_header('Transfer-Encoding')", "script-error", "managed by sluice"},
      {"r:set_header('Proxy-Authorization', 'x')", "script-error", "managed by sluice"},
      {"r:set_header('X-Ok', 'a\\r\\nX-Injected: 1')", "script-error", "control character"},
      {"r:set_header('Bad Name', 'v')", "script-error", "not a valid header name"},
      {"r.set_header({}, 'X-A', 'v')", "script-error", "has ended"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.body);
    auto lua = load_one(std::string("function on_request(c, r)\n  ") + row.body + "\nend\n");
    auto pol = policy({"x.test"});
    ConnectionJudge j(*pol, lua, facts("http"));
    HeaderFields headers;
    RequestFacts r{"POST", "http://x.test/", "/", &headers};
    std::vector<HeaderEdit> edits;
    Verdict v = j.judge_request(host("x.test"), 80, r, &edits);
    CHECK_FALSE(v.allowed());
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
    CHECK(v.hook == "on_request");
    if (row.error) CHECK(v.error.find(row.error) != std::string::npos);
    if (row.error) CHECK(v.error.find("t.lua:2:") == 0);
  }
}

TEST_CASE("r cannot be used after its on_request call") {
  auto lua = load_one(
      "function on_request(c, r) c.state.r = r end\n"
      "function on_close(c, stats) c.state.r:set_header('X-Late', '1') end\n");
  auto pol = policy({"x.test"});
  ConnectionJudge j(*pol, lua, facts("http"));
  HeaderFields headers;
  RequestFacts r{"GET", "http://x.test/", "/", &headers};
  std::vector<HeaderEdit> edits;
  CHECK(j.judge_request(host("x.test"), 80, r, &edits).allowed());
  auto errors = j.close(CloseStats{});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("has ended") != std::string::npos);
  CHECK(edits.empty());
}

TEST_CASE("plain HTTP: on_connect once per target, on_request per request, never widening") {
  LuaEnv env;
  env.counters = std::make_shared<CounterStore>(system_clock());
  auto lua = load_one(
      "function on_connect(c)\n"
      "  sluice.counter('connect:' .. c.host):add(1)\n"
      "  if c.host == 'blocked.test' then return 'deny' end\n"
      "end\n"
      "function on_request(c, r)\n"
      "  sluice.counter('request'):add(1)\n"
      "  if r.method ~= 'GET' then return {verdict = 'deny', reason = 'GET only'} end\n"
      "  if c.host == 'blocked.test' then return 'allow' end\n"
      "end\n",
      {}, env);
  auto pol = policy({"a.test", "b.test", "blocked.test"});
  ConnectionJudge j(*pol, lua, facts("http"));
  HeaderFields headers;
  auto req = [&](const char* h, const char* method) {
    RequestFacts r{method, "http://x/", "/", &headers};
    std::vector<HeaderEdit> edits;
    return j.judge_request(host(h), 80, r, &edits);
  };
  auto count = [&](const std::string& k) { return env.counters->get(k, 0)->get(0); };
  CHECK(req("a.test", "GET").allowed());
  CHECK(req("a.test", "GET").allowed());
  CHECK(count("connect:a.test") == 1);
  CHECK(count("request") == 2);
  Verdict post = req("a.test", "POST");
  CHECK(sluice::rules::to_string(post.reason) == "denied-by-script");
  CHECK(post.hook == "on_request");
  CHECK(post.message == "GET only");
  CHECK(req("b.test", "GET").allowed());
  CHECK(req("a.test", "GET").allowed());  // the target changed back: judged again
  CHECK(count("connect:a.test") == 2);
  // on_connect refused the target: on_request is not asked, its "allow" cannot widen it.
  Verdict blocked = req("blocked.test", "GET");
  CHECK(sluice::rules::to_string(blocked.reason) == "denied-by-script");
  CHECK(blocked.hook == "on_connect");
  CHECK(count("request") == 5);
}

TEST_CASE("on_resolved sees the candidate addresses and may refuse") {
  auto lua = load_one(
      "function on_resolved(c, addrs)\n"
      "  if #addrs == 2 and addrs[1] == '192.0.2.1' and addrs[2] == '2001:db8::1' then return nil end\n"
      "  for _, a in ipairs(addrs) do\n"
      "    if sluice.in_cidr(a, '198.51.100.0/24') then\n"
      "      return {verdict = 'deny', reason = 'no documentation ranges'} end\n"
      "  end\n"
      "  return 'allow'\n"
      "end\n");
  auto pol = policy({"x.test"});
  ConnectionJudge j(*pol, lua, facts());
  REQUIRE(j.judge_connect(host("x.test"), 443).allowed());
  CHECK_FALSE(j.judge_resolved({IpAddr::parse("192.0.2.1").value(), IpAddr::parse("2001:db8::1").value()}));
  CHECK_FALSE(j.judge_resolved({IpAddr::parse("192.0.2.9").value()}));  // "allow": go on
  auto v = j.judge_resolved({IpAddr::parse("198.51.100.7").value()});
  REQUIRE(v);
  CHECK_FALSE(v->allowed());
  CHECK(sluice::rules::to_string(v->reason) == "denied-by-script");
  CHECK(v->hook == "on_resolved");
  CHECK(v->message == "no documentation ranges");
}

TEST_CASE("on_close gets the statistics; its return value is ignored; errors are reported") {
  LuaEnv env;
  env.counters = std::make_shared<CounterStore>(system_clock());
  auto lua = load_one(
      "function on_close(c, s)\n"
      "  sluice.counter('up'):add(s.bytes_up)\n"
      "  sluice.counter('down'):add(s.bytes_down)\n"
      "  sluice.counter('ms'):add(s.duration_ms)\n"
      "  sluice.counter('req'):add(s.requests)\n"
      "  if s.verdict == 'deny' then error('closing a denied connection') end\n"
      "  return 'deny'\n"
      "end\n",
      {}, env);
  auto pol = policy({"x.test"});
  {
    ConnectionJudge j(*pol, lua, facts());
    j.judge_connect(host("x.test"), 443);
    CHECK(j.close(CloseStats{1000, 2000, 30, 1, "allow"}).empty());
  }
  CHECK(env.counters->get("up", 0)->get(0) == 1000);
  CHECK(env.counters->get("down", 0)->get(0) == 2000);
  CHECK(env.counters->get("ms", 0)->get(0) == 30);
  CHECK(env.counters->get("req", 0)->get(0) == 1);
  ConnectionJudge j(*pol, lua, facts());
  j.judge_connect(host("y.test"), 443);
  auto errors = j.close(CloseStats{5, 0, 0, 1, "deny"});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "t.lua:6: closing a denied connection");
  // A connection that was never judged has no on_close.
  ConnectionJudge unjudged(*pol, lua, facts());
  CHECK(unjudged.close(CloseStats{}).empty());
  CHECK(env.counters->get("up", 0)->get(0) == 1005);
}

TEST_CASE("report mode: every would-deny is allowed and flagged") {
  auto lua = load_one(
      "function on_connect(c) if c.host == 'script.test' then return {verdict = 'deny', reason = 'r'} end\n"
      "  if c.host == 'ask.test' then return 'ask' end end\n"
      "function on_request(c, r) if r.method == 'POST' then return 'deny' end end\n");
  auto pol = policy({"listed.test", "post.test"}, {"denied.test"});
  pol->mode = Policy::Mode::Report;
  struct Row {
    const char* host;
    const char* reason;
    bool would_deny;
  };
  const Row rows[] = {
      {"denied.test", "denied-by-rule", true},   {"script.test", "denied-by-script", true},
      {"ask.test", "ask-by-script", true},       {"unlisted.test", "not-in-allowlist", true},
      {"listed.test", "allowed-by-rule", false},
  };
  for (const Row& row : rows) {
    CAPTURE(row.host);
    Verdict v = Judged(pol, lua).connect(row.host);
    CHECK(v.allowed());
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
    CHECK(v.would_deny == row.would_deny);
  }
  ConnectionJudge j(*pol, lua, facts("http"));
  HeaderFields headers;
  RequestFacts r{"POST", "http://post.test/", "/", &headers};
  std::vector<HeaderEdit> edits;
  Verdict v = j.judge_request(host("post.test"), 80, r, &edits);
  CHECK(v.allowed());
  CHECK(v.would_deny);
  CHECK(v.hook == "on_request");
}

TEST_CASE("a policy without rules judges by its lists alone") {
  auto pol = policy({"x.test"}, {"y.test"});
  ConnectionJudge j(*pol, nullptr, facts());
  CHECK(sluice::rules::to_string(j.judge_connect(host("x.test"), 1).reason) == "allowed-by-rule");
  CHECK(sluice::rules::to_string(j.judge_connect(host("y.test"), 1).reason) == "denied-by-rule");
  CHECK(sluice::rules::to_string(j.judge_connect(host("z.test"), 1).reason) == "not-in-allowlist");
  CHECK_FALSE(j.judge_resolved({IpAddr::parse("192.0.2.1").value()}));
  CHECK(j.close(CloseStats{}).empty());
}

TEST_CASE("apply_header_edits: removes every field of the name, then appends") {
  HeaderFields h = {{"A", "1"}, {"b", "2"}, {"a", "3"}};
  apply_header_edits(h, {{"a", "new", false}, {"B", "", true}, {"C", "c", false}});
  HeaderFields expected = {{"a", "new"}, {"C", "c"}};
  CHECK(h == expected);
}
