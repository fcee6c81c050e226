// Path-scoped allow/deny entries: how they load (both forms, errors with line:column), how a
// request is judged by them on its normalised path, and why a tunnel to a host they decide is
// refused (needs-inspection); the same for a host a git rule guards.
#include <doctest/doctest.h>

#include <string>

#include "rules/config.hpp"
#include "tests/rules/lua_support.hpp"

using namespace lua_test;
using sluice::rules::ConfigLoad;
using sluice::rules::load_config_text;
using sluice::rules::RequestFacts;

namespace {

const char* kPathEntriesConfig = R"(listeners:
  - {name: a, tcp: 127.0.0.1:3128}
policies:
  default:
    allow:
      - plain.test
      - github.test/myorg/
      - {host: api.test, path: /repos/myorg/, methods: [get, HEAD]}
      - {host: "*.upload.test", methods: [PUT]}
      - 10.0.0.0/8
    deny:
      - {host: plain.test, path: /admin}
      - {host: plain.test, methods: [DELETE]}
)";

std::shared_ptr<Policy> path_entries_policy(const char* text) {
  ConfigLoad load = load_config_text(text, "p.yaml");
  std::string errors;
  for (const auto& e : load.errors) errors += e.message + "\n";
  INFO(errors);
  REQUIRE(load.config);
  const Policy* loaded = load.config->policy("default");
  REQUIRE(loaded != nullptr);
  // A copy the test may change (report mode), made the way live list replacement makes one.
  return sluice::rules::with_list(*loaded, sluice::rules::PolicyList::Allow, loaded->allow.clone());
}

struct RequestRow {
  const char* host;
  const char* method;
  const char* path;
  const char* reason;  // the verdict's reason
  const char* rule;
};

}  // namespace

TEST_CASE("path-scoped entries load in both forms; CIDRs stay host patterns") {
  auto p = path_entries_policy(kPathEntriesConfig);
  REQUIRE(p->allow_paths.size() == 3);
  CHECK(p->allow_paths[0].path == "/myorg/");
  CHECK(p->allow_paths[0].source == "github.test/myorg/");
  CHECK(p->allow_paths[1].path == "/repos/myorg/");
  CHECK(p->allow_paths[1].methods == std::vector<std::string>{"GET", "HEAD"});
  CHECK(p->allow_paths[2].path.empty());
  REQUIRE(p->deny_paths.size() == 2);
  CHECK(p->allow.match(host("10.1.2.3"), 80) != nullptr);
  CHECK(p->allow.match(host("plain.test"), 80) != nullptr);
}

TEST_CASE("path-scoped entry errors name the line and column") {
  struct BadEntryRow {
    const char* entry;
    const char* says;
  };
  const BadEntryRow rows[] = {
      {"github.test/a//b", "empty path segment"},
      {"github.test/a/%2e%2e/%2e%2e/..", "above the root"},
      {"{host: api.test, path: /x%2fy}", "encoded '/'"},
      {"{host: api.test}", "needs path: or methods:"},
      {"{host: api.test, methods: [\"G T\"]}", "not an HTTP method token"},
      {"{path: /x}", "needs host:"},
      {"{host: api.test, path: /x, port: 1}", "unknown key 'port'"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.entry);
    std::string text = std::string("policies:\n  default:\n    allow:\n      - ") + row.entry + "\n";
    ConfigLoad load = load_config_text(text, "p.yaml");
    REQUIRE_FALSE(load.errors.empty());
    CHECK(load.errors[0].line == 4);
    CHECK(load.errors[0].message.find(row.says) != std::string::npos);
  }
}

TEST_CASE("a request is judged by path-scoped entries on its normalised path") {
  auto p = path_entries_policy(kPathEntriesConfig);
  const RequestRow rows[] = {
      {"github.test", "GET", "/myorg/repo", "allowed-by-rule", "github.test/myorg/"},
      {"github.test", "POST", "/myorg/repo/git-receive-pack", "allowed-by-rule", "github.test/myorg/"},
      {"github.test", "GET", "/myorg", "not-in-allowlist", "default"},  // "/myorg/" covers what is below
      {"github.test", "GET", "/myorganisation/x", "not-in-allowlist", "default"},
      {"github.test", "GET", "/other/repo", "not-in-allowlist", "default"},
      {"github.test", "GET", "/myorg/../other/repo", "not-in-allowlist", "default"},
      {"github.test", "GET", "/myorg/%2e%2e/other", "not-in-allowlist", "default"},
      {"github.test", "GET", "/%6dyorg/x", "allowed-by-rule", "github.test/myorg/"},
      {"github.test", "GET", "/myorg//x", "ambiguous-path", "path"},
      {"github.test", "GET", "/myorg%2f..%2fother", "ambiguous-path", "path"},
      {"github.test", "GET", "/other?x=/myorg/", "not-in-allowlist", "default"},  // the query is no path
      {"api.test", "GET", "/repos/myorg/x", "allowed-by-rule", "api.test/repos/myorg/ [get,HEAD]"},
      {"api.test", "HEAD", "/repos/myorg/x", "allowed-by-rule", "api.test/repos/myorg/ [get,HEAD]"},
      {"api.test", "POST", "/repos/myorg/x", "not-in-allowlist", "default"},
      {"api.test", "get", "/repos/myorg/x", "not-in-allowlist", "default"},  // methods are case-sensitive
      {"a.upload.test", "PUT", "/anything", "allowed-by-rule", "*.upload.test [PUT]"},
      {"a.upload.test", "GET", "/anything", "not-in-allowlist", "default"},
      {"plain.test", "GET", "/", "allowed-by-rule", "plain.test"},
      {"plain.test", "GET", "/admin", "denied-by-rule", "plain.test/admin"},
      {"plain.test", "GET", "/admin/users", "denied-by-rule", "plain.test/admin"},
      {"plain.test", "GET", "/x/../admin", "denied-by-rule", "plain.test/admin"},
      {"plain.test", "GET", "/%61dmin", "denied-by-rule", "plain.test/admin"},
      {"plain.test", "GET", "//admin", "ambiguous-path", "path"},
      {"plain.test", "GET", "/administrator", "allowed-by-rule", "plain.test"},
      {"plain.test", "DELETE", "/x", "denied-by-rule", "plain.test [DELETE]"},
      {"other.test", "GET", "//x", "not-in-allowlist", "default"},  // no path entries: paths unread
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    CAPTURE(row.method);
    CAPTURE(row.path);
    Judged j(p, nullptr, "http");
    std::vector<sluice::rules::HeaderEdit> edits;
    RequestFacts r{row.method, row.path, row.path, nullptr};
    Verdict v = j.judge->judge_request(host(row.host), 80, r, &edits);
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
    CHECK(v.rule == row.rule);
    CHECK(v.allowed() == (std::string(row.reason) == "allowed-by-rule"));
  }
}

TEST_CASE("a tunnel to a host that path-scoped entries decide is refused: needs-inspection") {
  auto p = path_entries_policy(kPathEntriesConfig);
  struct TunnelRow {
    const char* host;
    const char* reason;
  };
  const TunnelRow rows[] = {
      {"github.test", "needs-inspection"},  // only a path entry could allow it
      {"api.test", "needs-inspection"},
      {"plain.test", "needs-inspection"},  // allowed, but deny entries with paths would be bypassed
      {"other.test", "not-in-allowlist"},
      {"10.1.2.3", "allowed-by-rule"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    Judged j(p, nullptr);
    Verdict v = j.connect(row.host);
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
  }
  // Report mode records the refusal and lets the tunnel through.
  p->mode = Policy::Mode::Report;
  Judged j(p, nullptr);
  Verdict v = j.connect("github.test");
  CHECK(v.allowed());
  CHECK(v.would_deny);
  CHECK(sluice::rules::to_string(v.reason) == "needs-inspection");
}

TEST_CASE("with a CA, a tunnel to a host path-scoped entries decide is inspected instead") {
  auto p = path_entries_policy(kPathEntriesConfig);
  struct TunnelRow {
    const char* host;
    const char* reason;
    bool allowed;
  };
  const TunnelRow rows[] = {
      {"github.test", "allowed-for-inspection", true},  // only a path entry could allow it: judged per request
      {"api.test", "allowed-for-inspection", true},
      {"plain.test", "allowed-by-rule", true},  // allowed as a host; its deny paths apply inside
      {"other.test", "not-in-allowlist", false},
      {"10.1.2.3", "allowed-by-rule", true},  // nothing inspects it: an opaque tunnel
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    Judged j(p, nullptr);
    Verdict v = j.judge->judge_connect(host(row.host), 443, /*can_inspect=*/true);
    CHECK(sluice::rules::to_string(v.reason) == row.reason);
    CHECK(v.allowed() == row.allowed);
    CHECK(v.inspect == (row.allowed && std::string(row.host) != "10.1.2.3"));
  }
  // Inside, each request meets the path entries on the host's own verdict.
  Judged j(p, nullptr);
  REQUIRE(j.judge->judge_connect(host("github.test"), 443, true).inspect);
  sluice::rules::HeaderFields headers;
  RequestFacts ok{"GET", "/myorg/repo", "/myorg/repo", &headers, "https"};
  RequestFacts other{"GET", "/elsewhere", "/elsewhere", &headers, "https"};
  CHECK(sluice::rules::to_string(j.judge->judge_request(host("github.test"), 443, ok, nullptr).reason) ==
        "allowed-by-rule");
  CHECK(sluice::rules::to_string(j.judge->judge_request(host("github.test"), 443, other, nullptr).reason) ==
        "not-in-allowlist");
}

TEST_CASE("--allow and --deny flags take path-scoped entries too") {
  auto p = sluice::rules::make_policy("run", Action::Deny, {"github.test/myorg/", "10.0.0.0/8"}, {"x.test/admin"});
  REQUIRE(p.ok());
  CHECK(p.value()->allow_paths.size() == 1);
  CHECK(p.value()->deny_paths.size() == 1);
  CHECK(p.value()->allow.match(host("10.9.9.9"), 1) != nullptr);
  // A bad CIDR stays a CIDR error, never a path entry "/8" on host 10.0.0.1.
  auto cidr = sluice::rules::make_policy("run", Action::Deny, {"10.0.0.1/8"}, {});
  REQUIRE_FALSE(cidr.ok());
  CHECK(cidr.error().find("not a CIDR block") != std::string::npos);
  auto bad = sluice::rules::make_policy("run", Action::Deny, {"github.test/a//b"}, {});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().find("--allow") == 0);
}

TEST_CASE("a host a git rule guards is inspected on 443 (or the rule's port); without a CA, needs-inspection") {
  auto p = path_entries_policy(R"(listeners:
  - {name: a, tcp: 127.0.0.1:3128}
policies:
  default:
    allow: [git.test, forge.test]
    git:
      - {host: git.test, repos: [org/repo], push: ["refs/heads/agent/*"]}
      - {host: "forge.test:8443", repos: [org/repo]}
)");
  struct Row {
    const char* host;
    uint16_t port;
    bool inspects;
  };
  const Row rows[] = {
      {"git.test", 443, true},    {"git.test", 22, false},  // ssh to the forge: no smart-HTTP git the guard could read
      {"forge.test", 8443, true}, {"forge.test", 443, false},  // the rule names 8443 only
      {"other.test", 443, false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    CAPTURE(row.port);
    CHECK(p->guards_git(host(row.host), row.port) == row.inspects);
    CHECK(p->inspects(host(row.host), row.port) == row.inspects);
    Judged with_ca(p, nullptr);
    CHECK(with_ca.judge->judge_connect(host(row.host), row.port, true).inspect == row.inspects);
    // No CA: a tunnel would carry git unseen, so it is refused where the guard applies.
    Judged without(p, nullptr);
    Verdict v = without.judge->judge_connect(host(row.host), row.port, false);
    if (std::string(row.host) == "other.test") continue;
    CHECK(v.allowed() == !row.inspects);
    if (row.inspects) {
      CHECK(sluice::rules::to_string(v.reason) == "needs-inspection");
      CHECK(v.message == "git");
    }
  }
  CHECK(p->inspects_anything());
}
