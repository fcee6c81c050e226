// What a session needs from the worker that owns it: its loop, resolver,
// buffers, log and the config in force. Kept abstract so tests can fake it.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "rules/config.hpp"

namespace sluice::base {
class BufferPool;
}
namespace sluice::tls {
class Inspector;
}

namespace sluice::proxy {

using base::BufferPool;
class Resolver;
class DecisionLog;
class OwnedConnection;
struct WorkerMetrics;
struct AskRequest;
struct AskAnswer;

// Identity of the listener a connection arrived on.
struct ListenerInfo {
  std::string name;
  bool is_unix = false;
  std::string address;  // "tcp:127.0.0.1:3128" or "unix:/path"
  // Open connections on this listener across all workers (limits.max_connections_per_listener).
  mutable std::atomic<size_t> active{0};
  // A sandbox made at run time (POST /v1/sandboxes) is in no config snapshot: its listener
  // config and policy overlay travel with the listener itself, so a config replace keeps
  // them and a session finds them without searching 10,000 listeners. Null for listeners
  // of the config file (looked up by name in the snapshot).
  std::shared_ptr<const rules::ListenerConfig> sandbox;
  std::shared_ptr<const rules::PolicyOverlay> overlay;  // may be null
  // Set when the listener is removed (DELETE /v1/sandboxes/NAME): the workers drop its
  // per-listener counters once its last connection on them ends.
  mutable std::atomic<bool> removed{false};
};

class WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  virtual uv_loop_t* loop() = 0;
  virtual Resolver& resolver() = 0;
  virtual DecisionLog& log() = 0;
  virtual BufferPool& buffers() = 0;
  // This worker's counters (proxy/metrics.hpp); only its own loop thread touches them.
  virtual WorkerMetrics& metrics() = 0;
  // Asks a human whether `r` may go ahead (proxy/ask.hpp): `resume` runs later, on this
  // loop, with the answer. Returns a ticket for cancel_ask(), or 0 when nobody can be
  // asked (the caller denies at once); `resume` never runs then. `question` receives the
  // id of the question it waits on (0 when answered from memory).
  virtual uint64_t ask(const AskRequest& r, std::function<void(const AskAnswer&)> resume, uint64_t* question) = 0;
  // The connection stops waiting (`timeout`: its ask timeout passed; else it is closing);
  // its `resume` will not run.
  virtual void cancel_ask(uint64_t ticket, bool timeout) = 0;
  virtual uint64_t next_connection_id() = 0;
  // This host's interface addresses, for the resolved-address check.
  virtual const std::vector<rules::IpAddr>& self_addresses() = 0;
  // Called once, from a connection's last close callback, with the connection itself
  // (`this`); the worker deletes it.
  virtual void connection_finished(void* connection) = 0;
  // The sniffer hands its client to the session for the protocol it saw: `from` is
  // deleted, `to` takes its place (and its share of the connection counts).
  virtual void hand_over(void* from, OwnedConnection to) = 0;
  // TLS inspection's CA, leaves and contexts (tls/inspector.hpp); null when no CA is set.
  virtual std::shared_ptr<tls::Inspector> inspector() { return nullptr; }
};

}  // namespace sluice::proxy
