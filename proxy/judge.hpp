// The one place the data plane asks rules/ for a verdict, for every kind of
// connection (CONNECT, plain HTTP, SOCKS5). A richer pipeline (Lua hooks seeing
// the kind, the sandbox and the peer) replaces the body of judge(), not its callers.
#pragma once
#include <cstdint>
#include <string_view>

#include "proxy/connection.hpp"
#include "rules/host.hpp"
#include "rules/policy.hpp"

namespace sluice::proxy {

struct JudgeRequest {
  const rules::Policy* policy;  // null: the listener has no policy, everything is denied
  std::string_view kind;        // "connect", "http", "socks"
  const rules::CanonicalHost& host;
  uint16_t port;
  const ClientInfo& client;
};

rules::Verdict judge(const JudgeRequest& r);

}  // namespace sluice::proxy
