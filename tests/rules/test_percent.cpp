#include <doctest/doctest.h>

#include "rules/percent.hpp"

using sluice::rules::hex_digit;
using sluice::rules::percent_decode;

TEST_CASE("hex_digit: both cases, nothing else") {
  CHECK(hex_digit('0') == 0);
  CHECK(hex_digit('9') == 9);
  CHECK(hex_digit('a') == 10);
  CHECK(hex_digit('F') == 15);
  for (char c : {'g', 'G', '/', ':', '@', '`', ' ', '\0'}) CHECK(hex_digit(c) == -1);
}

TEST_CASE("percent_decode: every escape decoded, a bad one refused") {
  CHECK(percent_decode("") == std::string());
  CHECK(percent_decode("plain") == std::string("plain"));
  CHECK(percent_decode("s3%3Acret") == std::string("s3:cret"));
  CHECK(percent_decode("%2f%2F") == std::string("//"));
  CHECK(percent_decode("%00") == std::string(1, '\0'));
  CHECK(percent_decode("%e2%9c%93") == std::string("\xe2\x9c\x93"));
  for (const char* bad : {"%", "%4", "a%", "%zz", "%4g", "100%"}) {
    CAPTURE(bad);
    CHECK_FALSE(percent_decode(bad).has_value());
  }
}
