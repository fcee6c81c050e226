// What the worker keeps for each accepted client: first the protocol sniffer
// (proxy/front.hpp), then the session it hands the client over to (HTTP or SOCKS5),
// and who that client is.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <uv.h>

#include "proxy/worker_context.hpp"

namespace sluice::proxy {

// How long a connection closing after sluice's own reply keeps draining the client (FIN sent,
// unread bytes discarded), so the close does not turn into a reset that destroys the reply.
inline constexpr uint64_t kLingerMs = 2000;

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
  std::string addr;         // "IP:PORT", or "unix"
  uint64_t started_ms = 0;  // uv_now at accept
};

// How the worker owns each accepted client, whatever it is at the moment (the sniffer,
// an HTTP session, a SOCKS5 session): a type-erased owner with the two requests the worker
// makes of it, drain() and abort(). Deliberately not a base class with virtual functions:
// the connection objects stay non-polymorphic, so UBSan's vptr check has nothing to look
// at; that check opens a pipe the first time it meets a type and misfires when the process
// has run out of descriptors, the very situation the EMFILE tests create.
class OwnedConnection {
 public:
  template <class T>
  explicit OwnedConnection(std::unique_ptr<T> c) : self_(c.release()), ops_(&kOps<T>) {}
  ~OwnedConnection() { reset(); }
  OwnedConnection(OwnedConnection&& o) noexcept : self_(std::exchange(o.self_, nullptr)), ops_(o.ops_) {}
  OwnedConnection& operator=(OwnedConnection&& o) noexcept {
    if (this != &o) {
      reset();
      self_ = std::exchange(o.self_, nullptr);
      ops_ = o.ops_;
    }
    return *this;
  }
  OwnedConnection(const OwnedConnection&) = delete;
  OwnedConnection& operator=(const OwnedConnection&) = delete;

  void* get() const { return self_; }   // the key the connection reports itself by
  void drain() { ops_->drain(self_); }  // graceful stop: idle connections close now
  void abort() { ops_->abort(self_); }  // hard stop at the drain deadline

 private:
  struct Ops {
    void (*drain)(void*);
    void (*abort)(void*);
    void (*destroy)(void*);
  };
  template <class T>
  static constexpr Ops kOps = {[](void* p) { static_cast<T*>(p)->drain(); },
                               [](void* p) { static_cast<T*>(p)->abort(); },
                               [](void* p) { delete static_cast<T*>(p); }};
  void reset() {
    if (self_ != nullptr) ops_->destroy(std::exchange(self_, nullptr));
  }
  void* self_;
  const Ops* ops_;
};

}  // namespace sluice::proxy
