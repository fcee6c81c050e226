// RAII for libuv handles: the handle memory lives on the heap and is freed in
// its close callback, so an owner may be destroyed while uv_close is pending.
#pragma once
#include <uv.h>

#include <utility>

namespace sluice::base {

template <class T>
class UvHandle {
 public:
  UvHandle() : h_(new T{}) {}
  // An empty owner, to be filled by a move.
  struct Empty {};
  explicit UvHandle(Empty) {}
  ~UvHandle() { close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  // Moving hands the live handle over (e.g. from the protocol sniffer to a session, or from
  // the dialer to its caller); the new owner sets handle()->data. The source is left empty.
  UvHandle(UvHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)), live_(std::exchange(o.live_, false)) {}
  UvHandle& operator=(UvHandle&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, nullptr);
      live_ = std::exchange(o.live_, false);
    }
    return *this;
  }

  T* get() const { return h_; }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_); }
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(h_); }
  bool live() const { return h_ != nullptr && live_; }

  // Runs a uv_*_init call; the handle needs uv_close only when it succeeded.
  template <class Init>
  int init(Init&& f) {
    if (h_ == nullptr) h_ = new T{};
    int r = f(h_);
    live_ = (r == 0);
    return r;
  }

  // Closes the handle. `on_closed` (optional) runs from the close callback with
  // the data pointer the handle had, before the memory is freed; owners use it
  // to learn when the last callback for this handle has run.
  void close(void (*on_closed)(void* data) = nullptr) {
    if (h_ == nullptr) return;
    T* h = std::exchange(h_, nullptr);
    if (!std::exchange(live_, false)) {
      delete h;
      return;
    }
    auto* hh = reinterpret_cast<uv_handle_t*>(h);
    hh->data = new CloseBox{on_closed, hh->data};
    uv_close(hh, [](uv_handle_t* x) {
      auto* box = static_cast<CloseBox*>(x->data);
      if (box->cb) box->cb(box->data);
      delete box;
      delete reinterpret_cast<T*>(x);
    });
  }

 private:
  struct CloseBox {
    void (*cb)(void*);
    void* data;
  };
  T* h_ = nullptr;
  bool live_ = false;
};

}  // namespace sluice::base
