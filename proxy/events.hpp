// The event stream's intake: every line the decision log writes (decisions,
// closes, reloads, asks, answers, errors) is also published here while someone
// watches (GET /v1/events). Publishing never blocks on a reader: lines go into
// one bounded queue that the control loop empties; each reader then has its own
// bounded queue (control/control_server.cpp), and a reader that falls behind is
// dropped there, never waited for.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::proxy {

class EventBus {
 public:
  // Lines queued for the control loop beyond this are dropped (and counted): the
  // control loop is not keeping up, and workers must not wait for it.
  static constexpr size_t kMaxQueued = 65536;

  // Any thread; cheap (one relaxed load) when nobody watches.
  bool wanted() const { return readers_.load(std::memory_order_relaxed) > 0; }
  // Any thread: one JSON object, no newline.
  void publish(std::string line);

  // Control side. `wake` runs on the publishing thread when the queue stops being
  // empty; it must only signal (uv_async_send), never do the work.
  void set_wake(std::function<void()> wake);
  std::vector<std::string> take();
  void add_reader() { readers_.fetch_add(1, std::memory_order_relaxed); }
  void remove_reader() { readers_.fetch_sub(1, std::memory_order_relaxed); }
  int readers() const { return readers_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> readers_{0};
  std::atomic<uint64_t> dropped_{0};
  std::mutex mu_;
  std::vector<std::string> queue_;
  std::function<void()> wake_;
};

}  // namespace sluice::proxy
