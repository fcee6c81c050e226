#include "sandbox-glue/git_env.hpp"

#include <charconv>

namespace sluice::glue {

EnvList git_config_environment(const std::vector<GitExtraHeader>& headers, const char* existing_count) {
  EnvList env;
  if (headers.empty()) return env;
  unsigned first = 0;
  if (existing_count != nullptr) {
    const std::string_view text(existing_count);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc{} && p == text.data() + text.size() && v < 10000) first = v;
  }
  unsigned n = first;
  for (const auto& h : headers) {
    env.emplace_back("GIT_CONFIG_KEY_" + std::to_string(n), "http." + h.url + ".extraHeader");
    env.emplace_back("GIT_CONFIG_VALUE_" + std::to_string(n), h.header);
    ++n;
  }
  env.emplace_back("GIT_CONFIG_COUNT", std::to_string(n));
  return env;
}

}  // namespace sluice::glue
