#include "proxy/events.hpp"

namespace sluice::proxy {

void EventBus::publish(std::string line) {
  if (!wanted()) return;
  std::function<void()>* wake = nullptr;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Only the line that finds the queue empty wakes the control loop: one wake per batch.
    if (queue_.empty() && wake_) wake = &wake_;
    queue_.push_back(std::move(line));
    if (wake) (*wake)();  // under the lock: set_wake() cannot swap it away meanwhile
  }
}

void EventBus::set_wake(std::function<void()> wake) {
  std::lock_guard lock(mu_);
  wake_ = std::move(wake);
}

std::vector<std::string> EventBus::take() {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  out.swap(queue_);
  return out;
}

}  // namespace sluice::proxy
