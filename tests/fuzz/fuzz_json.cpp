// The JSON parser behind every control-API body, and the state file on top of it.
// Invariants: a parsed value prints as JSON that parses back to the same print
// (printing is a fixed point); a state file that loads writes back to a file
// that loads to the same answers; nothing crashes or loops on any input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rules/json.hpp"
#include "rules/remembered.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using sluice::fuzz::escaped;
using sluice::rules::Json;
using sluice::rules::Remembered;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto v = Json::parse(in);
  if (!v) {
    FUZZ_CHECK(v.error().rfind("at byte ", 0) == 0, escaped(v.error()));
  } else {
    std::string once = v->dump();
    auto again = Json::parse(once);
    FUZZ_CHECK(again.ok(), "reparse of " + escaped(once) + ": " + (again.ok() ? "" : again.error()));
    FUZZ_CHECK(again->dump() == once, escaped(once));
  }
  auto state = Remembered::parse_state(in, "state.json");
  if (state) {
    Remembered r;
    for (const auto& a : state.value()) r.put(a);
    std::string text = r.to_state_json();
    auto back = Remembered::parse_state(text, "state.json");
    FUZZ_CHECK(back.ok(), escaped(text));
    Remembered r2;
    for (const auto& a : back.value()) r2.put(a);
    FUZZ_CHECK(r2.to_state_json() == text, escaped(text));
  }
  return 0;
}
