#include "proxy/listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/net_address.hpp"

namespace sluice::proxy {

namespace {

constexpr int kBacklog = 1024;

std::shared_ptr<ListenerInfo> make_listener_info(std::string name, bool is_unix, std::string address) {
  auto info = std::make_shared<ListenerInfo>();
  info->name = std::move(name);
  info->is_unix = is_unix;
  info->address = std::move(address);
  return info;
}

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

rules::Result<BoundListener> fail(int fd, std::string message) {
  if (fd >= 0) ::close(fd);
  return rules::Err{std::move(message)};
}

rules::Result<BoundListener> bind_unix(const rules::ListenerConfig& cfg) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (cfg.path.size() >= sizeof sa.sun_path)
    return rules::Err{"listener " + cfg.name + ": unix path longer than " + std::to_string(sizeof sa.sun_path - 1) +
                      " bytes: " + cfg.path};
  std::memcpy(sa.sun_path, cfg.path.c_str(), cfg.path.size());
  struct stat st {};
  if (::lstat(cfg.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return rules::Err{"listener " + cfg.name + ": " + cfg.path + " exists and is not a socket"};
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return rules::Err{"listener " + cfg.name + ": " + cfg.path + " is in use by another process"};
    ::unlink(cfg.path.c_str());  // stale socket of a process that is gone
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(-1, sys_error("listener " + cfg.name + ": socket"));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return fail(fd, sys_error("listener " + cfg.name + ": cannot bind " + cfg.path));
  if (::chmod(cfg.path.c_str(), cfg.mode) != 0) {
    ::unlink(cfg.path.c_str());
    return fail(fd, sys_error("listener " + cfg.name + ": chmod " + cfg.path));
  }
  if (::listen(fd, kBacklog) != 0) {
    ::unlink(cfg.path.c_str());
    return fail(fd, sys_error("listener " + cfg.name + ": listen on " + cfg.path));
  }
  BoundListener out;
  out.config = cfg;
  out.fds.push_back(fd);
  out.info = make_listener_info(cfg.name, true, "unix:" + cfg.path);
  return out;
}

int open_tcp(const rules::ListenerConfig& cfg, const rules::IpAddr& ip, uint16_t port, std::string* error) {
  sockaddr_storage ss = to_sockaddr(ip, port);
  int fd = ::socket(ip.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = sys_error("listener " + cfg.name + ": socket");
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Linux lets only sockets of the same effective uid share the port.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ip.v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  socklen_t len = ip.v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    *error = sys_error("listener " + cfg.name + ": cannot bind " + cfg.host + ":" + std::to_string(port));
    ::close(fd);
    return -1;
  }
  if (::listen(fd, kBacklog) != 0) {
    *error = sys_error("listener " + cfg.name + ": listen");
    ::close(fd);
    return -1;
  }
  return fd;
}

rules::Result<BoundListener> bind_tcp(const rules::ListenerConfig& cfg, int copies) {
  auto ip = rules::IpAddr::parse(cfg.host);
  if (!ip) return rules::Err{"listener " + cfg.name + ": bad address " + cfg.host};
  BoundListener out;
  out.config = cfg;
  std::string error;
  int first = open_tcp(cfg, *ip, cfg.port, &error);
  if (first < 0) return rules::Err{error};
  out.fds.push_back(first);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(first, reinterpret_cast<sockaddr*>(&bound), &len);
  // Port 0 asked for an ephemeral port: the other copies join the one the first got.
  uint16_t port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  for (int i = 1; i < copies; ++i) {
    int fd = open_tcp(cfg, *ip, port, &error);
    if (fd < 0) {
      for (int f : out.fds) ::close(f);
      return rules::Err{error};
    }
    out.fds.push_back(fd);
  }
  out.info = make_listener_info(cfg.name, false, "tcp:" + format_sockaddr(bound));
  return out;
}

}  // namespace

rules::Result<BoundListener> bind_listener(const rules::ListenerConfig& cfg, int copies) {
  return cfg.kind == rules::ListenerConfig::Kind::Unix ? bind_unix(cfg) : bind_tcp(cfg, std::max(1, copies));
}

void release_listener(BoundListener& l) {
  for (int fd : l.fds) ::close(fd);
  l.fds.clear();
  if (l.config.kind == rules::ListenerConfig::Kind::Unix) ::unlink(l.config.path.c_str());
}

std::vector<rules::IpAddr> interface_addresses() {
  std::vector<rules::IpAddr> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    rules::IpAddr a;
    if (i->ifa_addr->sa_family == AF_INET) {
      std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a.v6 = true;
      std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(a);
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace sluice::proxy
