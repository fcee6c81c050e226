// One uv_write that owns what it sends until libuv is done with it: bytes in a string (a
// reply, a head), a pooled read block (relayed bytes, back to its pool once written), or
// both, the string first. Every writer in the data plane used to allocate its own
// uv_write_t-plus-buffer struct and free it in its own callback; this is that, once.
#pragma once
#include <cstddef>
#include <string>

#include <uv.h>

#include "base/buffer_pool.hpp"

namespace sluice::base {

// Runs once per queued write: completed (status 0), failed (< 0) or cancelled because the
// handle closed (UV_ECANCELED; the owner may be on its way out then). A plain function and
// a pointer rather than std::function: the relay writes through it for every block it moves.
struct WriteDone {
  void (*fn)(void* owner, int tag, int status) = nullptr;
  void* owner = nullptr;
  int tag = 0;  // the owner's mark for this write (e.g. which side it went to)
};

// Queues `bytes` then `block_len` bytes of `block` on `to`. Returns 0, or libuv's error when
// nothing could be queued: the block is then back in its pool and `done` never runs. With
// nothing to send it returns 0 and `done` never runs either.
int write(uv_stream_t* to, std::string bytes, PooledBlock block, size_t block_len, WriteDone done = {});
inline int write(uv_stream_t* to, std::string bytes, WriteDone done = {}) {
  return write(to, std::move(bytes), PooledBlock{}, 0, done);
}

// The same, but when nothing is queued on `to` the socket is offered the bytes at once
// (uv_try_write): mostly it takes them all, and then there is no write request and none of the
// epoll_ctl libuv 1.44 spends re-arming the descriptor after a queued write (`done` never runs).
// What it does not take (or an error) is queued as write() does.
int write_now(uv_stream_t* to, std::string bytes, WriteDone done = {});

}  // namespace sluice::base
