// replace_body: the streaming swap of stand-ins for secrets in request bodies, split at every
// point, and its config with the errors it names.
#include <doctest/doctest.h>

#include <string>

#include "rules/body_replace.hpp"
#include "rules/config.hpp"
#include "rules/gateway_credential.hpp"

using namespace sluice::rules;

namespace {
std::string run(BodyReplacer& r, const std::string& body, size_t piece) {
  std::string out;
  for (size_t at = 0; at < body.size(); at += piece) out += r.feed(std::string_view(body).substr(at, piece));
  return out + r.finish();
}
}  // namespace

TEST_CASE("BodyReplacer: every stand-in becomes its secret, however the body is cut") {
  const std::string sa = "sk-AAAAAAAAAAAAAAAAAAAAAAAAAAAA", secret_a = "sk-1111111111111111111111111111";
  const std::string sb = "ghp_BBBBBBBBBBBBBBBBBBBBBBBBBBBB", secret_b = "ghp_2222222222222222222222222222";
  REQUIRE(sa.size() == secret_a.size());
  REQUIRE(sb.size() == secret_b.size());
  const std::string body = sa + "{\"key\":\"" + sa + "\",\"other\":\"" + sb + "\"}" + sb + sa.substr(0, 10) + "x" + sa;
  const std::string want = secret_a + "{\"key\":\"" + secret_a + "\",\"other\":\"" + secret_b + "\"}" + secret_b +
                           sa.substr(0, 10) + "x" + secret_a;
  for (size_t piece = 1; piece <= body.size(); ++piece) {
    CAPTURE(piece);
    BodyReplacer r;
    r.add(sa, secret_a);
    r.add(sb, secret_b);
    CHECK(run(r, body, piece) == want);
    CHECK(r.replaced() == 5);
    CHECK(r.bytes_in() == body.size());
  }
  // Every split point of a two-piece body.
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    BodyReplacer r;
    r.add(sa, secret_a);
    r.add(sb, secret_b);
    std::string out = r.feed(std::string_view(body).substr(0, cut));
    out += r.feed(std::string_view(body).substr(cut));
    CHECK(out + r.finish() == want);
  }
}

TEST_CASE("BodyReplacer: holds back no more than a stand-in can span, and nothing without one") {
  BodyReplacer r;
  r.add("0123456789abcdefXYZ", "secretsecretsecret!");
  std::string out = r.feed(std::string(1000, '.'));
  CHECK(out.size() == 1000 - 18);
  out += r.feed("0123456789");
  CHECK(out.size() == 1000 + 10 - 18);  // always the last 18 bytes held (a stand-in is 19), never more
  out += r.feed("abcdefXYZ!");
  CHECK(out + r.finish() == std::string(1000, '.') + "secretsecretsecret!!");
  BodyReplacer unequal;
  unequal.add("short", "longer-secret");  // refused: the body's length would change
  CHECK(unequal.empty());
}

TEST_CASE("replace_body config: default cap, errors with a place") {
  ::setenv("SLUICE_UNIT_BODY_SECRET", "sk-body-0123456789012345678901234567", 1);
  const std::string L = "listeners:\n  - {name: a, tcp: 127.0.0.1:3128}\npolicies:\n  p:\n    credentials:\n";
  ConfigLoad ok = load_config_text(
      L + "      - {name: n, hosts: [a.test], secret: {env: SLUICE_UNIT_BODY_SECRET}, inject: replace, "
          "replace_body: true}\n      - {name: m, hosts: [a.test], secret: {env: SLUICE_UNIT_BODY_SECRET}, "
          "inject: replace, replace_body: true, replace_body_max_bytes: 4096}\n",
      "c.yaml");
  REQUIRE(ok.errors.empty());
  const auto& creds = ok.config->policy("p")->credentials;
  CHECK(creds[0]->replace_body);
  CHECK(creds[0]->replace_body_max_bytes == kDefaultReplaceBodyMax);
  CHECK(creds[1]->replace_body_max_bytes == 4096);
  CHECK(make_stand_in(creds[0]->secret).size() == creds[0]->secret.size());

  struct Row {
    std::string text;
    const char* message;
  };
  const Row rows[] = {
      {L + "      - {name: n, hosts: [a.test], secret: {env: SLUICE_UNIT_BODY_SECRET}, inject: \"X: {secret}\", "
           "replace_body: true}\n",
       "'n' replace_body goes with inject: replace"},
      {L + "      - {name: n, hosts: [a.test], secret: {env: SLUICE_UNIT_BODY_SECRET}, inject: replace, "
           "replace_body_max_bytes: 10}\n",
       "replace_body_max_bytes needs replace_body: true"},
      {L + "      - {name: n, hosts: [a.test], secret: short-secret, inject: replace, replace_body: true}\n",
       "replace_body needs a secret of at least 24 characters after its prefix"},
      {L + "      - {name: n, hosts: [a.test], secret: {env: SLUICE_UNIT_BODY_SECRET}, inject: replace, "
           "replace_body: yes}\n",
       "replace_body must be true or false"},
      {L + "      - {name: n, hosts: [a.test], secret: {env: SLUICE_UNIT_BODY_SECRET}, inject: replace, "
           "replace_body: true, replace_body_max_bytes: 0}\n",
       "replace_body_max_bytes must be a positive integer up to 268435456"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    ConfigLoad bad = load_config_text(row.text, "c.yaml");
    REQUIRE_FALSE(bad.errors.empty());
    CHECK(bad.errors.front().message.find(row.message) != std::string::npos);
    CHECK(bad.errors.front().line == 6);
    CHECK(bad.errors.front().column > 1);
    // The secret is never quoted in an error.
    CHECK(bad.errors.front().to_string().find("0123456789012345678901234567") == std::string::npos);
  }
}
