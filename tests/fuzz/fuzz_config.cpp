// YAML configuration text: load_config_text must never crash or throw, and must
// return either a config or errors that carry a position, never both or neither.
//
// Input: byte 0 bit 0 loads it as a `sluice run --policy` file; the rest is the YAML.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rules/config.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 16384) return 0;
  const bool policy_file = data[0] & 1;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto load = sluice::rules::load_config_text(text, "fuzz.yaml", policy_file);
  FUZZ_CHECK((load.config == nullptr) == !load.errors.empty(), "config and errors disagree");
  for (const auto& e : load.errors) {
    FUZZ_CHECK(e.line >= 0 && e.column >= 0, e.to_string());
    FUZZ_CHECK(e.file == "fuzz.yaml", e.to_string());
    FUZZ_CHECK(!e.message.empty(), e.to_string());
    // One error, one line: values quoted from the file must not break it.
    const std::string s = e.to_string();
    FUZZ_CHECK(s.find('\n') == std::string::npos && s.find('\r') == std::string::npos, sluice::fuzz::escaped(s));
  }
  if (load.config) {
    const auto& c = *load.config;
    FUZZ_CHECK(policy_file || !c.listeners.empty(), "a config file with no listener loaded");
    for (const auto& l : c.listeners) FUZZ_CHECK(c.policy(l.policy) != nullptr, "listener policy " + l.policy);
    FUZZ_CHECK(c.limits.max_header_bytes > 0, "max_header_bytes 0");
  }
  return 0;
}
