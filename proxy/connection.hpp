// What the worker keeps for each accepted client: first the protocol sniffer
// (proxy/front.hpp), then the session it hands the client over to (HTTP or SOCKS5).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <uv.h>

#include "proxy/worker_context.hpp"

namespace sluice::proxy {

union AnyStream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

struct PeerCred {
  bool known = false;
  int64_t pid = 0, uid = 0, gid = 0;
};

// Who the client is, fixed at accept and carried from the sniffer into the session.
struct ClientInfo {
  uint64_t id = 0;
  std::shared_ptr<const ListenerInfo> listener;
  bool is_unix = false;
  PeerCred peer;
  std::string addr;        // "IP:PORT", or "unix"
  uint64_t started_ms = 0;  // uv_now at accept
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Graceful stop: idle connections close now, busy ones are left to finish.
  virtual void drain() = 0;
  // Hard stop at the drain deadline.
  virtual void abort() = 0;
  virtual const ListenerInfo& listener() const = 0;
};

}  // namespace sluice::proxy
