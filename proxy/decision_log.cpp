#include "proxy/decision_log.hpp"

#include <sys/time.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "proxy/events.hpp"

namespace sluice::proxy {

DecisionLog::~DecisionLog() { stop(); }

std::string DecisionLog::open(const std::string& path) {
  FILE* f = nullptr;
  bool own = false;
  if (path == "-") {
    f = stdout;
  } else if (!path.empty()) {
    f = std::fopen(path.c_str(), "ae");
    if (f == nullptr) return "cannot open log " + path + ": " + std::strerror(errno);
    own = true;
  }
  std::unique_lock lock(mu_);
  drained_.wait(lock, [&] { return queue_.empty() && !writing_; });
  if (own_file_ && out_ != nullptr) std::fclose(out_);
  out_ = f;
  own_file_ = own;
  enabled_.store(f != nullptr, std::memory_order_relaxed);
  if (f != nullptr) start_writer();
  return "";
}

void DecisionLog::set_denial_stream(FILE* f) {
  std::unique_lock lock(mu_);
  denial_out_ = f;
  if (f != nullptr) start_writer();
}

void DecisionLog::start_writer() {
  if (!writer_.joinable()) writer_ = std::thread([this] { run(); });
}

bool DecisionLog::wanted() const { return enabled() || (tap_ != nullptr && tap_->wanted()); }

void DecisionLog::write(std::string line) {
  const bool to_file = enabled();
  if (tap_ != nullptr && tap_->wanted()) {
    if (!to_file) return tap_->publish(std::move(line));
    tap_->publish(line);
  }
  if (to_file) push(std::move(line), false);
}

void DecisionLog::denial(std::string line) {
  if (denials_enabled()) push(std::move(line), true);
}

// Only a push that finds the writer asleep wakes it: under load the writer is
// gathering a batch and lines join it without a futex wake per line.
void DecisionLog::push(std::string text, bool human) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    queue_.push_back(Entry{std::move(text), human});
    wake = writer_idle_;
    writer_idle_ = false;
  }
  if (wake) cv_.notify_one();
}

void DecisionLog::flush() {
  std::unique_lock lock(mu_);
  flush_requested_ = true;
  lock.unlock();
  cv_.notify_one();
  lock.lock();
  drained_.wait(lock, [&] { return (queue_.empty() && !writing_) || !writer_.joinable(); });
}

void DecisionLog::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (writer_.joinable()) writer_.join();
  if (own_file_ && out_ != nullptr) std::fclose(out_);
  out_ = nullptr;
  own_file_ = false;
  enabled_.store(false, std::memory_order_relaxed);
}

void DecisionLog::run() {
  std::deque<Entry> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      writing_ = false;
      drained_.notify_all();
      writer_idle_ = true;
      cv_.wait(lock, [&] { return stopping_ || flush_requested_ || !queue_.empty(); });
      // Gather: lines arriving in the next kBatchMs join this write (one wake per batch,
      // not per line). stop() and flush() cut the wait short.
      writer_idle_ = false;
      cv_.wait_for(lock, std::chrono::milliseconds(kBatchMs), [&] { return stopping_ || flush_requested_; });
      flush_requested_ = false;
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
      writing_ = true;
    }
    // out_ only changes while the queue is empty and nothing is being written.
    FILE* const denial_out = denial_out_.load(std::memory_order_relaxed);
    for (auto& e : batch) {
      FILE* to = e.human ? denial_out : out_;
      if (to == nullptr) continue;
      e.text += '\n';
      std::fwrite(e.text.data(), 1, e.text.size(), to);
    }
    if (out_ != nullptr) std::fflush(out_);
    if (denial_out != nullptr) std::fflush(denial_out);
    batch.clear();
  }
}

std::string DecisionLog::now_iso8601() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  // Every line asks; the date and time part changes once a second, per thread.
  thread_local time_t cached_sec = -1;
  thread_local char prefix[32];
  thread_local size_t prefix_len = 0;
  if (tv.tv_sec != cached_sec) {
    tm t{};
    gmtime_r(&tv.tv_sec, &t);
    prefix_len = std::strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S", &t);
    cached_sec = tv.tv_sec;
  }
  const int ms = static_cast<int>(tv.tv_usec / 1000);
  std::string out(prefix, prefix_len);
  out += '.';
  out += static_cast<char>('0' + ms / 100);
  out += static_cast<char>('0' + ms / 10 % 10);
  out += static_cast<char>('0' + ms % 10);
  out += 'Z';
  return out;
}

}  // namespace sluice::proxy
