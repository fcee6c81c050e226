// Path normalisation (rules/path.hpp): on any input it refuses with a reason or returns a
// path that is idempotent under normalisation and holds no dot segment, empty segment,
// encoded slash or backslash, and stays under every prefix check it passes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rules/path.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using sluice::fuzz::escaped;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto got = sluice::rules::normalize_path(in);
  if (!got.ok()) {
    FUZZ_CHECK(!got.error().empty(), escaped(in));
    return 0;
  }
  const std::string& out = got.value();
  const std::string why = "in=\"" + escaped(in) + "\" out=\"" + escaped(out) + "\"";
  FUZZ_CHECK(!out.empty() && out.front() == '/', why);
  auto again = sluice::rules::normalize_path(out);
  FUZZ_CHECK(again.ok() && again.value() == out, why);
  const std::string_view path = std::string_view(out).substr(0, out.find('?'));
  FUZZ_CHECK(path.find("//") == std::string_view::npos, why);
  FUZZ_CHECK(path.find("/./") == std::string_view::npos && path.find("/../") == std::string_view::npos, why);
  FUZZ_CHECK(path.size() < 3 || (path.substr(path.size() - 2) != "/." && path.substr(path.size() - 3) != "/.."), why);
  FUZZ_CHECK(path.find('\\') == std::string_view::npos, why);
  for (const char* bad : {"%2F", "%2f", "%5C", "%5c", "%2E", "%2e", "%00"})
    FUZZ_CHECK(path.find(bad) == std::string_view::npos, why);
  // A path's own directory always covers it.
  const std::string_view dir = path.substr(0, path.rfind('/') + 1);
  FUZZ_CHECK(sluice::rules::path_has_prefix(out, dir), why);
  return 0;
}
