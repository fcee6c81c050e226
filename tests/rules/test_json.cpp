// The strict JSON parser behind the control API and the state file (nlohmann's, with our
// duplicate-key and depth refusals): a table of good texts and what they hold, a table of bad
// ones and the error they get, and printing that parses back to the same value.
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
  CHECK(a->items()[2].as_integer(0, 299) == std::nullopt);  // out of range
  CHECK(j.find("b")->as_string() == "x\ny\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(j.find("c")->as_bool());
  CHECK(j.find("d")->is_null());
  CHECK(j.find("e")->is_object());
  CHECK(j.find("zz") == nullptr);
  CHECK(Json::parse("[]").value().items().empty());
  CHECK(Json::parse("\"\"").value().as_string().empty());
  CHECK(Json::parse("  7 ").value().as_integer(0, 9) == 7);
  CHECK(Json::parse("\"caf\xc3\xa9\"").value().as_string() == "caf\xc3\xa9");  // raw UTF-8 is kept
  // The same key in two objects, and members in order.
  auto twins = Json::parse(R"([{"a":1,"b":2},{"a":3}])");
  REQUIRE(twins.ok());
  CHECK(twins.value().dump() == R"([{"a":1,"b":2},{"a":3}])");
  CHECK(Json::parse("18446744073709551615").value().as_number() == 18446744073709551615.0);
}

TEST_CASE("Json::parse: every kind of bad text is an error with its byte offset") {
  struct Row {
    const char* text;
    const char* error;  // a substring
  };
  const Row rows[] = {
      {"", "unexpected end of input"},
      {"   ", "unexpected end of input"},
      {"{", "expected string literal"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\":1,}", "unexpected '}'; expected string literal"},
      {"{\"a\":1 \"b\":2}", "unexpected string literal; expected '}'"},
      {"[1,]", "unexpected ']'"},
      {"[1 2]", "unexpected number literal; expected ']'"},
      {"[1", "unexpected end of input; expected ']'"},
      {"{\"a\":1,\"a\":2}", "duplicate key \"a\""},
      {"tru", "invalid literal"},
      {"nul", "invalid literal"},
      {"01", "expected end of input"},
      {"-", "invalid number"},
      {"1.", "expected digit after '.'"},
      {"1e", "or digit after exponent"},
      {"+1", "invalid literal"},
      {"\"abc", "missing closing quote"},
      {"\"a\x01\"", "control character U+0001"},
      {"\"\\x\"", "forbidden character after backslash"},
      {"\"\\u12\"", "must be followed by 4 hex digits"},
      {"\"\\u12zz\"", "must be followed by 4 hex digits"},
      {"\"\\ud800\"", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      {"\"\\udc00\"", "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"},
      {"\"\\ud800\\u0041\"", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      {"\"\xff\"", "ill-formed UTF-8"},
      {"\"\xc0\xaf\"", "ill-formed UTF-8"},      // overlong
      {"\"\xed\xa0\x80\"", "ill-formed UTF-8"},  // a surrogate, encoded
      {"\"\xe2\x82\"", "ill-formed UTF-8"},      // truncated
      {"[] []", "expected end of input"},
      {"{} x", "invalid literal"},
      {"{\"a\":{\"b\":1,\"b\":2}}", "duplicate key \"b\""},  // in an inner object too
      {"1e400", "number overflow"},
      {"// no\n1", "invalid literal"},
      {"NaN", "invalid literal"},
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
