// The tunnel byte pump: once a session has set up a tunnel (CONNECT, SOCKS5, an
// upgraded HTTP connection), the relay moves bytes both ways until both
// directions have ended. A side stops being read while the other side has
// kHighWatermark bytes queued (backpressure); EOF on one side becomes a shutdown
// of the other (half-close); idle_timeout closes a silent tunnel. It counts bytes.
//
// Self-contained on purpose: it knows two streams, a buffer pool and a loop,
// nothing of sessions or protocols, so its strategy (e.g. splice) can change alone.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <uv.h>

#include "proxy/buffer_pool.hpp"
#include "proxy/uv_handle.hpp"

namespace sluice::proxy {

class Relay {
 public:
  static constexpr size_t kHighWatermark = 512 * 1024;
  enum class End { Finished, Error, IdleTimeout };

  Relay(uv_loop_t* loop, BufferPool& pool, uint64_t idle_timeout_ms);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Takes over reading and writing of both streams: their data pointers point at
  // the relay until detach(). `to_upstream` / `to_client`: bytes already read
  // that belong to the tunnel. `on_end` runs once, when the tunnel is over; the
  // owner then detaches and closes the streams.
  void start(uv_stream_t* client, uv_stream_t* upstream, std::string to_upstream, std::string to_client,
             std::function<void(End)> on_end);
  // Stops reading and hands the data pointers back as they were before start().
  // Writes still queued complete or are cancelled when the owner closes the streams.
  void detach();

  bool active() const { return active_; }
  uint64_t bytes_up() const { return bytes_up_; }      // written towards the upstream
  uint64_t bytes_down() const { return bytes_down_; }  // written towards the client

 private:
  struct Side;
  struct WriteReq;
  Side& side_of(uv_stream_t* s);
  Side& other(Side& s);
  void update_reading();
  void write(Side& to, std::string bytes, char* block, size_t len);
  void on_data(Side& from, char* block, size_t n);
  void on_eof(Side& from);
  void end(End why);
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_write(uv_write_t*, int);
  static void on_shutdown(uv_shutdown_t*, int);
  static void on_idle_timer(uv_timer_t*);

  struct Side {
    uv_stream_t* stream = nullptr;
    void* saved_data = nullptr;
    bool reading = false;
    bool eof = false;       // this side sent EOF
    bool shut = false;      // shutdown requested towards this side
    bool shut_done = false;
    uint64_t* counter = nullptr;  // bytes written towards this side
  };

  uv_loop_t* loop_;
  BufferPool& pool_;
  uint64_t idle_timeout_ms_;
  uint64_t last_activity_ = 0;
  Side client_, upstream_;
  bool active_ = false;
  std::function<void(End)> on_end_;
  uint64_t bytes_up_ = 0, bytes_down_ = 0;
  UvHandle<uv_timer_t> idle_timer_{UvHandle<uv_timer_t>::Empty{}};
};

}  // namespace sluice::proxy
