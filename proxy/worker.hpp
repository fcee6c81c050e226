// One worker: a thread with its own uv loop, resolver, buffer pool and share
// of every listener. Other threads talk to it only through post().
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/inbox.hpp"
#include "proxy/ask.hpp"
#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/handover_frame.hpp"
#include "proxy/listener.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resolver.hpp"
#include "proxy/worker_context.hpp"
#include "rules/rule_engine.hpp"

namespace sluice::proxy {

class DecisionLog;

// State every worker shares; each field is safe to use from any thread.
struct SharedState {
  DecisionLog* log = nullptr;
  std::atomic<uint64_t> next_id{1};
  std::atomic<size_t> active{0};
  std::vector<rules::IpAddr> self_addresses;  // set before workers start, read-only after
  AskBroker* asks = nullptr;                  // set before workers start
  int loop_probe_ms = 0;                      // > 0: the loop-lag probe's period
  // TLS inspection (null: no CA). Replaced by a reload that changes `tls:`; read by workers.
  mutable std::mutex inspector_mu;
  std::shared_ptr<tls::Inspector> inspector;  // under inspector_mu
};

class Worker final : public WorkerContext {
 public:
  // `rules`: this worker's Lua states for `config` (null when no policy has rules).
  Worker(int index, SharedState& shared, std::shared_ptr<const rules::Config> config,
         std::shared_ptr<rules::WorkerRules> rules);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Before start(): builds the resolver and listener handles. Returns "" or an error.
  std::string prepare(const std::vector<BoundListener>& listeners);
  void start();
  // Thread-safe: runs `fn` on the worker's loop thread. False (and `fn` dropped) once the
  // worker has finished.
  bool post(std::function<void()> fn);
  // Thread-safe: new connections use `config` and `rules` from now on, swapped
  // together on the loop thread; open connections keep the version they started with.
  void set_config(std::shared_ptr<const rules::Config> config, std::shared_ptr<rules::WorkerRules> rules);
  // Thread-safe: stop accepting; idle connections close now, busy ones get `drain_ms`.
  void stop(int drain_ms);
  // Thread-safe: `fd` is one end of a unix socketpair on which a launcher's in-jail bridge
  // sends the connections it accepts (SCM_RIGHTS, libuv IPC framing, one message per
  // descriptor: proxy/handover_frame.hpp); each becomes a session of `info`'s listener, as if
  // accepted here; a transparent one starts judged by the bridge's target. A malformed
  // message closes the channel and every descriptor queued on it. The worker owns and closes fd.
  void adopt_channel(int fd, std::shared_ptr<const ListenerInfo> info);
  // Thread-safe: start accepting on a listener bound after start() (a sandbox made
  // through the control API); the worker takes its own close-on-exec copy of the socket.
  void add_listener(const BoundListener& l);
  // Thread-safe: accept on `fd` (a sandbox's listening socket) on this worker alone; the
  // worker owns fd from now on and closes it when the listener is removed.
  void own_listener(int fd, std::shared_ptr<const ListenerInfo> info);
  // Thread-safe: stop accepting on the listener named `name` (open connections stay).
  void remove_listener(const std::string& name);
  // Thread-safe: `done` runs on this worker's thread with a copy of its counters (the
  // probe's maximum restarts from then on). False when the worker has finished.
  bool snapshot_metrics(std::function<void(const WorkerMetrics&)> done);
  void join();

  // WorkerContext
  uv_loop_t* loop() override { return &loop_; }
  Resolver& resolver() override { return *resolver_; }
  DecisionLog& log() override { return *shared_.log; }
  BufferPool& buffers() override { return buffers_; }
  WorkerMetrics& metrics() override { return metrics_; }
  uint64_t ask(const AskRequest& r, std::function<void(const AskAnswer&)> resume, uint64_t* question) override;
  void cancel_ask(uint64_t ticket, bool timeout) override;
  uint64_t next_connection_id() override { return shared_.next_id.fetch_add(1); }
  const std::vector<rules::IpAddr>& self_addresses() override { return shared_.self_addresses; }
  void connection_finished(void* c) override;
  void hand_over(void* from, OwnedConnection to) override;
  std::shared_ptr<tls::Inspector> inspector() override {
    std::lock_guard lock(shared_.inspector_mu);
    return shared_.inspector;
  }

 private:
  struct Accept {
    Worker* worker;
    std::shared_ptr<const ListenerInfo> info;
    bool is_unix;
    UvHandle<AnyStream> handle;
  };
  struct Channel {
    Worker* worker;
    std::shared_ptr<const ListenerInfo> info;
    UvHandle<uv_pipe_t> pipe;
    std::string in;  // the start of a message not yet complete (at most kMaxHandOverMessage)
    char buf[4096];
  };
  static void on_connection(uv_stream_t* server, int status);
  static void on_channel_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  // One accepted connection (from a listener, or handed over on a channel) becomes a session;
  // `transparent`: a transparent connection the bridge handed over with its decision.
  void accept_from(uv_stream_t* server, const std::shared_ptr<const ListenerInfo>& info, bool is_unix,
                   TransparentStart* transparent = nullptr);
  void close_channel(Channel* c);
  // Creates the accept handle for worker's copy `fd` of a listening socket; "" or an error.
  std::string open_accept(int fd, std::shared_ptr<const ListenerInfo> info);
  void deliver_answer(uint64_t local, const AskAnswer& a);
  static void on_probe(uv_timer_t* t);
  static void on_loop_turn(uv_prepare_t* p);
  void begin_stop(int drain_ms);
  void maybe_finish();

  int index_;
  SharedState& shared_;
  std::shared_ptr<const rules::Config> config_;
  std::shared_ptr<rules::WorkerRules> rules_;
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  std::unique_ptr<Resolver> resolver_;
  BufferPool buffers_;
  WorkerMetrics metrics_;
  // Connections waiting for an answer: local ticket -> (broker ticket, resume).
  struct Waiting {
    uint64_t broker_ticket;
    std::function<void(const AskAnswer&)> resume;
  };
  std::unordered_map<uint64_t, Waiting> waiting_;
  uint64_t next_wait_ = 1;
  UvHandle<uv_timer_t> probe_{UvHandle<uv_timer_t>::Empty{}};
  uint64_t probe_due_ns_ = 0;
  UvHandle<uv_prepare_t> turn_probe_{UvHandle<uv_prepare_t>::Empty{}};
  uint64_t turn_cpu_ns_ = 0;  // the thread's CPU time at the previous loop turn
  std::vector<std::unique_ptr<Accept>> accepts_;
  std::vector<std::unique_ptr<Channel>> channels_;
  struct Entry {
    OwnedConnection conn;
    std::shared_ptr<const ListenerInfo> listener;  // whose `active` count it holds
  };
  std::unordered_map<void*, Entry> connections_;
  base::Inbox inbox_;  // post(): the only way other threads reach this worker
  UvHandle<uv_timer_t> drain_timer_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice::proxy
