// The bridge's side of the proxy's hand-over channels (unix socketpairs to the embedded
// proxy's workers, inherited from the launcher): each accepted connection's descriptor goes
// to the proxy with one message (proxy/handover_frame.hpp), round robin over the channels;
// a channel that fails is dropped. Used by the explicit listener (bridge.cpp) and by the
// transparent one (transparent_bridge.cpp), on the bridge's one loop.
#pragma once
#include <uv.h>

#include <functional>
#include <string>
#include <vector>

namespace sluice::glue {

class HandOverChannels {
 public:
  // Opens `fds` on `loop`; "" or a one-line error.
  std::string open(uv_loop_t* loop, const std::vector<int>& fds);
  bool empty() const { return channels_.empty(); }
  // Sends `message` with `client`'s descriptor. False when no channel took it (every one has
  // failed: the proxy is gone); else `sent(ok)` runs once the write has finished, after which
  // the caller closes its own copy of the socket (never with a reset: the proxy holds it).
  bool send(uv_stream_t* client, std::string message, std::function<void(bool ok)> sent);

 private:
  struct Write;
  static void on_written(uv_write_t* req, int status);
  void drop(uv_pipe_t* channel);
  std::vector<uv_pipe_t*> channels_;
  size_t next_ = 0;
};

}  // namespace sluice::glue
