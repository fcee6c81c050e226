// A session's one timer (the HTTP session's, the SOCKS5 session's) and the wait it is armed
// for: KIND is the session's own enum of named waits, with a None. The session counts the
// open handle in its open_handles_, as it counts its sockets, and learns of its close through
// the same callback. A relaying tunnel releases the timer (the relay has its own); arm() makes
// it again when the session needs one later, but never once the session is closing.
#pragma once
#include <cstdint>

#include <uv.h>

#include "base/uv_handle.hpp"

namespace sluice::proxy {

template <class Kind>
class SessionTimer {
 public:
  // From the session's constructor: makes the handle, counted in OPEN_HANDLES. ON_FIRE gets
  // the handle with OWNER as its data.
  void open(uv_loop_t* loop, void* owner, uv_timer_cb on_fire, int& open_handles) {
    loop_ = loop;
    owner_ = owner;
    on_fire_ = on_fire;
    make(open_handles);
  }

  // Due in MS, for KIND; None stops it. A released timer is made again first, unless KIND is
  // None or the session is closing (SESSION_CLOSED).
  void arm(Kind kind, uint64_t ms, bool session_closed, int& open_handles) {
    if (!handle_.live()) {
      if (kind == Kind::None || session_closed) return;
      make(open_handles);
    }
    kind_ = kind;
    if (kind == Kind::None) {
      uv_timer_stop(handle_.get());
      return;
    }
    uv_timer_start(handle_.get(), on_fire_, ms, 0);
  }

  // The wait it is armed for (None when stopped or released).
  Kind kind() const { return kind_; }

  // Lets the handle go (a relaying tunnel, the session's close); ON_CLOSED(owner) runs once
  // it is gone.
  void close(void (*on_closed)(void*)) {
    kind_ = Kind::None;
    handle_.close(on_closed);
  }

 private:
  void make(int& open_handles) {
    handle_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); });
    handle_.get()->data = owner_;
    ++open_handles;
  }

  base::UvHandle<uv_timer_t> handle_;
  Kind kind_ = Kind::None;
  uv_loop_t* loop_ = nullptr;
  void* owner_ = nullptr;
  uv_timer_cb on_fire_ = nullptr;
};

}  // namespace sluice::proxy
