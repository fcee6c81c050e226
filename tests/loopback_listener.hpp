// A TCP socket listening on 127.0.0.1 at a port the kernel picks, closed with the object:
// the upstreams, parents and silent servers of the proxy and bench unit tests. Nothing here
// asserts; the tests that require bind and listen to work REQUIRE `bound` and `listening`.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace sluice::test {

struct LoopbackListener {
  int fd = -1;
  uint16_t port = 0;
  bool bound = false;
  bool listening = false;

  // `socket_flags` joins SOCK_STREAM: SOCK_NONBLOCK for a test that accepts between loop turns.
  explicit LoopbackListener(int backlog = 16, int socket_flags = SOCK_CLOEXEC) {
    fd = ::socket(AF_INET, SOCK_STREAM | socket_flags, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    listening = ::listen(fd, backlog) == 0;
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  ~LoopbackListener() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace sluice::test
