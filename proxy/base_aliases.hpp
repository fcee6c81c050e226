// The shared pieces of base/ under the names the data plane has always used.
#pragma once
#include "base/buffer_pool.hpp"
#include "base/relay.hpp"
#include "base/uv_handle.hpp"

namespace sluice::proxy {
using base::BufferPool;
using base::Relay;
using base::UvHandle;
}  // namespace sluice::proxy
