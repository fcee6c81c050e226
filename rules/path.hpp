// Request paths the way an origin will read them, for path-scoped policy entries (issue 14):
// a prefix such as "/myorg/" must not be escaped with "..", "%2e%2e", "//" or "%2f".
// The rule: decode what has one meaning everywhere, refuse what origins read differently.
#pragma once
#include <string>
#include <string_view>

#include "rules/result.hpp"

namespace sluice::rules {

// The normalised form of an origin-form request target ("/a/b?q"):
// - percent-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded, every other
//   escape is kept with upper-case hex ("%7e" -> "~", "%2e" -> ".", "%3a" -> "%3A");
// - "." and ".." segments are resolved (RFC 3986 5.2.4) after that decoding, so "%2e%2e" is "..";
// - the query ("?..."), if any, is kept byte for byte and never searched for a path.
// Refused (an error naming why), because origins disagree on what they mean: a target that does
// not start with "/", an empty segment ("//"), an encoded "/" or "\" (%2F, %5C), a literal "\",
// "%00", a control byte, a malformed escape, a "#", and ".." above the root.
Result<std::string> normalize_path(std::string_view target);

// Whether a normalised path lies under `prefix` (itself a normalised path without a query): at a
// segment boundary, so "/org" covers "/org" and "/org/x" but not "/organisation"; a prefix
// ending in "/" covers only what is below it ("/org/" does not cover "/org").
bool path_has_prefix(std::string_view path, std::string_view prefix);

}  // namespace sluice::rules
