#include "rules/git_extra_headers.hpp"

#include "rules/gateway_credential.hpp"
#include "rules/git_guard.hpp"
#include "rules/host.hpp"

namespace sluice::rules {

std::vector<GitExtraHeader> git_extra_headers(const Policy& policy,
                                              const std::vector<std::pair<std::string, std::string>>& issued) {
  std::vector<GitExtraHeader> out;
  if (policy.git.empty()) return out;
  for (const auto& [name, stand_in] : issued) {
    const GatewayCredential* c = nullptr;
    for (const auto& cred : policy.credentials)
      if (cred->name == name) c = cred.get();
    if (c == nullptr || c->replace) continue;
    for (const auto& p : c->hosts.patterns()) {
      if (p->kind != HostPattern::Kind::Exact) continue;
      auto host = canonicalize_host(p->name);
      if (!host || host->kind != HostKind::Name) continue;
      const uint16_t port = p->port.value_or(443);
      if (match_git_host(policy.git, host.value(), port) == nullptr) continue;
      std::string url = "https://" + host->text + (port == 443 ? "" : ":" + std::to_string(port)) + "/";
      out.push_back({std::move(url), c->header_name + ": " + render_inject(c->header_template, stand_in)});
    }
  }
  return out;
}

}  // namespace sluice::rules
