#include "base/inbox.hpp"

namespace sluice::base {

int Inbox::open(uv_loop_t* loop) {
  int r = wake_.init([&](uv_async_t* a) { return uv_async_init(loop, a, on_wake); });
  if (r == 0) wake_.get()->data = this;
  return r;
}

bool Inbox::post(std::function<void()> task) {
  std::lock_guard lock(mu_);
  if (closed_ || !wake_.live()) return false;
  tasks_.push_back(std::move(task));
  uv_async_send(wake_.get());  // under mu_: close() cannot free the handle meanwhile
  return true;
}

void Inbox::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  wake_.close();
}

void Inbox::on_wake(uv_async_t* a) {
  auto* self = static_cast<Inbox*>(a->data);
  std::vector<std::function<void()>> todo;
  {
    std::lock_guard lock(self->mu_);
    todo.swap(self->tasks_);
  }
  for (auto& task : todo) {
    try {
      task();
    } catch (...) {
      // A failed task must not take the loop down; its owner reports its own errors.
    }
  }
}

}  // namespace sluice::base
