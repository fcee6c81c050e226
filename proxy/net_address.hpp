// Socket addresses to and from the forms sluice logs and dials.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "rules/host.hpp"
#include "rules/ip.hpp"

namespace sluice::proxy {

std::string format_sockaddr(const sockaddr_storage& ss);  // "1.2.3.4:80", "[::1]:80"
sockaddr_storage to_sockaddr(const rules::IpAddr& addr, uint16_t port);
std::string host_port_text(const rules::CanonicalHost& host, uint16_t port);  // brackets for IPv6

}  // namespace sluice::proxy
