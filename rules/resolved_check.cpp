#include "rules/resolved_check.hpp"

#include "rules/address_class.hpp"

namespace sluice::rules {

ResolvedCheck check_resolved(const Policy& policy, const ResolverConfig& resolver, const std::vector<IpAddr>& self,
                             const std::vector<IpAddr>& addrs, uint16_t port, const PolicyOverlay* overlay) {
  ResolvedCheck out;
  for (const auto& a : addrs) {
    CanonicalHost as_host{HostKind::Ip, a.to_string(), a};
    if (PolicyOverlay::match_deny(policy, overlay, as_host, port) != nullptr) {
      if (out.refused_class.empty()) out.refused_class = "deny-listed";
      continue;
    }
    const bool listed = policy.allow.match(as_host, port) != nullptr ||
                        (overlay != nullptr && overlay->allow.match(as_host, port) != nullptr);
    if (listed || !resolver.check_addresses) {
      out.dialable.push_back(a);
      continue;
    }
    if (auto why = refuse_address(a, resolver.allow_private, resolver.deny_cidrs, self)) {
      if (out.refused_class.empty()) out.refused_class = to_string(*why);
      continue;
    }
    out.dialable.push_back(a);
  }
  return out;
}

}  // namespace sluice::rules
