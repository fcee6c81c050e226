// Transparent mode (issue 16): the name a connection's first bytes claim. A TLS
// ClientHello's server_name (SNI) or an HTTP/1.x request's Host header; the bridge
// compares it with the name the connection was looked up as (or, for a real IP, has
// the policy judge it), so domain fronting through an allowed address does not work.
// Pure and bounded: reads at most kMaxFirstBytes.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::glue {

inline constexpr size_t kMaxFirstBytes = 16384;

struct ClaimedName {
  enum class State { NeedMore, None, Found };
  State state = State::NeedMore;
  std::string name;      // Found: lower case, no trailing dot, no port
  const char* via = "";  // "sni" or "host"
};

// NeedMore while the bytes could still become a ClientHello or a request head (and
// are under kMaxFirstBytes); None when they are neither, carry no name, or name an
// IP literal; Found with the name otherwise.
ClaimedName claimed_name(std::string_view bytes);

// True when `bytes` begin like an HTTP/1.x request: an upper-case method token and a space.
// Such a program gets sluice's readable refusal (403 with X-Sluice-Reason) instead of a reset.
bool looks_like_http_request(std::string_view bytes);

}  // namespace sluice::glue
