// JSON-lines decision log. Loop threads only enqueue; a writer thread does the
// file I/O, so no worker ever blocks on disk.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace sluice::proxy {

class EventBus;

class DecisionLog {
 public:
  DecisionLog() = default;
  ~DecisionLog();
  DecisionLog(const DecisionLog&) = delete;
  DecisionLog& operator=(const DecisionLog&) = delete;

  // path: "-" stdout, "" disabled, otherwise appended to. Returns "" or an error line.
  // May be called again to switch files (reload).
  std::string open(const std::string& path);
  void write(std::string line);  // one JSON object, no newline; also published on the tap
  // Before workers start: every line written is also published on `bus` (the event stream).
  void set_tap(EventBus* bus) { tap_ = bus; }
  // Whether a line written now goes anywhere: the file, or a watcher of the event stream.
  bool wanted() const;
  // Human one-liners for denials (sluice run prints them on its stderr).
  void set_denial_stream(FILE* f);
  bool denials_enabled() const { return denial_out_.load(std::memory_order_relaxed) != nullptr; }
  void denial(std::string line);
  void flush();  // waits until everything queued so far is written
  void stop();   // drains the queue and joins the writer
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

  static std::string now_iso8601();

 private:
  void run();
  void start_writer();
  void push(std::string text, bool human);
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable drained_;
  struct Entry {
    std::string text;
    bool human;
  };
  std::deque<Entry> queue_;
  // Read by every worker for each line, written by open()/set_denial_stream() on reload:
  // atomics, so a reload never races a worker's check (the file itself changes under mu_).
  std::atomic<FILE*> denial_out_{nullptr};
  FILE* out_ = nullptr;
  bool own_file_ = false;
  // How long the writer gathers lines before writing them (one wake per batch).
  static constexpr int kBatchMs = 20;
  bool stopping_ = false;
  bool writing_ = false;
  bool writer_idle_ = false;      // the writer sleeps until a line arrives
  bool flush_requested_ = false;  // flush() or stop() want the batch written now
  std::atomic<bool> enabled_{false};
  EventBus* tap_ = nullptr;
  std::thread writer_;
};

}  // namespace sluice::proxy
