// The resolved-address check as one pure function: which of the addresses a
// name resolved to may be dialed, under a policy and the resolver settings.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rules/config.hpp"
#include "rules/ip.hpp"
#include "rules/policy.hpp"

namespace sluice::rules {

struct ResolvedCheck {
  std::vector<IpAddr> dialable;  // in the resolver's order
  std::string refused_class;     // the class of the first address dropped ("" when none was)
};

// DNS may answer an allowed name with an address inside this host, its network
// or a metadata service (rebinding). An address in the policy's deny list is
// dropped; one in its allow list is an explicit choice and kept; the rest must
// pass the address classes (unless the check is off). `self`: this host's addresses.
// A sandbox's `overlay` (may be null) counts as part of the policy's lists.
ResolvedCheck check_resolved(const Policy& policy, const ResolverConfig& resolver, const std::vector<IpAddr>& self,
                             const std::vector<IpAddr>& addrs, uint16_t port, const PolicyOverlay* overlay = nullptr);

}  // namespace sluice::rules
