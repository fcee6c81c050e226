// The in-jail bridge: listens on 127.0.0.1:PORT in the jail's own network
// namespace. With hand-over channels (unix socketpairs to the embedded proxy,
// inherited from the launcher) it passes each accepted connection's descriptor
// to the proxy, which then serves the jail's socket itself: no byte crosses the
// bridge (transparent connections too: transparent_bridge.hpp). Without them (or once
// every channel has failed) it relays every
// connection, byte for byte, to the proxy's unix socket bound into the jail.
// Runs its own libuv loop until killed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sandbox-glue/transparent_bridge.hpp"

namespace sluice::glue {

// `on_ready` runs once the listeners are bound (the jail's init waits for it); with
// `transparent.on`, the transparent listener and the DNS stub too (transparent_bridge.hpp).
// Returns only on a setup error, with a one-line message.
std::string run_bridge(uint16_t port, const std::string& socket_path, const std::vector<int>& channel_fds,
                       const TransparentBridge& transparent, const std::function<void()>& on_ready);

}  // namespace sluice::glue
