// A log-bucketed latency histogram in the manner of HdrHistogram: exact below 512, then 256
// sub-buckets per power of two, so any recorded value is known to within 1/256 (about 0.4%,
// between two and three significant digits). Fixed size, no allocation on record(), mergeable
// across threads. Values are unsigned integers (the load generator records nanoseconds).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 9;                              // linear range: [0, 2^9)
  static constexpr uint64_t kMaxValue = (uint64_t{1} << 44) - 1;  // ~4.9 h in ns; larger values clamp

  Histogram();

  void record(uint64_t value);
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_ / count_) : 0.0; }

  // The value at percentile p (0..100]: the highest value that shares a bucket with the
  // ceil(p% * count)-th smallest recorded value, never above the exact maximum.
  uint64_t percentile(double p) const;

  // Bucket geometry, public so tests can state the precision contract.
  static size_t index_of(uint64_t value);
  static uint64_t lowest_in(size_t index);
  static uint64_t highest_in(size_t index);
  static size_t bucket_count();

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace sluice::bench
