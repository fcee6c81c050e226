// base::Inbox: tasks from other threads run on the loop's thread, in order, and none after close.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "base/inbox.hpp"

TEST_CASE("inbox: tasks posted from another thread run on the loop, in order; none after close") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  sluice::base::Inbox inbox;
  REQUIRE(inbox.open(&loop) == 0);
  std::vector<int> ran;  // touched only on the loop's thread
  const auto loop_thread = std::this_thread::get_id();
  std::atomic<bool> off_thread{false};
  std::thread poster([&] {
    for (int i = 0; i < 1000; ++i)
      CHECK(inbox.post([&, i] {
        if (std::this_thread::get_id() != loop_thread) off_thread = true;
        ran.push_back(i);
        if (i == 999) inbox.close();  // the last task closes it: uv_run returns
      }));
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  poster.join();
  CHECK_FALSE(off_thread.load());
  REQUIRE(ran.size() == 1000);
  for (int i = 0; i < 1000; ++i) CHECK(ran[static_cast<size_t>(i)] == i);
  CHECK_FALSE(inbox.post([&] { ran.push_back(-1); }));  // refused once closed
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(ran.size() == 1000);
  CHECK(uv_loop_close(&loop) == 0);
}
