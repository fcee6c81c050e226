#include "sandbox-glue/git_env.hpp"

#include <charconv>

#include "rules/gateway_credential.hpp"
#include "rules/git_guard.hpp"
#include "rules/host.hpp"

namespace sluice::glue {

std::vector<GitExtraHeader> git_extra_headers(const rules::Policy& policy,
                                              const std::vector<std::pair<std::string, std::string>>& issued) {
  std::vector<GitExtraHeader> out;
  if (policy.git.empty()) return out;
  for (const auto& [name, stand_in] : issued) {
    const rules::GatewayCredential* c = nullptr;
    for (const auto& cred : policy.credentials)
      if (cred->name == name) c = cred.get();
    if (c == nullptr || c->replace) continue;
    for (const auto& p : c->hosts.patterns()) {
      if (p->kind != rules::HostPattern::Kind::Exact) continue;
      auto host = rules::canonicalize_host(p->name);
      if (!host || host->kind != rules::HostKind::Name) continue;
      const uint16_t port = p->port.value_or(443);
      if (rules::match_git_host(policy.git, host.value(), port) == nullptr) continue;
      std::string url = "https://" + host->text + (port == 443 ? "" : ":" + std::to_string(port)) + "/";
      out.push_back({std::move(url), c->header_name + ": " + rules::render_inject(c->header_template, stand_in)});
    }
  }
  return out;
}

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
