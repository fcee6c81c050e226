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
  // TCP: one socket per worker, all bound to one port with SO_REUSEPORT, so the kernel hands
  // each connection to one worker and no other worker wakes for it. Unix: one socket, shared.
  std::vector<int> fds;
  std::shared_ptr<const ListenerInfo> info;  // name and the real address (ephemeral port resolved)
  // The socket worker `index` accepts on.
  int fd_for(size_t index) const { return fds.empty() ? -1 : fds[index % fds.size()]; }
};

// Binds and listens (`copies` sockets for TCP, one for unix). A unix path left behind by a dead
// process is replaced; a live one is an error.
rules::Result<BoundListener> bind_listener(const rules::ListenerConfig& cfg, int copies = 1);
// Closes the fds and removes a unix socket file this process created.
void release_listener(BoundListener& l);

// Every address configured on this host's interfaces (getifaddrs).
std::vector<rules::IpAddr> interface_addresses();

}  // namespace sluice::proxy
