#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "bench/histogram.hpp"

using sluice::bench::Histogram;

TEST_CASE("histogram: empty") {
  Histogram h;
  CHECK(h.count() == 0);
  CHECK(h.percentile(50) == 0);
  CHECK(h.max() == 0);
  CHECK(h.min() == 0);
  CHECK(h.mean() == 0);
}

TEST_CASE("histogram: exact below 512") {
  Histogram h;
  for (uint64_t v = 0; v < 512; ++v) h.record(v);
  CHECK(h.percentile(50) == 255);  // the 256th of 512 values
  CHECK(h.percentile(100) == 511);
  CHECK(h.percentile(0.1) == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 511);
}

TEST_CASE("histogram: 1..1000 us uniform, recorded in ns") {
  Histogram h;
  for (uint64_t us = 1; us <= 1000; ++us) h.record(us * 1000);
  CHECK(h.count() == 1000);
  auto near = [](uint64_t got, double want) { return std::abs(static_cast<double>(got) - want) <= want / 256.0; };
  CHECK(near(h.percentile(50), 500'000));
  CHECK(near(h.percentile(90), 900'000));
  CHECK(near(h.percentile(99), 990'000));
  CHECK(near(h.percentile(99.9), 999'000));
  CHECK(h.percentile(50) >= 500'000);  // the bucket's highest value: never below the true one
  CHECK(h.max() == 1'000'000);         // exact
  CHECK(h.percentile(100) == 1'000'000);
  CHECK(h.min() == 1'000);
  CHECK(h.mean() == doctest::Approx(500'500.0));
}

TEST_CASE("histogram: buckets tile the range with <= 1/256 relative width") {
  for (size_t i = 0; i + 1 < Histogram::bucket_count(); ++i) {
    REQUIRE(Histogram::highest_in(i) + 1 == Histogram::lowest_in(i + 1));
    uint64_t lo = Histogram::lowest_in(i), width = Histogram::highest_in(i) - lo + 1;
    if (lo >= 512) REQUIRE(width * 256 <= lo);
  }
  std::mt19937_64 rng(42);
  for (int k = 0; k < 100000; ++k) {
    uint64_t v = rng() >> (rng() % 60 + 4);
    if (v > Histogram::kMaxValue) continue;
    size_t i = Histogram::index_of(v);
    REQUIRE(Histogram::lowest_in(i) <= v);
    REQUIRE(v <= Histogram::highest_in(i));
  }
}

TEST_CASE("histogram: merge equals recording everything in one") {
  Histogram a, b, all;
  for (uint64_t v = 1; v <= 5000; ++v) {
    (v % 3 ? a : b).record(v * 37);
    all.record(v * 37);
  }
  a.merge(b);
  CHECK(a.count() == all.count());
  CHECK(a.min() == all.min());
  CHECK(a.max() == all.max());
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) CHECK(a.percentile(p) == all.percentile(p));
}

TEST_CASE("histogram: huge values clamp, reset clears") {
  Histogram h;
  h.record(UINT64_MAX);
  CHECK(h.max() == Histogram::kMaxValue);
  CHECK(h.percentile(50) == Histogram::kMaxValue);
  h.reset();
  CHECK(h.count() == 0);
  h.record(7);
  CHECK(h.percentile(99) == 7);
}
