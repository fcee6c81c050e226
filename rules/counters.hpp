// Counters that outlive connections, shared by every worker: the state behind
// rate limits and byte budgets (sluice.counter in Lua).
//
// A counter is a running total, or a sum over a sliding window kept in
// kBuckets buckets (so a count expires window/kBuckets at a time). Each counter
// has its own small mutex, and the key-to-counter map is split into shards with
// a mutex each: two workers contend only when they touch the same key, or a key
// of the same shard, at the same instant, and the lock is held for a few
// arithmetic operations. Lua keeps the counter it looked up, so the map is not
// consulted again for the same handle.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rules/clock.hpp"

namespace sluice::rules {

class Counter {
 public:
  static constexpr int kBuckets = 16;
  // window_ms 0: a running total with no window.
  explicit Counter(int64_t window_ms);
  void add(double n, int64_t now_ms);
  double get(int64_t now_ms) const;
  // True when dropping the counter changes nothing a script can see: its value is 0
  // now and will stay 0 without another add.
  bool idle(int64_t now_ms) const;
  int64_t window_ms() const { return window_ms_; }

 private:
  struct Bucket {
    int64_t slot = INT64_MIN;  // now_ms / bucket_ms_ when the bucket was last reset
    double sum = 0;
  };
  double sum_locked(int64_t now_ms) const;

  mutable std::mutex mu_;
  const int64_t window_ms_;
  const int64_t bucket_ms_;
  double total_ = 0;  // no window
  std::array<Bucket, kBuckets> buckets_{};
};

class CounterStore {
 public:
  static constexpr size_t kDefaultMaxCounters = 100000;
  explicit CounterStore(std::shared_ptr<const Clock> clock, size_t max_counters = kDefaultMaxCounters);

  // The counter for (key, window), made on first use. Null when the store holds
  // max_counters counters and none of them can be dropped.
  std::shared_ptr<Counter> get(std::string_view key, int64_t window_ms);
  size_t size() const { return count_.load(std::memory_order_relaxed); }
  const Clock& clock() const { return *clock_; }
  int64_t now_ms() const { return clock_->monotonic_ms(); }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<Counter>> map;
  };
  // Drops counters no script holds whose value is 0 for good. Returns how many.
  // At most once a second: a full store of live counters must not make every
  // new key pay for a scan.
  size_t sweep();

  std::shared_ptr<const Clock> clock_;
  const size_t max_counters_;
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> count_{0};
  std::atomic<int64_t> last_sweep_ms_{INT64_MIN / 2};
};

}  // namespace sluice::rules
