// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram per state
// change to the unix socket named by NOTIFY_SOCKET ('@' names an abstract socket). Without
// NOTIFY_SOCKET (not started by systemd as Type=notify) every call does nothing.
// `sluice serve` sends READY=1 once its listeners are bound, RELOADING=1 and READY=1
// around a reload, STOPPING=1 when it starts draining.
#pragma once
#include <sys/socket.h>
#include <sys/un.h>

#include <string>

namespace sluice::cli {

class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET and removes it from the environment (nothing sluice starts needs it).
  ServiceNotifier();
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  bool active() const { return fd_ >= 0; }
  // Newline-separated assignments, e.g. "READY=1\nSTATUS=serving". Never blocks.
  void send(const std::string& state);
  void ready();
  void reloading();  // RELOADING=1 with MONOTONIC_USEC, as systemd 253+ wants for notify-reload
  void stopping();

 private:
  int fd_ = -1;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
};

}  // namespace sluice::cli
