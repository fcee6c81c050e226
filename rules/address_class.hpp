// Which addresses a name may resolve to and still be dialed: the
// resolved-address check that stops DNS rebinding into the host, its
// neighbours and cloud metadata services. Pure: the host's own addresses are
// passed in.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "rules/ip.hpp"

namespace sluice::rules {

enum class AddressClass {
  Global,
  Loopback,
  Unspecified,
  LinkLocal,
  Multicast,
  Broadcast,
  Metadata,    // cloud metadata endpoints outside link-local
  Cgnat,       // 100.64.0.0/10
  Private,     // 10/8, 172.16/12, 192.168/16, fc00::/7
  Reserved,    // 240/4 and other never-routable IPv4 blocks
  Self,        // an address of this host's interfaces
  Configured,  // resolver.deny_cidrs
};

const char* to_string(AddressClass c);

// The IPv4 address an IPv6 address carries, if any: v4-mapped, v4-compatible,
// NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32, client address).
std::optional<IpAddr> embedded_ipv4(const IpAddr& a);

// The class of an address by its ranges alone (IPv6 forms carrying IPv4 are
// classified by the IPv4 they carry when that is worse).
AddressClass classify(const IpAddr& a);

// Why `a` must not be dialed, or nullopt when it may be. `self`: this host's
// interface addresses; `deny`: configured ranges (resolver.deny_cidrs).
std::optional<AddressClass> refuse_address(const IpAddr& a, bool allow_private, const std::vector<Cidr>& deny,
                                           const std::vector<IpAddr>& self);

}  // namespace sluice::rules
