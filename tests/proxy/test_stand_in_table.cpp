// The process's table of stand-ins issued to daemon sandboxes: issued per sandbox and credential,
// replaced when the sandbox is made again, forgotten with it; a snapshot taken before a change
// keeps answering as it did.
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

TEST_CASE("StandInTable: issue, reissue, forget; snapshots are immutable") {
  proxy::StandInTable table;
  CHECK(table.current() == nullptr);
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
  auto before = table.current();
  REQUIRE(before != nullptr);
  CHECK(before->size() == 4);
  CHECK(before->find("x " + a[1].second)->sandbox == "a");
  CHECK(before->find(b[0].second, "a")->credential == "gh");

  auto a2 = table.issue("a", creds);  // made again: fresh stand-ins, the old ones unknown
  CHECK(a2[0].second != a[0].second);
  CHECK(table.current()->find(a[0].second) == nullptr);
  CHECK(table.current()->find(a2[0].second) != nullptr);
  CHECK(before->find(a[0].second) != nullptr);  // a snapshot keeps what it had

  table.forget("nope");
  CHECK(table.current()->size() == 4);
  table.forget("a");
  CHECK(table.current()->size() == 2);
  CHECK(table.current()->find(a2[0].second) == nullptr);
  CHECK(table.issue("b", {}).empty());  // no credentials: nothing issued, its old ones gone
  CHECK(table.current() == nullptr);
}
