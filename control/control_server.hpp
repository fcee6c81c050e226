// The control socket: HTTP/1.1 on a unix socket (mode 0600), parsed with the
// same llhttp wrapper as the data plane, one request at a time per connection,
// JSON in and out (docs/control-api.md). It runs on its own loop (the main
// thread of `sluice serve`), never on a worker's; workers are reached only
// through the control plane and Worker::post.
//
// GET /v1/events turns a connection into an event reader: lines from the event
// bus are fanned out to every reader, each with its own bound on what may be
// queued for it; a reader over the bound gets a final note and is disconnected,
// so a slow reader costs memory up to that bound and never slows anything else.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <uv.h>

#include "proxy/connection.hpp"
#include "base/inbox.hpp"
#include "proxy/base_aliases.hpp"

namespace sluice::proxy {

class ControlPlane;

struct ControlRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', raw
  std::string body;
  PeerCred peer;
  uint64_t conn = 0;  // the connection's id (sandbox leases)
};

struct ControlReply {
  ControlReply() = default;
  ControlReply(int s, std::string b) : status(s), body(std::move(b)) {}
  int status = 200;
  std::string body;  // sent as it is, with a newline appended
  std::string content_type = "application/json";
  std::string allow;    // 405: the methods the path takes
  bool events = false;  // 200, then the connection becomes an event reader
  bool close = false;   // close the connection after this reply
};

class ControlServer {
 public:
  // An event reader with more than this queued (not yet taken by its socket) is dropped.
  // Memory per reader is bounded by this plus one batch.
  static constexpr size_t kReaderMaxQueued = 512 * 1024;
  // Largest request body (a 100,000-entry list is about 3 MB).
  static constexpr size_t kMaxBody = 64 * 1024 * 1024;

  ControlServer(uv_loop_t* loop, ControlPlane& plane);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `path` with mode 0600 (a stale socket of a dead process is replaced). "" or an error.
  std::string listen(const std::string& path);
  // Stops listening and closes every connection (readers get a final note first).
  void close();

  // Waits for the job running now (if any) and drops the rest: before the server stops, so
  // no reload or list replacement touches it while it does.
  void stop_jobs();

  // Thread-safe: runs `fn` on the control loop.
  void post(std::function<void()> fn);
  // Runs `work` on the control plane's job thread (one job at a time, at a lower CPU
  // priority than the workers, so building a big list never takes a core from them),
  // then `done` on the control loop.
  void off_loop(std::function<void()> work, std::function<void()> done);
  // The connection `conn` (a request's) holds sandbox `name`: it is removed when the connection closes.
  void lease(uint64_t conn, const std::string& name);

  uv_loop_t* loop() const { return loop_; }
  ControlPlane& plane() { return plane_; }
  uint64_t readers_dropped() const { return readers_dropped_; }

 private:
  struct Conn;
  static void on_connection(uv_stream_t* server, int status);
  void accept_one();
  void read_more(Conn& c);
  void process(const std::shared_ptr<Conn>& c, bool kick);
  void dispatch(const std::shared_ptr<Conn>& c);
  void respond(const std::shared_ptr<Conn>& c, ControlReply r);
  void write(Conn& c, std::shared_ptr<const std::string> bytes);
  void close_conn(const std::shared_ptr<Conn>& c);
  void fan_out();
  void pump(const std::shared_ptr<Conn>& c);
  void drop_reader(const std::shared_ptr<Conn>& c, const std::string& why);
  void sweep();
  void run_jobs();

  uv_loop_t* loop_;
  ControlPlane& plane_;
  std::string path_;
  UvHandle<uv_pipe_t> listener_{UvHandle<uv_pipe_t>::Empty{}};
  UvHandle<uv_async_t> events_wake_{UvHandle<uv_async_t>::Empty{}};
  UvHandle<uv_timer_t> sweep_timer_{UvHandle<uv_timer_t>::Empty{}};
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> conns_;
  std::vector<std::weak_ptr<Conn>> readers_;
  uint64_t next_conn_ = 1;
  uint64_t readers_dropped_ = 0;
  base::Inbox inbox_;  // what the job thread hands back to the control loop
  bool closed_ = false;
  struct Job {
    std::function<void()> work, done;
  };
  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<Job> jobs_;
  bool jobs_stop_ = false;
  std::thread jobs_thread_;
};

// The API: routes a request to the control plane and replies (possibly later,
// from the job thread's completion). `reply` must be called once, on the control loop.
void handle_control_request(ControlServer& server, const ControlRequest& req, std::function<void(ControlReply)> reply);

}  // namespace sluice::proxy
