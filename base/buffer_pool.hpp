// Fixed-size read buffers recycled per worker, so relaying allocates nothing per read.
#pragma once
#include <cstddef>
#include <utility>
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
    if (free_.size() < keep_)
      free_.push_back(b);
    else
      delete[] b;
  }

 private:
  size_t keep_;
  std::vector<char*> free_;
};

// One block taken from a pool, given back when the owner goes out of scope (also when
// something throws on the way), unless release() hands it on (to a write that puts it back).
class PooledBlock {
 public:
  PooledBlock() = default;  // holds nothing
  PooledBlock(BufferPool& pool, char* block) : pool_(&pool), block_(block) {}
  ~PooledBlock() {
    if (block_ != nullptr) pool_->put(block_);
  }
  // Moves hand the block on (into a write that puts it back when written).
  PooledBlock(PooledBlock&& o) noexcept : pool_(o.pool_), block_(std::exchange(o.block_, nullptr)) {}
  PooledBlock& operator=(PooledBlock&&) = delete;
  PooledBlock(const PooledBlock&) = delete;
  PooledBlock& operator=(const PooledBlock&) = delete;
  char* get() const { return block_; }
  char* release() { return std::exchange(block_, nullptr); }

 private:
  BufferPool* pool_ = nullptr;
  char* block_ = nullptr;
};

}  // namespace sluice::base
