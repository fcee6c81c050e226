#include "rules/resolved_check.hpp"

#include "rules/address_class.hpp"

namespace sluice::rules {

ResolvedCheck check_resolved(const Policy& policy, const ResolverConfig& resolver, const std::vector<IpAddr>& self,
                             const std::vector<IpAddr>& addrs, uint16_t port) {
  ResolvedCheck out;
  for (const auto& a : addrs) {
    CanonicalHost as_host{HostKind::Ip, a.to_string(), a};
    if (policy.deny.match(as_host, port) != nullptr) {
      if (out.refused_class.empty()) out.refused_class = "deny-listed";
      continue;
    }
    if (policy.allow.match(as_host, port) != nullptr || !resolver.check_addresses) {
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
