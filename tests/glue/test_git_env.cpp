// git inside the jail presents the stand-in (sandbox-glue/git_env.hpp): which credential hosts
// get an http.<url>.extraHeader, its shape, and the GIT_CONFIG_* variables that carry it.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "rules/config.hpp"
#include "rules/credentials.hpp"
#include "sandbox-glue/git_env.hpp"

namespace glue = sluice::glue;
namespace rules = sluice::rules;

namespace {
constexpr const char* kPolicy = R"(
policies:
  default:
    allow: [git.example.com, api.example.com]
    credentials:
      - name: forge
        hosts: [git.example.com, "git.example.com:8443", "*.example.com", api.example.com, 10.0.0.1]
        secret: "ghp_realrealrealrealrealreal"
        inject: "Authorization: Basic {basic:x-access-token:{secret}}"
      - name: swapped
        hosts: [git.example.com]
        secret: "rep-secret-value"
        inject: replace
    git:
      - host: git.example.com
        repos: [org/repo]
        push: ["refs/heads/agent/*"]
      - host: "10.0.0.1"
        repos: [org/repo]
)";

// The loaded config (which owns the policy); its "default" policy is the one under test.
std::shared_ptr<const rules::Config> load_policy(const char* text) {
  auto load = rules::load_config_text(text, "p.yaml", true);
  std::string errors;
  for (const auto& e : load.errors) errors += e.to_string() + "\n";
  INFO(errors);
  REQUIRE(load.config);
  REQUIRE(load.config->policy("default") != nullptr);
  return load.config;
}
}  // namespace

TEST_CASE("git gets the stand-in for the exact hosts a git rule guards, in the template's shape") {
  auto policy = load_policy(kPolicy);
  const std::vector<std::pair<std::string, std::string>> issued{{"forge", "ghp_STANDIN"}, {"swapped", "REPSTANDIN"}};
  auto headers = glue::git_extra_headers(*policy->policy("default"), issued);
  REQUIRE(headers.size() == 2);
  const std::string basic = "Authorization: Basic " + rules::base64_encode("x-access-token:ghp_STANDIN");
  CHECK(headers[0].url == "https://git.example.com/");
  CHECK(headers[0].header == basic);
  CHECK(headers[1].url == "https://git.example.com:8443/");
  CHECK(headers[1].header == basic);
  // api.example.com has no git rule; wildcards, addresses and `replace` credentials get none;
  // the real secret is never in a header.
  for (const auto& h : headers)
    CHECK(h.header.find(rules::base64_encode("x-access-token:ghp_realrealrealrealrealreal")) == std::string::npos);

  // Without git rules, nothing.
  auto plain = load_policy(R"(
policies:
  default:
    credentials:
      - name: forge
        hosts: [git.example.com]
        secret: "s3cret-s3cret"
        inject: "Authorization: Bearer {secret}"
)");
  CHECK(glue::git_extra_headers(*plain->policy("default"), {{"forge", "STANDIN"}}).empty());
}

TEST_CASE("git gets the stand-in where a wildcard credential and a git rule meet") {
  auto policy = load_policy(R"(
policies:
  default:
    credentials:
      - name: corp
        hosts: ["*.corp.test", "*.forge.test", "*.other.test"]
        secret: "corp-secret-corp-secret"
        inject: "Authorization: Bearer {secret}"
    git:
      - host: git.corp.test
        repos: [org/repo]
      - host: "*.forge.test:8443"
        repos: [org/repo]
      - host: "*.elsewhere.test"
        repos: [org/repo]
)");
  auto headers = glue::git_extra_headers(*policy->policy("default"), {{"corp", "STANDIN"}});
  // The git rule's exact host under the credential's wildcard; the wildcard both cover, as git
  // writes it (its port from the git rule); nothing where only one side reaches.
  REQUIRE(headers.size() == 2);
  CHECK(headers[0].url == "https://git.corp.test/");
  CHECK(headers[1].url == "https://*.forge.test:8443/");
  for (const auto& h : headers) CHECK(h.header == "Authorization: Bearer STANDIN");
}

TEST_CASE("GIT_CONFIG_* variables follow the caller's own entries") {
  std::vector<glue::GitExtraHeader> headers{{"https://a.test/", "Authorization: Bearer X"},
                                            {"https://b.test:8443/", "Authorization: Bearer Y"}};
  auto env = glue::git_config_environment(headers, nullptr);
  REQUIRE(env.size() == 5);
  CHECK(env[0] == std::pair<std::string, std::string>{"GIT_CONFIG_KEY_0", "http.https://a.test/.extraHeader"});
  CHECK(env[1] == std::pair<std::string, std::string>{"GIT_CONFIG_VALUE_0", "Authorization: Bearer X"});
  CHECK(env[2] == std::pair<std::string, std::string>{"GIT_CONFIG_KEY_1", "http.https://b.test:8443/.extraHeader"});
  CHECK(env[4] == std::pair<std::string, std::string>{"GIT_CONFIG_COUNT", "2"});
  auto after = glue::git_config_environment(headers, "3");
  CHECK(after[0].first == "GIT_CONFIG_KEY_3");
  CHECK(after.back() == std::pair<std::string, std::string>{"GIT_CONFIG_COUNT", "5"});
  CHECK(glue::git_config_environment(headers, "junk")[0].first == "GIT_CONFIG_KEY_0");
  CHECK(glue::git_config_environment({}, "2").empty());
}
