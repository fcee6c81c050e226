// The jail's init (pid 1 inside bwrap): starts the bridge, then runs CMD under
// the seccomp filter, forwards signals to it, reaps orphans, and exits with
// CMD's status (128+N when a signal ended it).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sandbox-glue/transparent_bridge.hpp"

namespace sluice::glue {

// `channel_fds`: the proxy's hand-over channels, for the bridge only; CMD never holds them.
// With `transparent.on` (issue 16), before anything else starts: the routes and packet
// rules are installed with the CAP_NET_ADMIN bwrap gave this init, then every capability
// is dropped (no_new_privs set) for good, so neither the bridge nor CMD holds any; CMD
// also runs under the seccomp filter, which refuses it netfilter's netlink socket.
int run_jail_init(const std::string& socket_path, uint16_t port, const std::vector<int>& channel_fds,
                  const TransparentBridge& transparent, const std::vector<std::string>& command);

}  // namespace sluice::glue
