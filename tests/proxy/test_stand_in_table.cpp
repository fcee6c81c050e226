// The process's table of stand-ins issued to daemon sandboxes: issued per sandbox and credential,
// replaced when the sandbox is made again, forgotten with it, each change touching only that
// sandbox's entries.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/stand_in_table.hpp"

using namespace sluice;

namespace {
std::shared_ptr<const rules::GatewayCredential> credential(const std::string& name, const std::string& secret) {
  auto c = std::make_shared<rules::GatewayCredential>();
  c->name = name;
  c->secret = secret;
  return c;
}
}  // namespace

TEST_CASE("StandInTable: issue, reissue, forget") {
  proxy::StandInTable table;
  CHECK_FALSE(table.any());
  CHECK_FALSE(table.view());
  const std::vector<std::shared_ptr<const rules::GatewayCredential>> creds = {
      credential("gh", "ghp_" + std::string(36, 'x')), credential("api", "sk-" + std::string(40, 'y'))};
  auto a = table.issue("a", creds);
  auto b = table.issue("b", creds);
  REQUIRE(a.size() == 2);
  CHECK(a[0].first == "gh");
  CHECK(a[0].second.rfind("ghp_", 0) == 0);
  CHECK(a[0].second.size() == 40);
  CHECK(a[1].first == "api");
  CHECK(a[0].second != b[0].second);
  CHECK(table.any());
  {
    auto v = table.view();
    REQUIRE(v);
    CHECK(v->size() == 4);
    CHECK(v->find("x " + a[1].second)->sandbox == "a");
    CHECK(v->find(b[0].second, "a")->credential == "gh");
  }
  auto a2 = table.issue("a", creds);  // made again: fresh stand-ins, the old ones unknown
  CHECK(a2[0].second != a[0].second);
  CHECK(table.view()->size() == 4);
  CHECK(table.view()->find(a[0].second) == nullptr);
  CHECK(table.view()->find(a2[0].second) != nullptr);

  table.forget("nope");
  CHECK(table.view()->size() == 4);
  table.forget("a");
  CHECK(table.view()->size() == 2);
  CHECK(table.view()->find(a2[0].second) == nullptr);
  CHECK(table.view()->find(b[1].second)->sandbox == "b");
  CHECK(table.issue("b", {}).empty());  // no credentials: nothing issued, its old ones gone
  CHECK_FALSE(table.any());
  CHECK_FALSE(table.view());
}

TEST_CASE("StandInTable: 10,000 sandboxes come and go, each change touching its own entries") {
  proxy::StandInTable table;
  const std::vector<std::shared_ptr<const rules::GatewayCredential>> creds = {
      credential("gh", "ghp_" + std::string(36, 'x'))};
  std::vector<std::string> values;
  for (int i = 0; i < 10000; ++i) values.push_back(table.issue("sb-" + std::to_string(i), creds)[0].second);
  CHECK(table.view()->size() == 10000);
  for (int i = 0; i < 10000; i += 2) table.forget("sb-" + std::to_string(i));
  auto v = table.view();
  CHECK(v->size() == 5000);
  CHECK(v->find(values[0]) == nullptr);
  REQUIRE(v->find(values[9999]) != nullptr);
  CHECK(v->find(values[9999])->sandbox == "sb-9999");
}
