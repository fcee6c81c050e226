// Parent proxies: the URL model, the handshake bytes, and `upstream_proxy:` in the config
// (global, per policy, `direct`, bypass, credentials from the URL, env or a file).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "rules/config.hpp"
#include "rules/upstream_proxy.hpp"

using namespace sluice::rules;

namespace {
std::string all_errors(const ConfigLoad& load) {
  std::string out;
  for (const auto& e : load.errors) out += e.to_string() + "\n";
  return out;
}
const char* kListener = "listeners: [{name: a, tcp: \"127.0.0.1:1\"}]\n";
}  // namespace

TEST_CASE("upstream proxy URLs: one row per form") {
  struct Row {
    const char* url;
    bool ok;
    UpstreamProxy::Scheme scheme;
    const char* host;
    uint16_t port;
    const char* user;
    const char* pass;
  };
  using S = UpstreamProxy::Scheme;
  const Row rows[] = {
      {"http://proxy.corp:3128", true, S::Http, "proxy.corp", 3128, nullptr, nullptr},
      {"HTTP://proxy.corp:3128/", true, S::Http, "proxy.corp", 3128, nullptr, nullptr},
      {"http://alice:s%40cret@10.0.0.1:8080", true, S::Http, "10.0.0.1", 8080, "alice", "s@cret"},
      {"socks5://127.0.0.1:1080", true, S::Socks5, "127.0.0.1", 1080, nullptr, nullptr},
      {"socks5h://u:p@[::1]:1080", true, S::Socks5h, "::1", 1080, "u", "p"},
      {"https://proxy:3128", false, S::Http, "", 0, nullptr, nullptr},
      {"proxy:3128", false, S::Http, "", 0, nullptr, nullptr},
      {"http://proxy", false, S::Http, "", 0, nullptr, nullptr},
      {"http://proxy:0", false, S::Http, "", 0, nullptr, nullptr},
      {"http://proxy:3128/path", false, S::Http, "", 0, nullptr, nullptr},
      {"http://alice@proxy:3128", false, S::Http, "", 0, nullptr, nullptr},
      {"http://alice:%zz@proxy:3128", false, S::Http, "", 0, nullptr, nullptr},
  };
  for (const auto& row : rows) {
    INFO(row.url);
    auto r = parse_upstream_proxy_url(row.url);
    REQUIRE(r.ok() == row.ok);
    if (!row.ok) continue;
    CHECK(r->scheme == row.scheme);
    CHECK(r->host == row.host);
    CHECK(r->port == row.port);
    CHECK(r->auth.has_value() == (row.user != nullptr));
    if (row.user) {
      CHECK(r->auth->username == row.user);
      CHECK(r->auth->password == row.pass);
    }
  }
}

TEST_CASE("an upstream proxy URL error never quotes the password") {
  auto r = parse_upstream_proxy_url("http://alice:hunter2secret@proxy");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find("hunter2secret") == std::string::npos);
  auto ok = parse_upstream_proxy_url("http://alice:hunter2secret@proxy:1");
  REQUIRE(ok.ok());
  CHECK(ok->display() == "http://proxy:1");
}

TEST_CASE("HTTP parent bytes: CONNECT, status line, absolute-form") {
  Credentials c{"alice", "pw"};
  CHECK(http_connect_request("example.com:443", std::nullopt) ==
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  CHECK(http_connect_request("example.com:443", c) ==
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic YWxpY2U6cHc=\r\n\r\n");
  std::string reason;
  CHECK(http_reply_status("HTTP/1.1 200 Connection established\r\n\r\n", &reason) == 200);
  CHECK(reason == "Connection established");
  CHECK(http_reply_status("HTTP/1.0 407 Proxy Authentication Required\r\nX: y\r\n\r\n") == 407);
  CHECK(http_reply_status("HTTP/1.1 502\r\n\r\n") == 502);
  CHECK(http_reply_status("SSH-2.0-x\r\n\r\n") == 0);
  CHECK(http_reply_status("HTTP/1.1 2x0 ok\r\n\r\n") == 0);
  CHECK(to_parent_form("GET /a?b HTTP/1.1\r\nHost: h:8080\r\n\r\n", "h:8080", std::nullopt) ==
        "GET http://h:8080/a?b HTTP/1.1\r\nHost: h:8080\r\n\r\n");
  CHECK(to_parent_form("GET / HTTP/1.1\r\nHost: h\r\n\r\n", "h", c) ==
        "GET http://h/ HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6cHc=\r\nHost: h\r\n\r\n");
}

TEST_CASE("SOCKS5 parent bytes") {
  CHECK(socks5_greeting(false) == std::string("\x05\x01\x00", 3));
  CHECK(socks5_greeting(true) == std::string("\x05\x02\x00\x02", 4));
  CHECK(socks5_auth_request({"ab", "xyz"}) == std::string("\x01\x02"
                                                          "ab\x03"
                                                          "xyz",
                                                          8));
  CHECK(socks5_connect_request("a.io", std::nullopt, 443) == std::string("\x05\x01\x00\x03\x04"
                                                                         "a.io\x01\xbb",
                                                                         11));
  CHECK(socks5_connect_request("", IpAddr::parse("10.1.2.3"), 80) ==
        std::string("\x05\x01\x00\x01\x0a\x01\x02\x03\x00\x50", 10));
  CHECK(socks5_connect_request("", IpAddr::parse("::1"), 80).size() == 4 + 16 + 2);
  CHECK(socks5_reply_length(std::string("\x05\x00\x00\x01\x7f", 5)) == 10);
  CHECK(socks5_reply_length(std::string("\x05\x00\x00\x04\x00", 5)) == 22);
  CHECK(socks5_reply_length(std::string("\x05\x00\x00\x03\x03", 5)) == 4 + 1 + 3 + 2);
  CHECK(socks5_reply_length(std::string("\x05\x00\x00\x09\x00", 5)) == 0);
  CHECK(socks5_reply_length(std::string("\x04\x00\x00\x01\x00", 5)) == 0);
}

TEST_CASE("config: a global parent, a policy's own, and direct") {
  ConfigLoad load = load_config_text(std::string(kListener) +
                                         "upstream_proxy:\n"
                                         "  url: http://proxy.corp:3128\n"
                                         "  bypass: [\"*.corp.example\", 10.0.0.0/8]\n"
                                         "policies:\n"
                                         "  default: {allow: [a.io]}\n"
                                         "  socks: {upstream_proxy: \"socks5h://127.0.0.1:1080\"}\n"
                                         "  plain: {upstream_proxy: direct}\n",
                                     "t.yaml");
  INFO(all_errors(load));
  REQUIRE(load.config);
  const Config& cfg = *load.config;
  const UpstreamProxy* global = cfg.upstream_for(cfg.policy("default"));
  REQUIRE(global != nullptr);
  CHECK(global->display() == "http://proxy.corp:3128");
  CHECK(global->bypassed(canonicalize_host("git.corp.example").value(), 443));
  CHECK(global->bypassed(canonicalize_host("10.1.2.3").value(), 443));
  CHECK_FALSE(global->bypassed(canonicalize_host("corp.example").value(), 443));
  CHECK_FALSE(global->bypassed(canonicalize_host("a.io").value(), 443));
  const UpstreamProxy* own = cfg.upstream_for(cfg.policy("socks"));
  REQUIRE(own != nullptr);
  CHECK(own->scheme == UpstreamProxy::Scheme::Socks5h);
  CHECK(cfg.upstream_for(cfg.policy("plain")) == nullptr);
}

TEST_CASE("config: parent credentials from the URL, env and a file, never in errors") {
  ::setenv("SLUICE_TEST_PARENT_PW", "from-env-pw", 1);
  ConfigLoad env = load_config_text(
      std::string(kListener) +
          "upstream_proxy: {url: \"http://p:1\", username: bob, password: {env: SLUICE_TEST_PARENT_PW}}\n",
      "t.yaml");
  INFO(all_errors(env));
  REQUIRE(env.config);
  REQUIRE(env.config->upstream_proxy->auth);
  CHECK(env.config->upstream_proxy->auth->password == "from-env-pw");

  const std::string path = "/tmp/sluice-test-parent-pw-" + std::to_string(::getpid());
  { std::ofstream(path) << "from-file-pw\n"; }
  ConfigLoad file =
      load_config_text(std::string(kListener) +
                           "upstream_proxy: {url: \"socks5://p:1\", username: bob, password: {file: " + path + "}}\n",
                       "t.yaml");
  std::remove(path.c_str());
  INFO(all_errors(file));
  REQUIRE(file.config);
  CHECK(file.config->upstream_proxy->auth->password == "from-file-pw");
}

TEST_CASE("config: upstream_proxy errors carry file:line:column") {
  struct Row {
    std::string text;
    std::string error;
  };
  const Row rows[] = {
      {"upstream_proxy: ftp://p:1\n",
       "t.yaml:2:17: upstream_proxy: upstream proxy scheme must be http, socks5 or socks5h, not 'ftp'"},
      {"upstream_proxy: {url: \"http://p:1\", bypass: [\"*\"]}\n", "t.yaml:2:46: upstream_proxy bypass: "},
      {"upstream_proxy: {bypass: []}\n", "t.yaml:2:17: upstream_proxy needs a url"},
      {"upstream_proxy: {url: \"http://p:1\", user: x}\n", "t.yaml:2:37: unknown key 'user' in upstream_proxy"},
      {"upstream_proxy: {url: \"http://p:1\", username: x, password: {env: SLUICE_TEST_UNSET_VAR}}\n",
       "t.yaml:2:66: upstream_proxy password: environment variable SLUICE_TEST_UNSET_VAR is not set"},
      {"upstream_proxy: {url: \"http://p:1\", username: x}\n",
       "t.yaml:2:17: upstream_proxy needs both username and password"},
      {"policies:\n  default: {upstream_proxy: \"socks4://p:1\"}\n",
       "t.yaml:3:29: policy 'default' upstream_proxy: upstream proxy scheme"},
  };
  ::unsetenv("SLUICE_TEST_UNSET_VAR");
  for (const auto& row : rows) {
    ConfigLoad load = load_config_text(std::string(kListener) + row.text, "t.yaml");
    std::string errors = all_errors(load);
    INFO(row.text << " -> " << errors);
    CHECK_FALSE(load.config);
    CHECK(errors.find(row.error) == 0);
  }
}

TEST_CASE("config: a policy's parent with credentials from env and a bypass list") {
  ::setenv("SLUICE_TEST_PARENT_PW2", "pw2", 1);
  ConfigLoad load = load_config_text(std::string(kListener) +
                                         "policies:\n"
                                         "  p:\n"
                                         "    allow: [a.io]\n"
                                         "    upstream_proxy:\n"
                                         "      url: http://127.0.0.1:3128\n"
                                         "      username: corp\n"
                                         "      password: {env: SLUICE_TEST_PARENT_PW2}\n"
                                         "      bypass: [b.io]\n",
                                     "t.yaml");
  INFO(all_errors(load));
  REQUIRE(load.config);
  const UpstreamProxy* up = load.config->upstream_for(load.config->policy("p"));
  REQUIRE(up != nullptr);
  REQUIRE(up->auth);
  CHECK(up->auth->username == "corp");
  CHECK(up->auth->password == "pw2");
  CHECK(up->bypassed(canonicalize_host("b.io").value(), 80));
}

namespace {
const char* fake_env_https(const char* n) {
  std::string k = n;
  if (k == "HTTPS_PROXY") return "proxy.corp:3128";
  if (k == "HTTP_PROXY") return "http://other:1";
  return nullptr;
}
const char* fake_env_http_lower(const char* n) {
  return std::string(n) == "http_proxy" ? "socks5h://u:p@s:1080" : nullptr;
}
const char* fake_env_none(const char*) { return nullptr; }
const char* fake_env_bad(const char* n) { return std::string(n) == "HTTPS_PROXY" ? "http://u:topsecret@h" : nullptr; }
}  // namespace

TEST_CASE("--upstream-proxy-from-env: HTTPS_PROXY first, then HTTP_PROXY; no scheme means http") {
  auto a = upstream_proxy_from_env(fake_env_https);
  REQUIRE(a.ok());
  CHECK(a->display() == "http://proxy.corp:3128");
  auto b = upstream_proxy_from_env(fake_env_http_lower);
  REQUIRE(b.ok());
  CHECK(b->scheme == UpstreamProxy::Scheme::Socks5h);
  CHECK(b->auth->password == "p");
  auto c = upstream_proxy_from_env(fake_env_none);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error() == "neither HTTPS_PROXY nor HTTP_PROXY is set");
  auto d = upstream_proxy_from_env(fake_env_bad);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().find("topsecret") == std::string::npos);
}

namespace {
const char* fake_env_no_proxy(const char* n) {
  const std::string k = n;
  if (k == "HTTPS_PROXY") return "http://proxy.corp:3128";
  if (k == "NO_PROXY") return "localhost, .corp.example,10.0.0.0/8 ,db.internal:5432";
  return nullptr;
}
const char* fake_env_no_proxy_star(const char* n) {
  const std::string k = n;
  return k == "HTTPS_PROXY" ? "http://proxy.corp:3128" : k == "no_proxy" ? "*" : nullptr;
}
bool bypassed(const UpstreamProxy& p, const char* host, uint16_t port) {
  auto h = sluice::rules::canonicalize_host(host);
  REQUIRE(h.ok());
  return p.bypassed(h.value(), port);
}
}  // namespace

TEST_CASE("--upstream-proxy-from-env: NO_PROXY becomes the bypass list, curl's reading") {
  auto p = upstream_proxy_from_env(fake_env_no_proxy);
  REQUIRE(p.ok());
  REQUIRE(p->bypass != nullptr);
  CHECK(bypassed(p.value(), "localhost", 80));
  CHECK(bypassed(p.value(), "corp.example", 443));      // ".corp.example" means the name too
  CHECK(bypassed(p.value(), "git.corp.example", 443));  // and its subdomains
  CHECK(bypassed(p.value(), "10.1.2.3", 22));
  CHECK(bypassed(p.value(), "db.internal", 5432));
  CHECK_FALSE(bypassed(p.value(), "db.internal", 5433));
  CHECK_FALSE(bypassed(p.value(), "github.com", 443));
  CHECK_FALSE(bypassed(p.value(), "notcorp.example", 443));
  // Without NO_PROXY there is no bypass at all.
  auto q = upstream_proxy_from_env(fake_env_https);
  REQUIRE(q.ok());
  CHECK(q->bypass == nullptr);
}

TEST_CASE("NO_PROXY: '*' and entries that are no pattern are errors, never dropped") {
  auto star = upstream_proxy_from_env(fake_env_no_proxy_star);
  REQUIRE_FALSE(star.ok());
  CHECK(star.error().find("no_proxy") == 0);
  auto bad = sluice::rules::no_proxy_bypass("ok.example,x..y");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().find("x..y") != std::string::npos);
  auto empty = sluice::rules::no_proxy_bypass(" , ");
  REQUIRE(empty.ok());
  CHECK(empty.value() == nullptr);
}
