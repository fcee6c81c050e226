#include "cli/service_notify.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace sluice::cli {

ServiceNotifier::ServiceNotifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@') || std::strlen(path) >= sizeof addr_.sun_path) {
    ::unsetenv("NOTIFY_SOCKET");
    return;
  }
  addr_.sun_family = AF_UNIX;
  size_t n = std::strlen(path);
  std::memcpy(addr_.sun_path, path, n);
  if (path[0] == '@') addr_.sun_path[0] = '\0';  // abstract namespace: no terminating NUL counted
  addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
  ::unsetenv("NOTIFY_SOCKET");
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

ServiceNotifier::~ServiceNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

void ServiceNotifier::send(const std::string& state) {
  if (fd_ < 0) return;
  // A lost datagram is not worth failing over: systemd then times the service out itself.
  (void)::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&addr_),
                 addr_len_);
}

void ServiceNotifier::ready() { send("READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(::getpid())); }

void ServiceNotifier::reloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  send("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=" + std::to_string(usec));
}

void ServiceNotifier::stopping() { send("STOPPING=1\nSTATUS=draining connections"); }

}  // namespace sluice::cli
