// A set of host patterns whose match cost does not grow with its size:
// exact names and subdomain suffixes sit in hash maps probed once per label,
// CIDRs in one hash map per prefix length.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "rules/host.hpp"
#include "rules/pattern.hpp"

namespace sluice::rules {

class HostSet {
 public:
  HostSet();
  ~HostSet();
  HostSet(HostSet&&) noexcept;
  HostSet& operator=(HostSet&&) noexcept;

  void add(HostPattern p);
  // A deep copy (every pattern added again): for building a changed policy off the loops.
  HostSet clone() const;
  // The first matching pattern (most specific host match wins), or nullptr.
  const HostPattern* match(const CanonicalHost& host, uint16_t port) const;
  // For a judgment with no port yet (transparent mode's resolver answers a name before
  // any connection): the first pattern that matches the host on some port, or on every
  // port (one without a port).
  const HostPattern* match_some_port(const CanonicalHost& host) const;
  const HostPattern* match_every_port(const CanonicalHost& host) const;
  size_t size() const { return patterns_.size(); }
  bool empty() const { return patterns_.empty(); }
  const std::vector<std::unique_ptr<HostPattern>>& patterns() const { return patterns_; }

 private:
  struct Index;
  // Which patterns' ports fit a lookup.
  struct PortFit {
    enum class Kind : uint8_t { One, Some, Every } kind = Kind::One;
    uint16_t port = 0;
    bool fits(const HostPattern& p) const;
  };
  const HostPattern* find(const CanonicalHost& host, PortFit fit) const;
  std::vector<std::unique_ptr<HostPattern>> patterns_;
  std::unique_ptr<Index> index_;
};

}  // namespace sluice::rules
