// Tasks posted from any thread and run on one loop's thread, in order: a mutex-guarded
// list and a uv_async wake-up. A worker takes its new config and its drain this way; the
// control loop takes the results of its job thread. Posting after close() is refused.
#pragma once
#include <functional>
#include <mutex>
#include <vector>

#include <uv.h>

#include "base/uv_handle.hpp"

namespace sluice::base {

class Inbox {
 public:
  // On the loop's thread, before anyone posts. Returns the uv_async_init result.
  int open(uv_loop_t* loop);
  // From any thread. False when the inbox is closed (the loop is finishing): the task is dropped.
  bool post(std::function<void()> task);
  // On the loop's thread: later posts are refused and the wake-up handle closes.
  void close();

 private:
  static void on_wake(uv_async_t* a);
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;  // under mu_
  bool closed_ = false;                       // under mu_
  UvHandle<uv_async_t> wake_{UvHandle<uv_async_t>::Empty{}};
};

}  // namespace sluice::base
