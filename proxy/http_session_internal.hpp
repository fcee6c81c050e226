// Pieces shared by session.cpp and session_io.cpp, not part of the session's API.
#pragma once
#include <string>

#include "proxy/base_aliases.hpp"
#include "proxy/decision.hpp"
#include "proxy/http_session.hpp"
#include "proxy/net_address.hpp"

namespace sluice::proxy {

// Stop reading a side while the other side has this much queued for writing.
inline constexpr size_t kHighWatermark = Relay::kHighWatermark;

}  // namespace sluice::proxy
