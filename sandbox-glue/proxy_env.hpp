// The environment a jailed command gets so that its tools use the bridge.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice::glue {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// `sluice_in_jail`: the path of the sluice binary as seen inside the jail (for
// GIT_SSH_COMMAND's ProxyCommand).
EnvList proxy_environment(uint16_t bridge_port, const std::string& sluice_in_jail);

}  // namespace sluice::glue
