// FileWatch on a real loop and a real directory: a write, a rename over the
// file and a new file of a watched name each call back (once per burst); files
// beside them do not.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "proxy/file_watch.hpp"

using sluice::proxy::FileWatch;

namespace {

struct Dir {
  std::string path;
  Dir() {
    char t[] = "/tmp/sluice-watch-test-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~Dir() {
    std::string cmd = "rm -rf '" + path + "'";
    if (system(cmd.c_str()) != 0) MESSAGE("could not remove " << path);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Runs the loop until `count` reaches `want` or `limit_ms` pass; then a further 300 ms
// to catch extra callbacks. Returns the count.
int run_until(uv_loop_t* loop, int& count, int want, const std::function<void()>& act, uint64_t limit_ms = 3000) {
  uv_timer_t deadline;
  uv_timer_init(loop, &deadline);
  uv_timer_start(
      &deadline, [](uv_timer_t* t) { uv_stop(t->loop); }, limit_ms, 0);
  act();
  while (count < want && uv_run(loop, UV_RUN_ONCE) != 0 && uv_is_active(reinterpret_cast<uv_handle_t*>(&deadline))) {
  }
  uv_timer_start(
      &deadline, [](uv_timer_t* t) { uv_stop(t->loop); }, 300, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return count;
}

}  // namespace

TEST_CASE("FileWatch calls back for the watched files only") {
  Dir d;
  write(d.file("a.lua"), "v1");
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  int calls = 0;
  {
    FileWatch watch(
        &loop, [&] { ++calls; }, 50);
    CHECK(watch.watch({d.file("a.lua"), d.file("missing-yet.lua")}) == "");
    CHECK(watch.directories() == 1);

    CHECK(run_until(&loop, calls, 1, [&] { write(d.file("a.lua"), "v2"); }) == 1);
    CHECK(run_until(&loop, calls, 2, [&] {
            write(d.file("a.lua.tmp"), "v3");
            REQUIRE(std::rename(d.file("a.lua.tmp").c_str(), d.file("a.lua").c_str()) == 0);
          }) == 2);
    CHECK(run_until(&loop, calls, 3, [&] { write(d.file("missing-yet.lua"), "new"); }) == 3);
    // No callback is the expected outcome: 10 debounce periods are long enough to see one.
    CHECK(run_until(
              &loop, calls, 4, [&] { write(d.file("other.txt"), "x"); }, 500) == 3);

    std::string err = watch.watch({"/nonexistent-dir-for-sluice-test/x.lua"});
    CHECK(err.find("cannot watch /nonexistent-dir-for-sluice-test") == 0);
    watch.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
