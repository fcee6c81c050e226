// %XX escapes (RFC 3986 section 2.1), for URL user info and path segments: one decoder
// for the proxy URLs, the control API's path segments and the bench's proxy specs.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace sluice::rules {

// 0..15 for a hex digit (either case), -1 for anything else.
int hex_digit(char c);

// Every %XX decoded; nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace sluice::rules
