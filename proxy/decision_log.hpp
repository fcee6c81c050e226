// JSON-lines decision log. Loop threads only enqueue; a writer thread does the
// file I/O, so no worker ever blocks on disk.
#pragma once
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace sluice::proxy {

class DecisionLog {
 public:
  DecisionLog() = default;
  ~DecisionLog();
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // path: "-" stdout, "" disabled, otherwise appended to. Returns "" or an error line.
  // May be called again to switch files (reload).
  std::string open(const std::string& path);
  void write(std::string line);  // one JSON object, no newline
  void flush();                  // waits until everything queued so far is written
  void stop();                   // drains the queue and joins the writer
  bool enabled() const { return enabled_; }

  static std::string now_iso8601();

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable drained_;
  std::deque<std::string> queue_;
  FILE* out_ = nullptr;
  bool own_file_ = false;
  bool stopping_ = false;
  bool writing_ = false;
  bool enabled_ = false;
  std::thread writer_;
};

}  // namespace sluice::proxy
