// Transparent mode's fake addresses (issue 16): the jail's resolver answers a name
// the policy could allow with an address from a private range, and a connection to
// that address is later judged by the name. This is the map between the two, one
// per sandbox, kept by sluice (outside the jail). Pure: no sockets, no clock.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rules/ip.hpp"

namespace sluice::rules {

// The `transparent:` section of the config (docs/configuration.md).
struct TransparentConfig {
  // RFC 2544's benchmarking block: never routed on the internet, rarely used on LANs.
  Cidr fake_ipv4 = *Cidr::parse("198.18.0.0/15");
  // A ULA /64 (fd00::/8, RFC 4193); the bytes after fd spell "sluice".
  Cidr fake_ipv6 = *Cidr::parse("fd73:6c75:6963:6500::/64");
  size_t max_names = 65536;  // names one jail may have mapped at once
  uint32_t dns_ttl_s = 5;    // TTL of a fake answer
};

// Checks a fake range: IPv4 with prefix 8..30 or IPv6 with prefix 64..120, and
// none of loopback inside it (the jail's own bridge must stay reachable).
// Empty when fine, else the reason.
std::string fake_range_problem(const Cidr& c);

class FakeIpMap {
 public:
  struct Addresses {
    IpAddr v4, v6;
  };

  explicit FakeIpMap(const TransparentConfig& cfg);

  // The addresses of `name` (already canonical: lower case, no trailing dot): the
  // ones it was given before, or the next free pair. Nullopt when the map is full
  // and the name is new: addresses are never taken back from a live name, so a
  // connection can never be judged by a name other than the one its program asked for.
  std::optional<Addresses> assign(std::string_view name);
  // The name an address was given to, if any.
  std::optional<std::string> name_of(const IpAddr& addr) const;
  // Without assigning.
  std::optional<Addresses> find(std::string_view name) const;

  size_t size() const { return names_.size(); }
  size_t capacity() const { return capacity_; }
  bool full() const { return names_.size() >= capacity_; }

 private:
  Addresses addresses_at(size_t index) const;
  std::optional<size_t> index_of(const IpAddr& addr) const;

  Cidr v4_, v6_;
  size_t capacity_ = 0;
  std::vector<std::string> names_;  // index i holds the name of the (i+1)-th address of each range
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace sluice::rules
