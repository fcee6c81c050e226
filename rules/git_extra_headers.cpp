#include "rules/git_extra_headers.hpp"

#include <algorithm>

#include "rules/gateway_credential.hpp"
#include "rules/git_guard.hpp"
#include "rules/host.hpp"

namespace sluice::rules {

namespace {

// A host label no real name is expected to have: a subdomain pattern covers every name one
// label under its suffix exactly when it covers this one (patterns have no exclusions).
constexpr const char* kProbeLabel = "sluice-git-probe";

std::string url_for(const std::string& host, uint16_t port) {
  return "https://" + host + (port == 443 ? "" : ":" + std::to_string(port)) + "/";
}

}  // namespace

std::vector<GitExtraHeader> git_extra_headers(const Policy& policy,
                                              const std::vector<std::pair<std::string, std::string>>& issued) {
  std::vector<GitExtraHeader> out;
  if (policy.git.empty()) return out;
  // The exact names either side writes: a wildcard credential covers a git rule's exact host,
  // and an exact credential host may fall under a wildcard git rule.
  std::vector<const HostPattern*> named;
  for (const auto& rule : policy.git)
    for (const auto& p : rule.host->patterns()) named.push_back(p.get());
  for (const auto& [name, stand_in] : issued) {
    const GatewayCredential* c = nullptr;
    for (const auto& cred : policy.credentials)
      if (cred->name == name) c = cred.get();
    if (c == nullptr || c->replace) continue;
    const std::string header = c->header_name + ": " + render_inject(c->header_template, stand_in);
    auto add = [&](std::string url) {
      auto same = [&](const GitExtraHeader& h) { return h.url == url; };
      if (std::none_of(out.begin(), out.end(), same)) out.push_back({std::move(url), header});
    };
    std::vector<const HostPattern*> candidates;
    for (const auto& p : c->hosts.patterns()) candidates.push_back(p.get());
    candidates.insert(candidates.end(), named.begin(), named.end());
    for (const HostPattern* p : candidates) {
      if (p->kind == HostPattern::Kind::Cidr) continue;  // addresses: git's URL would name the IP
      const uint16_t port = p->port.value_or(443);
      const bool wildcard = p->kind == HostPattern::Kind::Subdomains;
      // git's `*` in http.<url> matches one label: https://*.example.com/ serves a.example.com.
      auto host = canonicalize_host(wildcard ? std::string(kProbeLabel) + "." + p->name : p->name);
      if (!host || host->kind != HostKind::Name) continue;
      if (c->hosts.match(host.value(), port) == nullptr) continue;
      if (match_git_host(policy.git, host.value(), port) == nullptr) continue;
      add(url_for(wildcard ? "*." + p->name : host->text, port));
    }
  }
  return out;
}

}  // namespace sluice::rules
