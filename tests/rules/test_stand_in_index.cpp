// The index of every stand-in a daemon issued: found anywhere in a text, in Basic credentials and
// in raw bytes, with the asking sandbox's own left out; the search costs the same for many.
#include <doctest/doctest.h>

#include <string>

#include "rules/credentials.hpp"
#include "rules/gateway_credential.hpp"
#include "rules/stand_in_index.hpp"

using namespace sluice::rules;

TEST_CASE("StandInIndex: a stand-in anywhere in a text, whichever sandbox holds it") {
  StandInIndex index;
  const std::string a = make_stand_in("ghp_" + std::string(36, 'x'));
  const std::string b = make_stand_in("ghp_" + std::string(36, 'y'));
  index.add({"sb-a", "gh", a});
  index.add({"sb-b", "gh", b});
  index.add({"sb-c", "short", "tiny-one"});                // shorter than the key: still found
  index.add({"sb-d", "odd", "not-random-at-the-end:-)"});  // a tail that is not letters and digits
  REQUIRE(index.size() == 4);

  struct Row {
    std::string text;
    const char* sandbox;  // expected owner, or null for no match
  };
  const Row rows[] = {
      {a, "sb-a"},
      {"Bearer " + a, "sb-a"},
      {"token " + b + " trailing", "sb-b"},
      {"x" + b, "sb-b"},  // glued to other letters
      {b + "xyz", "sb-b"},
      {"say not-random-at-the-end:-) now", "sb-d"},
      {a.substr(0, a.size() - 1), nullptr},
      {a.substr(1), nullptr},
      {"", nullptr},
      {"nothing here at all, not even close to a stand-in", nullptr},
      {"a tiny-one here", "sb-c"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.text);
    const IssuedStandIn* s = index.find(r.text);
    if (r.sandbox == nullptr) {
      CHECK(s == nullptr);
    } else {
      REQUIRE(s != nullptr);
      CHECK(s->sandbox == r.sandbox);
      const std::string owner = r.sandbox;
      CHECK(s->credential == (owner == "sb-c" ? "short" : owner == "sb-d" ? "odd" : "gh"));
    }
  }
  // The asking sandbox's own stand-in is not foreign.
  CHECK(index.find("Bearer " + a, "sb-a") == nullptr);
  REQUIRE(index.find("Bearer " + a, "sb-b") != nullptr);
  const std::string both = a + " " + b;
  REQUIRE(index.find(both, "sb-a") != nullptr);
  CHECK(index.find(both, "sb-a")->sandbox == "sb-b");
}

TEST_CASE("StandInIndex: inside Basic credentials and in a tunnel's first bytes") {
  StandInIndex index;
  const std::string a = make_stand_in("glpat-" + std::string(30, 'q'));
  index.add({"sb-a", "gl", a});
  const std::string basic = "Basic " + base64_encode("x-access-token:" + a);
  REQUIRE(index.find_header(basic) != nullptr);
  CHECK(index.find(basic) == nullptr);  // only decoding finds it
  CHECK(index.find_header(basic, "sb-a") == nullptr);
  const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: basic " + base64_encode("u:" + a) + "\r\n\r\n";
  REQUIRE(index.find_bytes(head) != nullptr);
  CHECK(index.find_bytes("GET / HTTP/1.1\r\nAuthorization: Basic " + base64_encode("u:p") + "\r\n\r\n") == nullptr);
}

TEST_CASE("StandInIndex: 20,000 stand-ins, each found, none in a text without them") {
  StandInIndex index;
  std::vector<std::string> values;
  for (int i = 0; i < 20000; ++i) {
    values.push_back(make_stand_in("sk-" + std::string(40, 'k')));
    index.add({"sb-" + std::to_string(i / 2), "c" + std::to_string(i % 2), values.back()});
  }
  for (int i = 0; i < 20000; i += 997) {
    const IssuedStandIn* s = index.find("X-Api-Key: " + values[i]);
    REQUIRE(s != nullptr);
    CHECK(s->value == values[i]);
  }
  CHECK(index.find(std::string(8192, 'a')) == nullptr);
}

TEST_CASE("StandInIndex: removing an entry leaves the others") {
  StandInIndex index;
  const std::string a = make_stand_in("ghp_" + std::string(36, 'x'));
  const std::string b = make_stand_in("ghp_" + std::string(36, 'x'));
  index.add({"sa", "gh", a});
  index.add({"sb", "gh", b});
  index.add({"sc", "odd", "short-one"});
  CHECK_FALSE(index.remove("sb", a));  // not that sandbox's
  CHECK(index.remove("sa", a));
  CHECK_FALSE(index.remove("sa", a));
  CHECK(index.size() == 2);
  CHECK(index.find(a) == nullptr);
  CHECK(index.find(b) != nullptr);
  CHECK(index.remove("sc", "short-one"));
  CHECK(index.find("a short-one") == nullptr);
  CHECK(index.remove("sb", b));
  CHECK(index.empty());
}
