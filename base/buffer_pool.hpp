// Fixed-size read buffers recycled per worker, so relaying allocates nothing per read.
#pragma once
#include <cstddef>
#include <vector>

namespace sluice::base {

class BufferPool {
 public:
  static constexpr size_t kBlockSize = 64 * 1024;
  explicit BufferPool(size_t keep = 256) : keep_(keep) {}
  ~BufferPool() {
    for (char* b : free_) delete[] b;
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  char* get() {
    if (free_.empty()) return new char[kBlockSize];
    char* b = free_.back();
    free_.pop_back();
    return b;
  }
  void put(char* b) {
    if (b == nullptr) return;
    if (free_.size() < keep_) free_.push_back(b);
    else delete[] b;
  }

 private:
  size_t keep_;
  std::vector<char*> free_;
};

}  // namespace sluice::base
