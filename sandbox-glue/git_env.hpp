// git inside the jail presents the stand-in with no setup of its own (docs/credentials.md):
// `git push https://github.com/owner/repo` sends the stand-in in the header shape the credential's
// template gives, and sluice swaps in the real secret on the way out.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "rules/git_extra_headers.hpp"
#include "sandbox-glue/proxy_env.hpp"

namespace sluice::glue {

using rules::git_extra_headers;  // rules/git_extra_headers.hpp
using rules::GitExtraHeader;

// The headers as GIT_CONFIG_COUNT / GIT_CONFIG_KEY_<n> / GIT_CONFIG_VALUE_<n> (git >= 2.31), after
// the `existing_count` entries the caller's environment already has (its GIT_CONFIG_COUNT, or
// null), so those keep working. Empty when there are no headers.
EnvList git_config_environment(const std::vector<GitExtraHeader>& headers, const char* existing_count);

}  // namespace sluice::glue
