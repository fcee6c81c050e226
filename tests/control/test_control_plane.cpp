// The control plane over a real Server with one worker: a replaced snapshot is
// retired, never freed while anything holds it, and handed out by take_dead()
// only once nothing does; list replacement and sandboxes change the snapshot in
// force; bad requests are answered as errors without changing anything.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
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
  for (const auto& l : server.listeners()) listed = listed || (l.info->name == "sb" && l.info->sandbox);
  CHECK(listed);
  CHECK(plane.sandboxes().body.find("sandboxes")->items().size() == 1);
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
  {
    auto la = plane.sandbox_listener("sa");
    REQUIRE(la);
    REQUIRE(la->stand_ins.size() == 1);
    CHECK(la->stand_ins[0].second == sa);
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

namespace {

// The listeners that have counters in GET /v1/metrics, over every worker.
std::vector<std::string> counted_listeners(Server& server) {
  auto done = std::make_shared<std::promise<std::vector<std::string>>>();
  auto got = done->get_future();
  server.collect_metrics([done](WorkerMetrics m, std::vector<LoopMax>) {
    std::vector<std::string> names;
    for (const auto& [name, l] : m.listeners) names.push_back(name);
    done->set_value(names);
  });
  REQUIRE(got.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  return got.get();
}

bool counted(Server& server, const std::string& name) {
  auto names = counted_listeners(server);
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Descriptors open in this process (the listing's own included). Opened with open(2), not
// opendir: ThreadSanitizer sees open() make a new descriptor, and so does not mistake a number
// a worker closed and this thread reuses for a race.
size_t open_fds() {
  int fd = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  DIR* dir = ::fdopendir(fd);
  REQUIRE(dir != nullptr);
  size_t n = 0;
  while (const dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.') ++n;
  ::closedir(dir);
  return n;
}

// One request on a unix listener; the answer's X-Sluice-Reason ("" when none).
std::string reason_on(const std::string& path, const std::string& target) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  for (int i = 0; i < 100 && got.find("\r\n\r\n") == std::string::npos; ++i) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto at = got.find("X-Sluice-Reason: ");
  if (at == std::string::npos) return "";
  at += std::strlen("X-Sluice-Reason: ");
  return got.substr(at, got.find("\r\n", at) - at);
}

}  // namespace

TEST_CASE("ControlPlane: sandboxes live outside the snapshot; one descriptor each, freed on removal") {
  TempDir d;
  Server server;
  REQUIRE(server.start(config(d.path), 2) == "");
  ControlPlane plane(server, ControlPlane::Options{"", "", d.path + "/sandboxes", "test"});
  REQUIRE(plane.start() == "");
  auto snapshot = plane.config();
  const auto generation = plane.status().body.find("config")->find("generation")->as_integer(0, 1 << 30);
  const size_t fds = open_fds();
  constexpr int kSandboxes = 40;
  for (int i = 0; i < kSandboxes; ++i)
    REQUIRE(plane.add_sandbox("{\"name\":\"sb" + std::to_string(i) + "\",\"policy\":\"p\"}", PeerCred{}).status == 201);
  // No snapshot was rebuilt: the sandboxes are in the registry, not in the config.
  CHECK(plane.config() == snapshot);
  CHECK(plane.status().body.find("config")->find("generation")->as_integer(0, 1 << 30) == generation);
  CHECK(plane.sandboxes().body.find("sandboxes")->items().size() == kSandboxes);
  // One socket per sandbox, owned by one of the two workers (no copy per worker).
  CHECK(eventually([&] { return open_fds() == fds + kSandboxes; }));
  std::shared_ptr<const ListenerInfo> info;
  for (const auto& l : server.listeners())
    if (l.info->name == "sb7") info = l.info;
  REQUIRE(info);
  REQUIRE(info->sandbox);
  CHECK(info->sandbox->policy == "p");
  CHECK(reason_on(d.path + "/sandboxes/sb7.sock", "d.test:443") == "denied-by-rule");  // its workers accept on it
  CHECK(eventually([&] { return counted(server, "sb7"); }));
  for (int i = 0; i < kSandboxes; ++i) REQUIRE(plane.remove_sandbox("sb" + std::to_string(i)).status == 200);
  // Every socket is closed, every file gone, and the listener's state goes with its last holder.
  CHECK(eventually([&] { return open_fds() == fds; }));
  CHECK(::access((d.path + "/sandboxes/sb7.sock").c_str(), F_OK) != 0);
  CHECK(eventually([&] { return info.use_count() == 1; }));
  CHECK(server.listeners().size() == 1);
  CHECK(eventually([&] { return !counted(server, "sb7"); }));  // nor its counters
  server.stop();
  plane.stop();
}

TEST_CASE("ControlPlane: a sandbox's overlay is validated with clear errors") {
  TempDir d;
  Server server;
  REQUIRE(server.start(config(d.path), 1) == "");
  ControlPlane plane(server, ControlPlane::Options{"", "", d.path + "/sandboxes", "test"});
  REQUIRE(plane.start() == "");
  std::string many = "[";
  for (int i = 0; i < 257; ++i) many += std::string(i ? "," : "") + "\"h" + std::to_string(i) + ".test\"";
  many += "]";
  struct Row {
    std::string overlay;
    int status;
    const char* error;  // a part of the error text
  };
  const Row rows[] = {
      {"[]", 400, "\"overlay\" must be an object"},
      {"{\"allow\": \"a.test\"}", 400, "\"overlay.allow\" must be an array of host patterns"},
      {"{\"allow\": [\"a.test\"], \"paths\": []}", 400, "\"overlay\": unknown key \"paths\""},
      {"{\"deny\": [\"ok.test\", 3]}", 400, "overlay.deny[1] is not a string"},
      {"{\"deny\": [\"ok.test\", \"a.*.b\"]}", 400, "overlay.deny[1]: "},
      {"{\"allow\": " + many + "}", 400, "more than 256 entries"},
      {"{\"allow\": [\"x.test\", \"*.y.test:8443\", \"10.0.0.0/8\"], \"deny\": [\"a.test\"]}", 201, ""},
      {"{}", 201, ""},  // an empty overlay is no overlay
  };
  int n = 0;
  for (const auto& row : rows) {
    CAPTURE(row.overlay);
    ApiResult r = plane.add_sandbox(
        "{\"name\":\"sb" + std::to_string(n++) + "\",\"policy\":\"p\",\"overlay\":" + row.overlay + "}", PeerCred{});
    CHECK(r.status == row.status);
    if (row.status != 201) {
      CHECK(r.body.find("error")->as_string().find(row.error) != std::string::npos);
      CHECK(::access((d.path + "/sandboxes/sb" + std::to_string(n - 1) + ".sock").c_str(), F_OK) != 0);
    }
  }
  // The answer and the listing show the overlay as given.
  auto listed = plane.sandboxes().body.find("sandboxes")->items();
  REQUIRE(listed.size() == 2);
  const rules::Json* ov = listed[0].find("overlay");
  REQUIRE(ov != nullptr);
  CHECK(ov->find("allow")->items().size() == 3);
  CHECK(ov->find("allow")->items()[1].as_string() == "*.y.test:8443");
  CHECK(ov->find("deny")->items()[0].as_string() == "a.test");
  CHECK(listed[1].find("overlay") == nullptr);
  server.stop();
  plane.stop();
}

TEST_CASE("ControlPlane: each overlay applies on its own listener, and sandboxes survive a config replace") {
  TempDir d;
  const std::string file = d.path + "/sluice.yaml";
  auto write = [&](const std::string& allow) {
    std::ofstream(file) << "listeners:\n  - {name: main, unix: \"" + d.path +
                               "/main.sock\", policy: p}\n"
                               "policies:\n  p: {default: deny, allow: [" +
                               allow + "], deny: [d.test]}\nlog: {path: \"\"}\n";
  };
  write("a.test");
  auto load = rules::load_config_file(file);
  REQUIRE(load.config);
  Server server;
  REQUIRE(server.start(load.config, 2) == "");
  ControlPlane plane(server, ControlPlane::Options{file, "", d.path + "/sandboxes", "test"});
  REQUIRE(plane.start() == "");
  REQUIRE(
      plane.add_sandbox(R"({"name":"one","policy":"p","overlay":{"allow":["one.test"],"deny":["a.test"]}})", PeerCred{})
          .status == 201);
  REQUIRE(plane.add_sandbox(R"({"name":"two","policy":"p","overlay":{"deny":["two.test"]}})", PeerCred{}).status ==
          201);
  auto verdict = [&](const char* sandbox, const char* host) {
    return plane.dns_verdict(sandbox, host).body.find("reason")->as_string();
  };
  CHECK(verdict("one", "one.test") == "allowed-by-rule");
  CHECK(verdict("two", "one.test") == "not-in-allowlist");
  CHECK(verdict("one", "a.test") == "denied-by-rule");
  CHECK(verdict("two", "a.test") == "allowed-by-rule");
  // Through the listeners themselves (the worker's judgment): refused by the overlay's deny
  // entry on its own listener only (elsewhere two.test is merely not allowed).
  const std::string one = d.path + "/sandboxes/one.sock", two = d.path + "/sandboxes/two.sock";
  CHECK(reason_on(two, "two.test:443") == "denied-by-rule");
  CHECK(reason_on(one, "two.test:443") == "not-in-allowlist");
  CHECK(reason_on(one, "a.test:443") == "denied-by-rule");

  // A list replacement: the sandboxes keep their listeners and overlays, and see the new list.
  REQUIRE(plane.replace_list("p", rules::PolicyList::Allow, "[\"b.test\"]").status == 200);
  CHECK(verdict("two", "b.test") == "allowed-by-rule");
  CHECK(verdict("one", "one.test") == "allowed-by-rule");
  CHECK(reason_on(two, "two.test:443") == "denied-by-rule");
  // A reload from the file: the same.
  write("c.test");
  REQUIRE(plane.reload().status == 200);
  CHECK(verdict("two", "c.test") == "allowed-by-rule");
  CHECK(verdict("two", "b.test") == "not-in-allowlist");
  CHECK(verdict("one", "one.test") == "allowed-by-rule");
  CHECK(reason_on(one, "a.test:443") == "denied-by-rule");
  CHECK(reason_on(two, "two.test:443") == "denied-by-rule");
  CHECK(plane.sandboxes().body.find("sandboxes")->items().size() == 2);
  server.stop();
  plane.stop();
}
