// Transparent mode (issue 16), the bridge's half of "judged like a CONNECT": a
// redirected connection's original destination (from SO_ORIGINAL_DST /
// IP6T_SO_ORIGINAL_DST) becomes the target of the CONNECT the bridge sends to sluice
// over the unix socket, exactly like an explicit client would. A fake address from
// the DNS stub becomes the name it was given to (`name:port`), so sluice's existing
// target flow judges the name (deny, Lua, allow, ask, the resolved-address check on
// the real addresses sluice resolves itself); a real address stays an IP literal
// (`1.2.3.4:port`, `[2001:db8::1]:port`). Pure: no sockets.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "rules/fake_ip.hpp"
#include "rules/ip.hpp"

namespace sluice::glue {

// The CONNECT target for a connection to `dst`:`port`. Nullopt when `dst` lies in a
// fake range but no name holds it (the program made the address up, or it came from
// another jail): such a connection is refused, never dialed, since fake addresses
// exist only inside the jail.
std::optional<std::string> transparent_connect_target(const rules::IpAddr& dst, uint16_t port,
                                                      const rules::FakeIpMap& map, const rules::TransparentConfig& cfg);
// The same with the fake ranges and a lookup of the name a fake address was given to (the
// bridge keeps its own copy of the map's entries, learnt from the DNS service's answers).
using FakeNameLookup = std::function<std::optional<std::string>(const rules::IpAddr&)>;
std::optional<std::string> transparent_connect_target(const rules::IpAddr& dst, uint16_t port,
                                                      const rules::Cidr& fake_ipv4, const rules::Cidr& fake_ipv6,
                                                      const FakeNameLookup& name_of);

// The jail's /etc/resolv.conf: the stub on the jail's loopback, nothing else.
// `options edns0` is left out on purpose: the stub answers plain DNS.
std::string transparent_resolv_conf();

}  // namespace sluice::glue
