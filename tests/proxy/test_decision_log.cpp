// The decision log under a reload: workers write while another thread switches the file.
// The ThreadSanitizer build (scripts/test.sh) turns a race here into a failure.
#include <doctest/doctest.h>

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "proxy/decision_log.hpp"

using sluice::proxy::DecisionLog;

TEST_CASE("switching the log file while workers write loses no line's integrity") {
  char dir[] = "/tmp/sluice-log-test-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/decisions.jsonl";
  DecisionLog log;
  REQUIRE(log.open(path) == "");
  std::atomic<bool> done{false};
  std::atomic<int> written{0};
  // A worker deciding whether to build a line reads the flags without the log's mutex.
  std::atomic<long> checks{0}, flags_on{0};
  std::thread reader([&] {
    for (long i = 0; i < 10'000'000 && !done.load(std::memory_order_relaxed); ++i) {
      flags_on.fetch_add(log.enabled() + log.wanted() + log.denials_enabled(), std::memory_order_relaxed);
      checks.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::thread worker([&] {
    // Runs for as long as the reloads do (bounded), so every switch meets reads.
    for (int i = 0; i < 20'000 && !done.load(); ++i) {
      if (log.wanted()) {
        log.write("{\"n\":" + std::to_string(i) + "}");
        written.fetch_add(1);
      }
      (void)log.enabled();
      (void)log.denials_enabled();
    }
  });
  // Both threads are running before the first switch (on a loaded machine a thread can start
  // late: the reads must meet the switches, not follow them).
  while (written.load() == 0 || checks.load() == 0) std::this_thread::yield();
  for (int i = 0; i < 50; ++i) REQUIRE(log.open(i % 2 ? path : "") == "");  // reload: off, on, off, ...
  done.store(true);
  worker.join();
  reader.join();
  CHECK(flags_on.load() > 0);  // the reader saw the log on at least once (it was on when it started)
  REQUIRE(log.open(path) == "");
  log.write("{\"last\":true}");
  log.flush();
  log.stop();
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  bool last = false;
  while (std::getline(in, line)) {
    ++lines;
    CHECK(line.front() == '{');
    CHECK(line.back() == '}');
    last = line == "{\"last\":true}";
  }
  CHECK(last);
  CHECK(lines >= 1);
  CHECK(lines <= written.load() + 1);  // never more lines than were written
  std::remove(path.c_str());
  rmdir(dir);
}
