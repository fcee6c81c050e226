#include "sandbox-glue/original_dst.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace sluice::glue {

namespace {
// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>, which clash
// with glibc's <netinet/in.h>; both are 80 in the kernel's ABI.
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;
}  // namespace

std::optional<OriginalDst> original_destination(int fd) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return std::nullopt;
  OriginalDst out;
  if (local.ss_family == AF_INET6) {
    sockaddr_in6 dst{};
    socklen_t dlen = sizeof dst;
    if (::getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &dst, &dlen) != 0) return std::nullopt;
    out.addr.v6 = true;
    std::memcpy(out.addr.bytes.data(), &dst.sin6_addr, 16);
    out.port = ntohs(dst.sin6_port);
    const auto& l6 = reinterpret_cast<const sockaddr_in6&>(local);
    if (dst.sin6_port == l6.sin6_port && std::memcmp(&dst.sin6_addr, &l6.sin6_addr, 16) == 0) return std::nullopt;
    return out;
  }
  if (local.ss_family != AF_INET) return std::nullopt;
  sockaddr_in dst{};
  socklen_t dlen = sizeof dst;
  if (::getsockopt(fd, SOL_IP, kSoOriginalDst, &dst, &dlen) != 0) return std::nullopt;
  std::memcpy(out.addr.bytes.data(), &dst.sin_addr, 4);
  out.port = ntohs(dst.sin_port);
  const auto& l4 = reinterpret_cast<const sockaddr_in&>(local);
  if (dst.sin_port == l4.sin_port && dst.sin_addr.s_addr == l4.sin_addr.s_addr) return std::nullopt;
  return out;
}

}  // namespace sluice::glue
