#include "bench/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::bench {

namespace {

constexpr uint64_t kLinear = uint64_t{1} << Histogram::kSubBits;  // 512 exact buckets
constexpr uint64_t kHalf = kLinear / 2;                           // 256 sub-buckets per octave

int msb(uint64_t v) { return 63 - __builtin_clzll(v); }

}  // namespace

Histogram::Histogram() : counts_(bucket_count(), 0) {}

size_t Histogram::bucket_count() { return index_of(kMaxValue) + 1; }

size_t Histogram::index_of(uint64_t v) {
  if (v > kMaxValue) v = kMaxValue;
  if (v < kLinear) return static_cast<size_t>(v);
  int shift = msb(v) - (kSubBits - 1);  // >= 1: keeps the top kSubBits bits
  uint64_t top = v >> shift;            // in [kHalf, kLinear)
  return static_cast<size_t>(kLinear + static_cast<uint64_t>(shift - 1) * kHalf + (top - kHalf));
}

uint64_t Histogram::lowest_in(size_t index) {
  if (index < kLinear) return index;
  uint64_t k = index - kLinear;
  int shift = static_cast<int>(k / kHalf) + 1;
  uint64_t top = kHalf + k % kHalf;
  return top << shift;
}

uint64_t Histogram::highest_in(size_t index) {
  if (index < kLinear) return index;
  int shift = static_cast<int>((index - kLinear) / kHalf) + 1;
  return lowest_in(index) + (uint64_t{1} << shift) - 1;
}

void Histogram::record(uint64_t v) {
  if (v > kMaxValue) v = kMaxValue;
  ++counts_[index_of(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  sum_ += v;
}

void Histogram::merge(const Histogram& o) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  sum_ += o.sum_;
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  if (p >= 100.0) return max_;
  if (p < 0) p = 0;
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(highest_in(i), min_, max_);
  }
  return max_;
}

}  // namespace sluice::bench
