// The jail's init (pid 1 inside bwrap): starts the bridge, then runs CMD under
// the seccomp filter, forwards signals to it, reaps orphans, and exits with
// CMD's status (128+N when a signal ended it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::glue {

// `channel_fds`: the proxy's hand-over channels, for the bridge only; CMD never holds them.
int run_jail_init(const std::string& socket_path, uint16_t port, const std::vector<int>& channel_fds,
                  const std::vector<std::string>& command);

}  // namespace sluice::glue
