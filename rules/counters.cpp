#include "rules/counters.hpp"

#include <time.h>

#include <cmath>
#include <functional>

namespace sluice::rules {

namespace {

class SystemClock final : public Clock {
 public:
  double wall_seconds() const override {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  }
  int64_t monotonic_ms() const override {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  }
};

}  // namespace

std::shared_ptr<const Clock> system_clock() {
  static const auto clock = std::make_shared<const SystemClock>();
  return clock;
}

// ---- Counter ---------------------------------------------------------------

Counter::Counter(int64_t window_ms)
    : window_ms_(window_ms), bucket_ms_(window_ms > 0 ? std::max<int64_t>(1, window_ms / kBuckets) : 1) {}

void Counter::add(double n, int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (window_ms_ == 0) {
    total_ += n;
    return;
  }
  int64_t slot = now_ms / bucket_ms_;
  Bucket& b = buckets_[static_cast<size_t>(slot % kBuckets)];
  if (b.slot != slot) b = Bucket{slot, 0};
  b.sum += n;
}

// A bucket counts while its slot is one of the last kBuckets slots, the current one included.
double Counter::sum_locked(int64_t now_ms) const {
  if (window_ms_ == 0) return total_;
  int64_t slot = now_ms / bucket_ms_;
  double sum = 0;
  for (const Bucket& b : buckets_)
    if (b.slot != INT64_MIN && b.slot > slot - kBuckets && b.slot <= slot) sum += b.sum;
  return sum;
}

double Counter::get(int64_t now_ms) const {
  std::lock_guard lock(mu_);
  return sum_locked(now_ms);
}

bool Counter::idle(int64_t now_ms) const {
  std::lock_guard lock(mu_);
  if (window_ms_ == 0) return total_ == 0;
  int64_t slot = now_ms / bucket_ms_;
  for (const Bucket& b : buckets_)
    if (b.slot != INT64_MIN && b.slot > slot - kBuckets && b.sum != 0) return false;
  return true;
}

// ---- CounterStore ----------------------------------------------------------

CounterStore::CounterStore(std::shared_ptr<const Clock> clock, size_t max_counters)
    : clock_(std::move(clock)), max_counters_(max_counters) {}

std::shared_ptr<Counter> CounterStore::get(std::string_view key, int64_t window_ms) {
  // The window is part of the identity: counter("k") and counter("k", 60) are two counters.
  std::string full(key);
  full += '\0';
  full += std::to_string(window_ms);
  Shard& shard = shards_[std::hash<std::string>{}(full) % kShards];
  {
    std::lock_guard lock(shard.mu);
    if (auto it = shard.map.find(full); it != shard.map.end()) return it->second;
  }
  if (count_.load(std::memory_order_relaxed) >= max_counters_ && sweep() == 0 &&
      count_.load(std::memory_order_relaxed) >= max_counters_)
    return nullptr;
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.map.try_emplace(std::move(full), nullptr);
  if (inserted) {
    it->second = std::make_shared<Counter>(window_ms);
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  return it->second;
}

size_t CounterStore::sweep() {
  int64_t now = clock_->monotonic_ms();
  int64_t last = last_sweep_ms_.load(std::memory_order_relaxed);
  if (now - last < 1000 || !last_sweep_ms_.compare_exchange_strong(last, now)) return 0;
  size_t dropped = 0;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (auto it = shard.map.begin(); it != shard.map.end();) {
      // use_count 1: only the map holds it, so no script can add to it behind our back.
      if (it->second.use_count() == 1 && it->second->idle(now)) {
        it = shard.map.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
  }
  count_.fetch_sub(dropped, std::memory_order_relaxed);
  return dropped;
}

}  // namespace sluice::rules
