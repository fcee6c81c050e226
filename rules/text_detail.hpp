// Private to rules/: small text helpers shared by host, pattern and config parsing.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rules/result.hpp"

namespace sluice::rules::detail {

// Shows hostile text without echoing it raw into logs or replies: control bytes,
// non-ASCII bytes, '"' and '\' become \xNN; more than 80 bytes are cut with "...".
std::string printable(std::string_view s);

// A decimal port, 1..5 digits, 0..65535 (callers decide whether 0 is acceptable).
std::optional<uint32_t> parse_port(std::string_view s);

// Checks and lower-cases a host name (one trailing dot already removed by the caller
// or not: it is removed here). On failure the error is the bare reason
// ("space not allowed"), without the "bad host" prefix, so callers can frame it.
Result<std::string> canonical_name(std::string_view s);

// A name some resolvers would read as an IPv4 address (127.1, 2130706433, 0x7f.1):
// its last label is all digits or starts with 0x. Such names never match as names.
bool numeric_name(std::string_view lower_name);

}  // namespace sluice::rules::detail
