#include "sandbox-glue/connect_relay.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sluice::glue {

namespace {

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

int dial(const ProxyAddress& proxy) {
  if (proxy.unix_socket) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, proxy.path.c_str(), sizeof sa.sun_path - 1);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return fd;
    if (fd >= 0) ::close(fd);
    return -1;
  }
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (getaddrinfo(proxy.host.c_str(), std::to_string(proxy.port).c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

}  // namespace

std::string parse_proxy_address(const std::string& text, ProxyAddress& out) {
  std::string t = text;
  if (t.rfind("unix:", 0) == 0) {
    out.unix_socket = true;
    out.path = t.substr(5);
    return out.path.empty() ? "empty unix socket path" : "";
  }
  if (t.rfind("http://", 0) == 0) t = t.substr(7);
  while (!t.empty() && t.back() == '/') t.pop_back();
  auto colon = t.rfind(':');
  if (colon == std::string::npos || colon == 0) return "proxy must be http://HOST:PORT or unix:PATH, not '" + text + "'";
  out.host = t.substr(0, colon);
  if (out.host.size() > 2 && out.host.front() == '[') out.host = out.host.substr(1, out.host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(t.substr(colon + 1));
  } catch (...) {
  }
  if (port <= 0 || port > 65535) return "bad proxy port in '" + text + "'";
  out.port = static_cast<uint16_t>(port);
  return "";
}

int run_connect_relay(const ProxyAddress& proxy, const std::string& host, uint16_t port) {
  int fd = dial(proxy);
  if (fd < 0) {
    std::fprintf(stderr, "sluice connect: cannot reach the proxy: %s\n", std::strerror(errno));
    return 1;
  }
  std::string authority = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  authority += ":" + std::to_string(port);
  std::string req = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
  if (!write_all(fd, req.data(), req.size())) {
    std::fprintf(stderr, "sluice connect: write to proxy failed\n");
    return 1;
  }
  std::string head;
  char buf[65536];
  size_t end;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0 || head.size() > 65536) {
      std::fprintf(stderr, "sluice connect: the proxy closed before answering CONNECT %s\n", authority.c_str());
      return 1;
    }
    head.append(buf, static_cast<size_t>(n));
  }
  std::string rest = head.substr(end + 4);
  head.resize(end);
  int status = 0;
  std::sscanf(head.c_str(), "HTTP/%*d.%*d %d", &status);
  if (status != 200) {
    std::string first = head.substr(0, head.find("\r\n"));
    std::string body = rest.substr(0, rest.find('\n'));
    std::fprintf(stderr, "sluice connect: %s refused: %s%s%s\n", authority.c_str(), first.c_str(),
                 body.empty() ? "" : " — ", body.c_str());
    return 1;
  }
  if (!rest.empty() && !write_all(STDOUT_FILENO, rest.data(), rest.size())) return 1;
  bool in_open = true;
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {STDIN_FILENO, static_cast<short>(in_open ? POLLIN : 0), 0}};
    if (::poll(fds, in_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[0].revents) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return 0;  // the far end finished
      if (!write_all(STDOUT_FILENO, buf, static_cast<size_t>(n))) return 1;
    }
    if (in_open && fds[1].revents) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        in_open = false;
        ::shutdown(fd, SHUT_WR);
      } else if (!write_all(fd, buf, static_cast<size_t>(n))) {
        return 1;
      }
    }
  }
}

}  // namespace sluice::glue
