// The tunnel byte pump: once a session has set up a tunnel (CONNECT, SOCKS5, an
// upgraded HTTP connection), the relay moves bytes both ways until both
// directions have ended. A side stops being read while the other side has
// kHighWatermark bytes queued (backpressure); EOF on one side becomes a shutdown
// of the other (half-close); idle_timeout closes a silent tunnel. It counts bytes.
//
// Two strategies. Every tunnel starts by reading into pooled buffers and writing
// them on (cheap to set up, nothing held per idle tunnel). A TCP-to-TCP tunnel that
// has moved kSpliceAfter bytes switches to splice(2) through a pipe per direction:
// the bytes then go socket -> pipe -> socket inside the kernel, never copied into
// sluice (relay_splice.cpp).
//
// Self-contained on purpose: it knows two streams, a buffer pool and a loop,
// nothing of sessions or protocols.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <uv.h>

#include "base/buffer_pool.hpp"
#include "base/uv_handle.hpp"

namespace sluice::base {

class Relay {
 public:
  static constexpr size_t kHighWatermark = 512 * 1024;
  // Bytes a tunnel moves (both ways) before it switches to splice: short exchanges and
  // idle tunnels never pay for pipes and extra descriptors.
  static constexpr uint64_t kSpliceAfter = 256 * 1024;
  // How a tunnel ended: both directions finished (and which side sent EOF first), an error
  // on one side (read, write or shutdown), no traffic for idle_timeout_ms, or a local failure.
  // FirstBytesRefused: the check given to check_first_client_bytes() said no.
  enum class End {
    ClientEofFirst,
    UpstreamEofFirst,
    ClientError,
    UpstreamError,
    IdleTimeout,
    LocalError,
    FirstBytesRefused
  };

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
  // Before start(): the client's first bytes (what start() is given for the upstream, else its
  // first read) are shown to `check` before they go on; false ends the tunnel
  // (FirstBytesRefused) with nothing of them sent. The credential gateway's stand-in check.
  void check_first_client_bytes(std::function<bool(std::string_view)> check) { first_check_ = std::move(check); }
  // Before start(): the owner's reads on the client / upstream stream are running and are taken
  // over as they are (the stream's read and alloc callbacks swapped) instead of stopped and
  // restarted, which costs libuv 1.44 two epoll_ctl each. `client_eof`: the owner already read
  // the client's EOF; start() passes it on (a shutdown towards the upstream after its bytes).
  void take_over(bool client_reading, bool upstream_reading, bool client_eof) {
    client_.reading = client_reading;
    upstream_.reading = upstream_reading;
    client_.eof = client_eof;
  }
  // Stops reading and hands the data pointers back as they were before start().
  // Writes still queued complete or are cancelled when the owner closes the streams.
  void detach();

  bool active() const { return active_; }
  bool splicing() const { return splicing_; }
  uint64_t bytes_up() const { return bytes_up_; }      // written towards the upstream
  uint64_t bytes_down() const { return bytes_down_; }  // written towards the client

 private:
  struct Side;
  Side& side_of(uv_stream_t* s);
  Side& other(Side& s);
  void update_reading();
  void write(Side& to, std::string bytes, char* block, size_t len);
  void on_data(Side& from, char* block, size_t n);
  void on_eof(Side& from);
  void end(End why);
  End finished() const;               // both directions over: who closed first
  End error_on(const Side& s) const;  // an error on s's connection
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_write(void* relay, int side, int status);  // base::WriteDone
  static void on_shutdown(uv_shutdown_t*, int);
  static void on_idle_timer(uv_timer_t*);

  // splice mode (relay_splice.cpp)
  struct Pipe;
  void maybe_splice();
  bool start_splice();
  void stop_splice();
  void pump(int dir);
  void update_polls();
  static void on_poll(uv_poll_t*, int status, int events);

  struct Side {
    uv_stream_t* stream = nullptr;
    void* saved_data = nullptr;
    bool reading = false;
    bool eof = false;   // this side sent EOF
    bool shut = false;  // shutdown requested towards this side
    bool shut_done = false;
    uint64_t* counter = nullptr;  // bytes written towards this side
  };

  uv_loop_t* loop_;
  BufferPool& pool_;
  uint64_t idle_timeout_ms_;
  uint64_t last_activity_ = 0;
  Side client_, upstream_;
  bool active_ = false;
  const Side* first_eof_ = nullptr;  // the side whose EOF came first
  std::function<void(End)> on_end_;
  std::function<bool(std::string_view)> first_check_;  // check_first_client_bytes(), until used
  uint64_t bytes_up_ = 0, bytes_down_ = 0;
  UvHandle<uv_timer_t> idle_timer_{UvHandle<uv_timer_t>::Empty{}};

  // One pipe per direction: 0 carries client -> upstream, 1 upstream -> client.
  struct Pipe {
    int r = -1, w = -1;
    size_t in_pipe = 0;        // bytes spliced in, not yet out
    size_t capacity = 0;       // the pipe's size
    bool src_eof = false;      // the source side sent EOF
    bool dst_blocked = false;  // the last splice out hit EAGAIN: wait for writable
    bool done = false;         // EOF passed on (shutdown of the destination)
  };
  bool splicing_ = false;
  bool splice_failed_ = false;  // could not set up: stay with buffers
  int fd_[2] = {-1, -1};        // dups of the client (0) and upstream (1) sockets, for the polls
  UvHandle<uv_poll_t> poll_[2] = {UvHandle<uv_poll_t>{UvHandle<uv_poll_t>::Empty{}},
                                  UvHandle<uv_poll_t>{UvHandle<uv_poll_t>::Empty{}}};
  int poll_mask_[2] = {0, 0};
  Pipe pipe_[2];
};

}  // namespace sluice::base
