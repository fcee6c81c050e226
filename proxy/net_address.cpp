#include "proxy/net_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace sluice::proxy {

std::string format_sockaddr(const sockaddr_storage& ss) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "unknown";
}

sockaddr_storage to_sockaddr(const rules::IpAddr& addr, uint16_t port) {
  sockaddr_storage ss{};
  if (addr.v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    std::memcpy(&a->sin6_addr, addr.bytes.data(), 16);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    std::memcpy(&a->sin_addr, addr.bytes.data(), 4);
  }
  return ss;
}

std::string host_port_text(const rules::CanonicalHost& host, uint16_t port) {
  bool v6 = host.kind == rules::HostKind::Ip && host.addr.v6;
  return (v6 ? "[" + host.text + "]" : host.text) + ":" + std::to_string(port);
}

}  // namespace sluice::proxy
