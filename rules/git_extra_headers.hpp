// The git http.extraHeader entries that let git inside a jail present a stand-in with no setup of
// its own (docs/credentials.md): `git push https://github.com/owner/repo` sends the stand-in in the
// header shape the credential's template gives, and sluice swaps in the real secret on the way out.
// Pure: both `sluice run` (embedded proxy) and the daemon (a sandbox's create answer) use it.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "rules/policy.hpp"

namespace sluice::rules {

// One `http.<url>.extraHeader` for git: `url` is "https://host[:port]/" (git compares the port
// exactly; 443 is left out), `header` the whole header line ("Authorization: Basic ...").
struct GitExtraHeader {
  std::string url;
  std::string header;
};

// For each template credential (not `replace`) with a stand-in in `issued` (credential name ->
// stand-in): every name that both the credential's hosts and a `git:` rule of the policy cover,
// as either side writes it (port 443 when the pattern names none), gets the credential's header
// with the stand-in in the secret's place. A `*.suffix` both sides cover becomes git's
// `https://*.suffix/`, which git matches one label deep only (a.suffix, not a.b.suffix).
// Address patterns get none.
std::vector<GitExtraHeader> git_extra_headers(const Policy& policy,
                                              const std::vector<std::pair<std::string, std::string>>& issued);

}  // namespace sluice::rules
