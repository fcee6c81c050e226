// A sandbox's policy overlay (POST /v1/sandboxes "overlay"): its entries are judged
// exactly like the policy's own, in the same order: deny entries (either) win, then the
// policy's Lua rules, then allow entries (either), then the default; the DNS verdict of
// transparent mode sees them too; without an overlay nothing changes.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rules/dns_verdict.hpp"
#include "rules/resolved_check.hpp"
#include "tests/rules/lua_support.hpp"

using namespace lua_test;

namespace {

PolicyOverlay overlay(std::vector<std::string> allow, std::vector<std::string> deny) {
  PolicyOverlay o;
  for (auto& a : allow) o.allow.add(parse_pattern(a).value());
  for (auto& d : deny) o.deny.add(parse_pattern(d).value());
  return o;
}

}  // namespace

TEST_CASE("Policy::judge with an overlay: table") {
  auto p = policy({"base.test", "*.shared.test"}, {"blocked.test"});
  PolicyOverlay o = overlay({"extra.test", "blocked.test", "api.other.test:8443"}, {"base.test", "x.shared.test"});
  struct Row {
    const char* host;
    uint16_t port;
    const PolicyOverlay* overlay;
    Action action;
    const char* reason;
    const char* rule;
  };
  const Row rows[] = {
      {"extra.test", 443, &o, Action::Allow, "allowed-by-rule", "extra.test"},    // the overlay's allow entry
      {"extra.test", 443, nullptr, Action::Deny, "not-in-allowlist", "default"},  // only with it
      {"base.test", 443, &o, Action::Deny, "denied-by-rule", "base.test"},        // its deny beats the policy's allow
      {"base.test", 443, nullptr, Action::Allow, "allowed-by-rule", "base.test"},
      {"blocked.test", 443, &o, Action::Deny, "denied-by-rule", "blocked.test"},  // the policy's deny beats its allow
      {"y.shared.test", 443, &o, Action::Allow, "allowed-by-rule", "*.shared.test"},
      {"x.shared.test", 443, &o, Action::Deny, "denied-by-rule", "x.shared.test"},
      {"api.other.test", 8443, &o, Action::Allow, "allowed-by-rule", "api.other.test:8443"},
      {"api.other.test", 443, &o, Action::Deny, "not-in-allowlist", "default"},  // ports as in a policy
      {"EXTRA.test.", 443, &o, Action::Allow, "allowed-by-rule", "extra.test"},  // canonical names
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    CAPTURE(row.port);
    Verdict v = p->judge(host(row.host), row.port, row.overlay);
    CHECK(v.action == row.action);
    CHECK(to_string(v.reason) == std::string(row.reason));
    CHECK(v.rule == row.rule);
    CHECK(v.policy == "p");
  }
}

TEST_CASE("ConnectionJudge with an overlay: deny entries, then scripts, then allow entries; report mode") {
  auto p = policy({}, {});
  auto lua = load_one(R"(
    function on_connect(c)
      if c.host == "scripted-deny.test" then return "deny" end
      if c.host == "scripted-allow.test" then return "allow" end
    end)");
  PolicyOverlay o = overlay({"scripted-deny.test", "listed.test"}, {"scripted-allow.test"});
  Judged j(p, lua);
  j.judge->set_overlay(&o);
  CHECK(to_string(j.connect("scripted-allow.test").reason) == std::string("denied-by-rule"));   // deny first
  CHECK(to_string(j.connect("scripted-deny.test").reason) == std::string("denied-by-script"));  // then scripts
  CHECK(to_string(j.connect("listed.test").reason) == std::string("allowed-by-rule"));
  CHECK(to_string(j.connect("other.test").reason) == std::string("not-in-allowlist"));

  p->mode = Policy::Mode::Report;  // the policy's mode covers the overlay's entries too
  Judged r(p, nullptr);
  r.judge->set_overlay(&o);
  Verdict v = r.connect("scripted-allow.test");
  CHECK(v.allowed());
  CHECK(v.would_deny);
  CHECK(to_string(v.reason) == std::string("denied-by-rule"));
}

TEST_CASE("dns_verdict with an overlay") {
  auto p = policy({"base.test"}, {});
  PolicyOverlay o = overlay({"extra.test", "port.test:8443"}, {"base.test", "oneport.test:443"});
  CHECK(dns_verdict(*p, host("extra.test"), &o).reason == "allowed-by-rule");
  CHECK(dns_verdict(*p, host("port.test"), &o).resolve);  // allowed on some port
  CHECK_FALSE(dns_verdict(*p, host("extra.test")).resolve);
  CHECK(dns_verdict(*p, host("base.test"), &o).reason == "denied-by-rule");
  CHECK(dns_verdict(*p, host("base.test")).resolve);
  // A deny entry for one port does not hide the name.
  CHECK(dns_verdict(*p, host("oneport.test"), &o).reason == "not-in-allowlist");
}

TEST_CASE("check_resolved with an overlay: its address entries count like the policy's") {
  auto p = policy({}, {});
  PolicyOverlay o = overlay({"127.0.0.1:8080"}, {"198.51.100.7"});
  ResolverConfig rc;
  const std::vector<IpAddr> addrs = {canonicalize_host("127.0.0.1").value().addr,
                                     canonicalize_host("198.51.100.7").value().addr};
  auto with = check_resolved(*p, rc, {}, addrs, 8080, &o);
  REQUIRE(with.dialable.size() == 1);
  CHECK(with.dialable[0].to_string() == "127.0.0.1");  // listed by the overlay: an explicit choice
  CHECK(with.refused_class == "deny-listed");          // the overlay's deny entry
  auto without = check_resolved(*p, rc, {}, addrs, 8080);
  REQUIRE(without.dialable.size() == 1);
  CHECK(without.dialable[0].to_string() == "198.51.100.7");
  CHECK(without.refused_class == "loopback");
  CHECK(check_resolved(*p, rc, {}, addrs, 9090, &o).dialable.empty());  // another port: not listed
}
