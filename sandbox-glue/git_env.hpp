// git inside the jail presents the stand-in with no setup of its own (docs/credentials.md):
// `git push https://github.com/owner/repo` sends the stand-in in the header shape the credential's
// template gives, and sluice swaps in the real secret on the way out.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "rules/policy.hpp"
#include "sandbox-glue/proxy_env.hpp"

namespace sluice::glue {

// One `http.<url>.extraHeader` for git: `url` is "https://host[:port]/" (git compares the port
// exactly; 443 is left out), `header` the whole header line ("Authorization: Basic ...").
struct GitExtraHeader {
  std::string url;
  std::string header;
};

// For each template credential (not `replace`) with a stand-in in `issued` (credential name ->
// stand-in): each of its exact host patterns that a `git:` rule of the policy guards (port 443
// when the pattern names none) gets the credential's header with the stand-in in the secret's
// place. Wildcard and address patterns get none (git's URL match reads `*` differently).
std::vector<GitExtraHeader> git_extra_headers(const rules::Policy& policy,
                                              const std::vector<std::pair<std::string, std::string>>& issued);

// The headers as GIT_CONFIG_COUNT / GIT_CONFIG_KEY_<n> / GIT_CONFIG_VALUE_<n> (git >= 2.31), after
// the `existing_count` entries the caller's environment already has (its GIT_CONFIG_COUNT, or
// null), so those keep working. Empty when there are no headers.
EnvList git_config_environment(const std::vector<GitExtraHeader>& headers, const char* existing_count);

}  // namespace sluice::glue
