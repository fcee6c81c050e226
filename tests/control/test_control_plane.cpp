// The control plane over a real Server with one worker: a replaced snapshot is
// retired, never freed while anything holds it, and handed out by take_dead()
// only once nothing does; list replacement and sandboxes change the snapshot in
// force; bad requests are answered as errors without changing anything.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "control/control_plane.hpp"
#include "proxy/server.hpp"
#include "proxy/stand_in_table.hpp"
#include "rules/config.hpp"
#include "rules/credentials.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/sluice-plane-test-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

std::shared_ptr<rules::Config> config(const std::string& dir) {
  auto load = rules::load_config_text("listeners:\n  - {name: main, unix: \"" + dir +
                                          "/main.sock\", policy: p}\n"
                                          "policies:\n  p: {default: deny, allow: [a.test], deny: [d.test]}\n"
                                          "log: {path: \"\"}\n",
                                      "t.yaml");
  REQUIRE(load.config);
  return load.config;
}

template <class F>
bool eventually(F f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

rules::Verdict judge(const rules::Config& c, const char* host) {
  return c.policy("p")->judge(rules::canonicalize_host(host).value(), 443);
}

}  // namespace

TEST_CASE("ControlPlane: retired snapshots are handed out only when nothing holds them") {
  TempDir d;
  Server server;
  REQUIRE(server.start(config(d.path), 1) == "");
  ControlPlane plane(server, ControlPlane::Options{"", "", d.path + "/sandboxes", "test"});
  REQUIRE(plane.start() == "");
  std::shared_ptr<const rules::Config> held = plane.config();  // as an open connection holds it
  const rules::Config* old = held.get();

  ApiResult r = plane.replace_list("p", rules::PolicyList::Allow, "[\"b.test\"]");
  REQUIRE(r.status == 200);
  CHECK(r.body.find("entries")->as_integer(0, 9) == 1);
  CHECK(r.body.find("version")->as_integer(0, 9) == 2);
  auto now = plane.config();
  CHECK(now.get() != old);
  CHECK(sluice::rules::to_string(judge(*now, "b.test").reason) == "allowed-by-rule");
  CHECK(sluice::rules::to_string(judge(*now, "a.test").reason) == "not-in-allowlist");
  CHECK(sluice::rules::to_string(judge(*now, "d.test").reason) == "denied-by-rule");  // the other list came along
  CHECK(sluice::rules::to_string(judge(*held, "a.test").reason) ==
        "allowed-by-rule");  // the held snapshot is untouched

  // While `held` lives, the snapshot it points to is never handed out to be freed.
  bool freed_old = false;
  for (int i = 0; i < 50; ++i) {
    for (const auto& c : plane.take_dead().configs) freed_old = freed_old || c.get() == old;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  CHECK_FALSE(freed_old);
  held.reset();
  CHECK(eventually([&] {
    auto dead = plane.take_dead();
    return !dead.configs.empty();
  }));
  CHECK(plane.sweep() == 0);
  server.stop();
  plane.stop();
}

TEST_CASE("ControlPlane: sandboxes and bad requests") {
  TempDir d;
  Server server;
  REQUIRE(server.start(config(d.path), 1) == "");
  ControlPlane plane(server, ControlPlane::Options{"", "", d.path + "/sandboxes", "test"});
  REQUIRE(plane.start() == "");
  ApiResult r = plane.add_sandbox("{\"name\":\"sb\",\"policy\":\"p\"}", PeerCred{});
  REQUIRE(r.status == 201);
  std::string path = r.body.find("path")->as_string();
  CHECK(path == d.path + "/sandboxes/sb.sock");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  bool listed = false;
  for (const auto& l : plane.config()->listeners) listed = listed || l.name == "sb";
  CHECK(listed);
  CHECK(plane.add_sandbox("{\"name\":\"sb\"}", PeerCred{}).status == 409);
  CHECK(plane.add_sandbox("{\"name\":\"x\",\"policy\":\"nope\"}", PeerCred{}).status == 404);
  CHECK(plane.add_sandbox("{\"name\":\"../x\"}", PeerCred{}).status == 400);
  CHECK(plane.add_sandbox("not json", PeerCred{}).status == 400);
  CHECK(plane.remove_sandbox("main").status == 409);
  CHECK(plane.remove_sandbox("sb").status == 200);
  CHECK(::access(path.c_str(), F_OK) != 0);
  CHECK(plane.remove_sandbox("sb").status == 404);

  auto before = plane.config();
  CHECK(plane.replace_list("p", rules::PolicyList::Deny, "[\"ok.test\", \"a.*.b\"]").status == 400);
  CHECK(plane.replace_list("nope", rules::PolicyList::Deny, "[]").status == 404);
  CHECK(plane.replace_list("p", rules::PolicyList::Deny, "{\"list\": []}").status == 400);
  CHECK(plane.config() == before);  // nothing changed
  CHECK(plane.answer("12", "{\"verdict\":\"allow\"}", "api").status == 404);
  CHECK(plane.answer("x", "{\"verdict\":\"allow\"}", "api").status == 400);
  CHECK(plane.reload().status == 409);  // no config file
  ApiResult status = plane.status();
  CHECK(status.body.find("workers")->as_integer(0, 9) == 1);
  server.stop();
  plane.stop();
}

TEST_CASE("ControlPlane: a sandbox's DNS verdict (transparent mode with a daemon)") {
  TempDir d;
  Server server;
  REQUIRE(server.start(config(d.path), 1) == "");
  ControlPlane plane(server, ControlPlane::Options{"", "", d.path + "/sandboxes", "test"});
  REQUIRE(plane.start() == "");
  REQUIRE(plane.add_sandbox("{\"name\":\"sb\",\"policy\":\"p\"}", PeerCred{}).status == 201);
  struct Row {
    const char* listener;
    const char* host;
    int status;
    bool resolve;
    const char* reason;
  };
  for (const Row& row : {
           Row{"sb", "A.test.", 200, true, "allowed-by-rule"},
           Row{"sb", "d.test", 200, false, "denied-by-rule"},
           Row{"sb", "other.test", 200, false, "not-in-allowlist"},
           Row{"main", "a.test", 200, true, "allowed-by-rule"},  // a listener of the config file
           Row{"nope", "a.test", 404, false, ""},
           Row{"sb", "bad name", 400, false, ""},
       }) {
    CAPTURE(row.host);
    ApiResult r = plane.dns_verdict(row.listener, row.host);
    CHECK(r.status == row.status);
    if (r.status != 200) continue;
    CHECK(r.body.find("resolve")->as_bool() == row.resolve);
    CHECK(r.body.find("reason")->as_string() == row.reason);
    CHECK(r.body.find("policy")->as_string() == "p");
  }
  CHECK(plane.dns_verdict("sb", "A.test.").body.find("name")->as_string() == "a.test");
  server.stop();
  plane.stop();
}

TEST_CASE("ControlPlane: a sandbox with credentials gets its own stand-ins, forgotten when it goes") {
  TempDir d;
  ::setenv("SLUICE_UNIT_PLANE_SECRET", "ghp_REALREALREALREALREALREALREALREAL1234", 1);
  auto load = rules::load_config_text(
      "listeners:\n  - {name: main, unix: \"" + d.path +
          "/main.sock\", policy: p}\n"
          "policies:\n  p:\n    default: deny\n    credentials:\n"
          "      - {name: gh, hosts: [git.test], secret: {env: SLUICE_UNIT_PLANE_SECRET},\n"
          "         inject: \"Authorization: Basic {basic:x-access-token:{secret}}\", env: [GH_TOKEN, GITHUB_TOKEN]}\n"
          "    git: [{host: git.test, repos: [o/r], push: [refs/heads/agent/*]}]\n"
          "  plain: {default: deny}\n"
          "log: {path: \"\"}\n",
      "t.yaml");
  REQUIRE(load.config);
  Server server;
  REQUIRE(server.start(load.config, 1) == "");
  ControlPlane plane(server, ControlPlane::Options{"", "", d.path + "/sandboxes", "test"});
  REQUIRE(plane.start() == "");
  const std::string secret = "ghp_REALREALREALREALREALREALREALREAL1234";

  ApiResult a = plane.add_sandbox("{\"name\":\"sa\",\"policy\":\"p\"}", PeerCred{});
  ApiResult b = plane.add_sandbox("{\"name\":\"sb\",\"policy\":\"p\"}", PeerCred{});
  ApiResult c = plane.add_sandbox("{\"name\":\"sc\",\"policy\":\"plain\"}", PeerCred{});
  REQUIRE(a.status == 201);
  REQUIRE(b.status == 201);
  REQUIRE(c.status == 201);
  CHECK(c.body.find("credentials") == nullptr);
  for (const ApiResult* r : {&a, &b, &c}) CHECK(r->body.dump().find(secret) == std::string::npos);
  auto stand_in = [](const ApiResult& r) {
    const rules::Json* list = r.body.find("credentials");
    REQUIRE(list != nullptr);
    REQUIRE(list->items().size() == 1);
    const rules::Json& e = list->items()[0];
    CHECK(e.find("name")->as_string() == "gh");
    CHECK(e.find("secret_env")->as_string() == "SLUICE_UNIT_PLANE_SECRET");
    CHECK(e.find("env")->items().size() == 2);
    return e.find("stand_in")->as_string();
  };
  const std::string sa = stand_in(a), sb = stand_in(b);
  CHECK(sa != sb);
  CHECK(sa.size() == secret.size());
  CHECK(sa.rfind("ghp_", 0) == 0);
  // git's extraHeader carries the stand-in, never the secret.
  const rules::Json* git = a.body.find("git_config");
  REQUIRE(git != nullptr);
  REQUIRE(git->items().size() == 1);
  CHECK(git->items()[0].find("url")->as_string() == "https://git.test/");
  CHECK(git->items()[0].find("header")->as_string() ==
        "Authorization: Basic " + rules::base64_encode("x-access-token:" + sa));

  // The sandbox's listener honours its own; the process's index knows both.
  for (const auto& l : plane.config()->listeners)
    if (l.name == "sa") {
      REQUIRE(l.stand_ins.size() == 1);
      CHECK(l.stand_ins[0].second == sa);
    }
  {
    auto index = StandInTable::process().view();
    REQUIRE(index);
    REQUIRE(index->find(sa) != nullptr);
    CHECK(index->find(sa)->sandbox == "sa");
    CHECK(index->find(sb, "sa")->sandbox == "sb");
  }
  // Listing sandboxes shows no stand-in.
  CHECK(plane.sandboxes().body.dump().find(sa) == std::string::npos);

  REQUIRE(plane.remove_sandbox("sa").status == 200);
  {
    auto index = StandInTable::process().view();
    REQUIRE(index);
    CHECK(index->find(sa) == nullptr);
    CHECK(index->find(sb) != nullptr);
  }
  server.stop();
  plane.stop();  // removes sb too
  CHECK_FALSE(StandInTable::process().any());
  CHECK_FALSE(StandInTable::process().view());
}
