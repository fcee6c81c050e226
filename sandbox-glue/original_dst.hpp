// Transparent mode (issue 16): the destination a redirected TCP connection was
// meant for, read from the kernel's NAT state of an accepted socket
// (SO_ORIGINAL_DST for IPv4, IP6T_SO_ORIGINAL_DST for IPv6).
#pragma once
#include <cstdint>
#include <optional>

#include "rules/ip.hpp"

namespace sluice::glue {

struct OriginalDst {
  rules::IpAddr addr;
  uint16_t port = 0;
};

// The original destination of `fd`, an accepted TCP socket; nullopt when the
// connection was not redirected or `fd` is not such a socket. Conntrack answers for
// a connection made straight to the listener too (with the listener's own address):
// that is "not redirected" here, so a program dialing the bridge's transparent port
// directly is not taken for a connection to the bridge's address.
std::optional<OriginalDst> original_destination(int fd);

}  // namespace sluice::glue
