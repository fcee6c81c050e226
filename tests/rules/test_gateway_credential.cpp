// The credential gateway's policy part: inject templates, stand-ins, secret commands, and the
// `credentials:` config with its errors.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "rules/config.hpp"
#include "rules/credentials.hpp"
#include "rules/gateway_credential.hpp"

using namespace sluice::rules;

TEST_CASE("inject templates: the header name, {secret} and {basic:USER:{secret}}") {
  auto t = parse_inject_template("Authorization: Basic {basic:x-access-token:{secret}}");
  REQUIRE(t.ok());
  CHECK(t->first == "Authorization");
  CHECK(render_inject(t->second, "tok") == "Basic " + base64_encode("x-access-token:tok"));
  auto b = parse_inject_template("X-Api-Key:{secret}");
  REQUIRE(b.ok());
  CHECK(render_inject(b->second, "s3") == "s3");
  CHECK(render_inject("Bearer {secret}", "abc") == "Bearer abc");
  for (const char* bad : {"Authorization Bearer {secret}", ": {secret}", "Bad Name: {secret}", "X: no placeholder",
                          "X: {secrets}", "X: {other} {secret}", "X: a\x01{secret}"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_inject_template(bad).ok());
  }
}

TEST_CASE("stand-ins keep a token's prefix and length, and are random") {
  const std::string real = "ghp_" + std::string(36, 'A');
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    std::string s = make_stand_in(real);
    CHECK(s.size() == real.size());
    CHECK(s.rfind("ghp_", 0) == 0);
    CHECK(s != real);
    for (char c : s.substr(4)) CHECK(std::isalnum(static_cast<unsigned char>(c)));
    seen.insert(s);
  }
  CHECK(seen.size() == 50);
  CHECK(make_stand_in("sk-ant-api03-" + std::string(90, 'x')).rfind("sk-ant-api03-", 0) == 0);
  CHECK(make_stand_in("github_pat_11AB").rfind("github_pat_", 0) == 0);
  CHECK(make_stand_in("short").size() == 24);  // never fewer than 24 random characters
  CHECK(make_stand_in("").size() == 24);
}

TEST_CASE("find_stand_in names the credential whose stand-in occurs") {
  GatewayCredential a, b;
  a.name = "a";
  b.name = "b";
  std::vector<StandIn> s{{"AAAA1111", &a}, {"BBBB2222", &b}};
  CHECK(find_stand_in("Bearer BBBB2222", s)->credential == &b);
  CHECK(find_stand_in("/x?t=AAAA1111&y", s)->credential == &a);
  CHECK(find_stand_in("nothing here", s) == nullptr);
}

TEST_CASE("a stand-in inside HTTP Basic credentials is found, and replaced there") {
  GatewayCredential a, b;
  a.name = "a";
  b.name = "b";
  std::vector<StandIn> s{{"AAAA1111", &a}, {"BBBB2222", &b}};
  // git sends a password from a credential helper or an extraHeader as Basic user:password.
  CHECK(find_stand_in_header("Basic " + base64_encode("x-access-token:BBBB2222"), s)->credential == &b);
  CHECK(find_stand_in_header("basic\t" + base64_encode("AAAA1111:x"), s)->credential == &a);
  CHECK(find_stand_in_header("Bearer AAAA1111", s)->credential == &a);
  CHECK(find_stand_in_header("Basic " + base64_encode("x-access-token:other"), s) == nullptr);
  CHECK(find_stand_in_header("Basic !!!notbase64", s) == nullptr);
  CHECK(find_stand_in("Basic " + base64_encode("x-access-token:BBBB2222"), s) == nullptr);  // raw search only

  // A tunnel's first bytes: raw, or inside Basic credentials of a request carried in it.
  const std::string req =
      "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: BASIC " + base64_encode("u:BBBB2222") + "\r\n\r\n";
  CHECK(find_stand_in_bytes(req, s)->credential == &b);
  CHECK(find_stand_in_bytes("token=AAAA1111", s)->credential == &a);
  CHECK(find_stand_in_bytes("basic\r\n" + base64_encode("u:BBBB2222"), s) == nullptr);  // not a Basic value
  CHECK(find_stand_in_bytes("Authorization: Basic " + base64_encode("u:other") + "\r\n", s) == nullptr);
  CHECK(find_stand_in_bytes("basic", s) == nullptr);

  CHECK(replace_stand_in("Bearer AAAA1111", "AAAA1111", "real") == "Bearer real");
  CHECK(replace_stand_in("Basic " + base64_encode("x-access-token:AAAA1111"), "AAAA1111", "real-secret") ==
        "Basic " + base64_encode("x-access-token:real-secret"));
  CHECK(replace_stand_in("AAAA1111,AAAA1111", "AAAA1111", "AAAA1111x") == "AAAA1111x,AAAA1111x");
  CHECK(replace_stand_in("untouched", "AAAA1111", "real") == "untouched");
}

TEST_CASE("secret commands: stdout's one line, or fail closed without quoting it") {
  auto ok = run_secret_command({"printf", "%s\\n", "s3cr3t"});
  REQUIRE(ok.ok());
  CHECK(ok.value() == "s3cr3t");
  struct Row {
    std::vector<std::string> argv;
    const char* error;
  };
  const Row rows[] = {
      {{"false"}, "command false exited with status 1"},
      {{"true"}, "command true printed nothing"},
      {{"printf", "a\\nb\\n"}, "command printf printed more than one line"},
      {{"/nonexistent/secret-tool"}, "could not be run"},
      {{"sh", "-c", "kill -9 $$"}, "was killed by signal 9"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.argv.front());
    auto r = run_secret_command(row.argv);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find(row.error) != std::string::npos);
  }
}

TEST_CASE("credentials: config loads every source and inject form, errors name the entry") {
  ::setenv("SLUICE_UNIT_SECRET", "ghp_unit", 1);
  ConfigLoad load = load_config_text(R"(listeners:
  - {name: a, tcp: 127.0.0.1:3128}
policies:
  default:
    credentials:
      - {name: gh, hosts: [github.test, "*.github.test"], secret: {env: SLUICE_UNIT_SECRET},
         inject: "Authorization: Bearer {secret}", env: [GH_TOKEN]}
      - {name: api, hosts: [api.test], secret: {command: [printf, "k9"]}, inject: replace}
)",
                                     "c.yaml");
  std::string errors;
  for (const auto& e : load.errors) errors += e.to_string() + "\n";
  INFO(errors);
  REQUIRE(load.config);
  const auto& creds = load.config->policy("default")->credentials;
  REQUIRE(creds.size() == 2);
  CHECK(creds[0]->secret == "ghp_unit");
  CHECK(creds[0]->secret_env == "SLUICE_UNIT_SECRET");
  CHECK(creds[0]->header_name == "Authorization");
  CHECK(creds[0]->env == std::vector<std::string>{"GH_TOKEN"});
  CHECK(creds[0]->hosts.match(canonicalize_host("x.github.test").value(), 443) != nullptr);
  CHECK(creds[1]->secret == "k9");
  CHECK(creds[1]->replace);

  const std::string L = "listeners:\n  - {name: a, tcp: 127.0.0.1:3128}\npolicies:\n  p:\n    credentials:\n";
  struct Row {
    std::string text;
    const char* message;
  };
  const Row rows[] = {
      {L + "      - {hosts: [a.test], secret: x, inject: replace}\n", "entry needs name: NAME"},
      {L + "      - {name: n, secret: x, inject: replace}\n", "'n' needs hosts:"},
      {L + "      - {name: n, hosts: [a.test], inject: replace}\n", "'n' needs secret:"},
      {L + "      - {name: n, hosts: [a.test], secret: x}\n", "'n' needs inject:"},
      {L + "      - {name: n, hosts: [a.test], secret: x, inject: \"Auth {secret}\"}\n", "inject must be"},
      {L + "      - {name: n, hosts: [a.test], secret: {command: [false]}, inject: replace}\n",
       "command false exited with status 1"},
      {L + "      - {name: n, hosts: [a.test], secret: {env: SLUICE_UNIT_UNSET_VAR}, inject: replace}\n",
       "SLUICE_UNIT_UNSET_VAR is not set"},
      {L + "      - {name: n, hosts: [a.test], secret: x, inject: replace, env: [\"A=B\"]}\n",
       "is not a variable name"},
      {L + "      - {name: n, hosts: [a.test], secret: x, inject: replace}\n      - {name: n, hosts: [b.test], "
           "secret: y, inject: replace}\n",
       "'n' is named twice"},
      {L + "      - {name: n, hosts: [a.test], secret: x, inject: replace, extra: 1}\n", "unknown key 'extra'"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    ConfigLoad bad = load_config_text(row.text, "c.yaml");
    REQUIRE_FALSE(bad.errors.empty());
    CHECK(bad.errors.front().message.find(row.message) != std::string::npos);
    CHECK(bad.errors.front().line > 0);
  }
}
