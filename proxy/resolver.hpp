// Name resolution behind a small interface, so sessions can be driven by a fake.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "rules/config.hpp"
#include "rules/ip.hpp"

namespace sluice::proxy {

struct ResolveResult {
  bool ok = false;
  std::string error;                 // one line, e.g. "NXDOMAIN", "timeout", "no addresses"
  std::vector<rules::IpAddr> addrs;  // IPv4 first, then IPv6; duplicates removed
  double ms = 0;                     // wall time spent (0 for a cache hit)
  bool from_cache = false;
};

class Resolver {
 public:
  using Callback = std::function<void(ResolveResult)>;
  virtual ~Resolver() = default;
  // The callback always runs later on the loop thread, never inside resolve().
  // It is never called after the Resolver is destroyed.
  virtual void resolve(const std::string& name, Callback cb) = 0;
};

// c-ares driven by libuv: uv_poll per c-ares socket, one uv_timer for c-ares timeouts,
// A and AAAA queried together, answers cached until their TTL expires.
// `servers` empty means the system's resolv.conf.
std::unique_ptr<Resolver> make_ares_resolver(uv_loop_t* loop, const rules::ResolverConfig& cfg, std::string* error);

}  // namespace sluice::proxy
