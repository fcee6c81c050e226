// Listening sockets, bound once on the main thread and shared by every worker.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "proxy/worker_context.hpp"
#include "rules/config.hpp"
#include "rules/result.hpp"

namespace sluice::proxy {

struct BoundListener {
  rules::ListenerConfig config;
  int fd = -1;
  std::shared_ptr<const ListenerInfo> info;  // name and the real address (ephemeral port resolved)
};

// Binds and listens. A unix path left behind by a dead process is replaced; a live one is an error.
rules::Result<BoundListener> bind_listener(const rules::ListenerConfig& cfg);
// Closes the fd and removes a unix socket file this process created.
void release_listener(BoundListener& l);

// Every address configured on this host's interfaces (getifaddrs).
std::vector<rules::IpAddr> interface_addresses();

}  // namespace sluice::proxy
