// Listener credentials: the constant-time comparison's answers, Basic parsing
// and base64, one row per case.
#include <doctest/doctest.h>

#include <string>

#include "rules/credentials.hpp"

using namespace sluice::rules;

TEST_CASE("credentials match only when both fields are exactly equal") {
  const Credentials want{"agent", "s3cret"};
  struct Row {
    const char* user;
    const char* pass;
    bool ok;
  };
  const Row rows[] = {
      {"agent", "s3cret", true},  {"agent", "s3cre", false},  {"agent", "s3cret!", false},
      {"Agent", "s3cret", false}, {"agent", "S3cret", false}, {"", "", false},
      {"agent", "", false},       {"", "s3cret", false},      {"agents3", "cret", false},
  };
  for (const auto& r : rows) {
    CAPTURE(r.user);
    CAPTURE(r.pass);
    CHECK(credentials_match(want, r.user, r.pass) == r.ok);
  }
  // Bytes beyond the first NUL count.
  CHECK_FALSE(credentials_match(want, std::string("agent\0x", 7), "s3cret"));
}

TEST_CASE("base64 decodes strictly and round-trips") {
  struct Row {
    const char* in;
    const char* out;  // nullptr: refused
  };
  const Row rows[] = {
      {"", ""},
      {"YQ==", "a"},
      {"YWI=", "ab"},
      {"YWJj", "abc"},
      {"YWdlbnQ6czNjcmV0", "agent:s3cret"},
      {"YQ=", nullptr},
      {"YQ", nullptr},
      {"Y===", nullptr},
      {"YQ==YQ==", nullptr},
      {"YW J", nullptr},
      {"YW*j", nullptr},
      {"=YWJ", nullptr},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    auto got = base64_decode(r.in);
    if (r.out == nullptr) {
      CHECK_FALSE(got.has_value());
    } else {
      REQUIRE(got.has_value());
      CHECK(*got == r.out);
      CHECK(base64_encode(*got) == r.in);
    }
  }
}

TEST_CASE("Proxy-Authorization Basic values") {
  struct Row {
    const char* header;
    const char* user;  // nullptr: not Basic credentials
    const char* pass;
  };
  const Row rows[] = {
      {"Basic YWdlbnQ6czNjcmV0", "agent", "s3cret"},
      {"basic YWdlbnQ6czNjcmV0", "agent", "s3cret"},
      {"  BASIC   YWdlbnQ6czNjcmV0  ", "agent", "s3cret"},
      {"Basic YTpiOmM=", "a", "b:c"},  // the password may hold colons
      {"Basic OnA=", "", "p"},
      {"Bearer YWdlbnQ6czNjcmV0", nullptr, nullptr},
      {"Basic", nullptr, nullptr},
      {"BasicYWdlbnQ6czNjcmV0", nullptr, nullptr},
      {"Basic bm9jb2xvbg==", nullptr, nullptr},  // "nocolon"
      {"Basic !!!!", nullptr, nullptr},
  };
  for (const auto& r : rows) {
    CAPTURE(r.header);
    auto got = parse_basic_authorization(r.header);
    if (r.user == nullptr) {
      CHECK_FALSE(got.has_value());
      continue;
    }
    REQUIRE(got.has_value());
    CHECK(got->username == r.user);
    CHECK(got->password == r.pass);
  }
}
