// Time as the rules see it, behind an interface so tests can drive a fake clock.
#pragma once
#include <cstdint>
#include <memory>

namespace sluice::rules {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch, with a fraction (sluice.now()).
  virtual double wall_seconds() const = 0;
  // Milliseconds on a clock that never goes back (counter windows).
  virtual int64_t monotonic_ms() const = 0;
};

// The real clocks: CLOCK_REALTIME and CLOCK_MONOTONIC.
std::shared_ptr<const Clock> system_clock();

}  // namespace sluice::rules
