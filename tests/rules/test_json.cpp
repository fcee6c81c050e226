// The strict JSON parser behind the control API and the state file: a table of
// good texts and what they hold, a table of bad ones and the error they get, and
// printing that parses back to the same value.
#include <doctest/doctest.h>

#include <string>

#include "rules/json.hpp"

using namespace sluice::rules;

TEST_CASE("Json::parse: values") {
  auto v = Json::parse(R"( {"a": [1, -2.5, 3e2, 0], "b": "x\ny\u00e9\ud83d\ude00", "c": true, "d": null, "e": {}} )");
  REQUIRE(v.ok());
  const Json& j = v.value();
  REQUIRE(j.is_object());
  CHECK(j.members().size() == 5);
  const Json* a = j.find("a");
  REQUIRE(a != nullptr);
  REQUIRE(a->items().size() == 4);
  CHECK(a->items()[0].as_integer(0, 10) == 1);
  CHECK(a->items()[1].as_number() == -2.5);
  CHECK(a->items()[1].as_integer(-10, 10) == std::nullopt);  // not whole
  CHECK(a->items()[2].as_integer(0, 1000) == 300);
  CHECK(a->items()[2].as_integer(0, 299) == std::nullopt);   // out of range
  CHECK(j.find("b")->as_string() == "x\ny\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(j.find("c")->as_bool());
  CHECK(j.find("d")->is_null());
  CHECK(j.find("e")->is_object());
  CHECK(j.find("zz") == nullptr);
  CHECK(Json::parse("[]").value().items().empty());
  CHECK(Json::parse("\"\"").value().as_string().empty());
  CHECK(Json::parse("  7 ").value().as_integer(0, 9) == 7);
  CHECK(Json::parse("\"caf\xc3\xa9\"").value().as_string() == "caf\xc3\xa9");  // raw UTF-8 is kept
}

TEST_CASE("Json::parse: every kind of bad text is an error with its byte offset") {
  struct Row {
    const char* text;
    const char* error;  // a substring
  };
  const Row rows[] = {
      {"", "unexpected end of input"},
      {"   ", "unexpected end of input"},
      {"{", "expected a string key"},
      {"{\"a\" 1}", "expected ':' after an object key"},
      {"{\"a\":1,}", "expected a string key"},
      {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
      {"[1,]", "unexpected character"},
      {"[1 2]", "expected ',' or ']'"},
      {"[1", "unexpected end of input in an array"},
      {"{\"a\":1,\"a\":2}", "duplicate key \"a\""},
      {"tru", "unknown literal"},
      {"nul", "unknown literal"},
      {"01", "unexpected text after the value"},
      {"-", "bad number"},
      {"1.", "no digits after '.'"},
      {"1e", "no digits in the exponent"},
      {"+1", "unexpected character"},
      {"\"abc", "unterminated string"},
      {"\"a\x01\"", "control character in a string"},
      {"\"\\x\"", "unknown escape"},
      {"\"\\u12\"", "short \\u escape"},
      {"\"\\u12zz\"", "bad \\u escape"},
      {"\"\\ud800\"", "lone high surrogate"},
      {"\"\\udc00\"", "lone low surrogate"},
      {"\"\\ud800\\u0041\"", "bad surrogate pair"},
      {"\"\xff\"", "invalid UTF-8"},
      {"\"\xc0\xaf\"", "invalid UTF-8"},          // overlong
      {"\"\xed\xa0\x80\"", "invalid UTF-8"},      // a surrogate, encoded
      {"\"\xe2\x82\"", "invalid UTF-8"},          // truncated
      {"[] []", "unexpected text after the value"},
      {"{} x", "unexpected text after the value"},
      {"// no\n1", "unexpected character"},
      {"NaN", "unexpected character"},
  };
  for (const auto& row : rows) {
    std::string text = row.text;
    CAPTURE(text);
    auto r = Json::parse(text);
    REQUIRE_FALSE(r.ok());
    CAPTURE(r.error());
    CHECK(r.error().find(row.error) != std::string::npos);
    CHECK(r.error().rfind("at byte ", 0) == 0);
  }
}

TEST_CASE("Json::parse: depth is bounded") {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto r = Json::parse(deep);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find("nested deeper than 64") != std::string::npos);
  std::string ok(64, '[');
  ok += std::string(64, ']');
  CHECK(Json::parse(ok).ok());
}

TEST_CASE("Json::dump: round trip and escaping") {
  Json o = Json::object();
  o.set("s", Json::string("a\"b\\c\n\x01\x7f"));
  o.set("n", Json::number(42));
  o.set("f", Json::number(0.5));
  o.set("l", Json::array({Json::boolean(false), Json::null()}));
  std::string text = o.dump();
  CHECK(text == R"({"s":"a\"b\\c\n\u0001\u007f","n":42,"f":0.5,"l":[false,null]})");
  auto back = Json::parse(text);
  REQUIRE(back.ok());
  CHECK(back.value().dump() == text);
  CHECK(Json::number(1.0 / 0.0).dump() == "null");
}
