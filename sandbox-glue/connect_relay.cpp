#include "sandbox-glue/connect_relay.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "rules/credentials.hpp"
#include "rules/host.hpp"
#include "rules/percent.hpp"
#include "sandbox-glue/socks5_client.hpp"

namespace sluice::glue {

namespace {

// How long a bare proxy address may take to answer the SOCKS5 greeting before
// `sluice connect` decides it is an HTTP-only proxy (sluice answers at once).
constexpr int kSniffTimeoutMs = 2000;

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

bool write_all(int fd, const std::string& s) { return write_all(fd, s.data(), s.size()); }

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

// Reads until `want(buf)` says how much is a whole message (> 0), or fails (-1), the
// peer closes, or `timeout_ms` passes (-1: no limit). Returns that length, or 0/-1.
long read_message(int fd, std::string& buf, long (*want)(std::string_view), int timeout_ms) {
  char tmp[4096];
  for (;;) {
    long n = want(buf);
    if (n != 0) return n;
    if (buf.size() > 65536) return -1;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    ssize_t got = ::read(fd, tmp, sizeof tmp);
    if (got <= 0) return 0;
    buf.append(tmp, static_cast<size_t>(got));
  }
}

long two_bytes(std::string_view in) { return in.size() >= 2 ? 2 : 0; }

std::string authority_of(const std::string& host, uint16_t port) {
  std::string a = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return a + ":" + std::to_string(port);
}

enum class Opened { Tunnel, Refused, NotSocks };

// SOCKS5: greeting, optional username/password, CONNECT. Bytes after the reply stay in `rest`.
Opened open_socks5(int fd, const ProxyAddress& proxy, const std::string& host, uint16_t port, bool sniffing,
                   std::string& rest) {
  const std::string target = authority_of(host, port);
  const bool creds = !proxy.username.empty();
  if (!write_all(fd, socks5::greeting(creds))) {
    std::fprintf(stderr, "sluice connect: write to proxy failed\n");
    return Opened::Refused;
  }
  std::string buf;
  long n = read_message(fd, buf, two_bytes, sniffing ? kSniffTimeoutMs : -1);
  if (n <= 0 || buf[0] != 0x05) {
    if (sniffing) return Opened::NotSocks;
    std::fprintf(stderr, "sluice connect: the proxy did not answer as a SOCKS5 proxy\n");
    return Opened::Refused;
  }
  uint8_t method = static_cast<uint8_t>(buf[1]);
  buf.erase(0, 2);
  if (method == 0x02 && creds) {
    if (!write_all(fd, socks5::user_pass(proxy.username, proxy.password))) return Opened::Refused;
    if (read_message(fd, buf, two_bytes, -1) <= 0 || buf[1] != 0x00) {
      std::fprintf(stderr, "sluice connect: %s refused: the proxy rejected the credentials\n", target.c_str());
      return Opened::Refused;
    }
    buf.erase(0, 2);
  } else if (method != 0x00) {
    std::fprintf(stderr, "sluice connect: %s refused: the proxy accepts none of the offered SOCKS5 methods%s\n",
                 target.c_str(), creds ? "" : " (does it need credentials? give --proxy socks5://USER:PASS@HOST:PORT)");
    return Opened::Refused;
  }
  std::string req = socks5::connect_request(host, port);
  if (req.empty()) {
    std::fprintf(stderr, "sluice connect: host name too long for SOCKS5: %s\n", host.c_str());
    return Opened::Refused;
  }
  if (!write_all(fd, req)) return Opened::Refused;
  n = read_message(fd, buf, socks5::reply_length, -1);
  if (n <= 0) {
    std::fprintf(stderr, "sluice connect: the proxy closed before answering the SOCKS5 request for %s\n",
                 target.c_str());
    return Opened::Refused;
  }
  uint8_t code = static_cast<uint8_t>(buf[1]);
  if (code != 0x00) {
    std::fprintf(stderr, "sluice connect: %s refused: SOCKS5 reply %u (%s)\n", target.c_str(), code,
                 socks5::reply_text(code));
    return Opened::Refused;
  }
  rest = buf.substr(static_cast<size_t>(n));
  return Opened::Tunnel;
}

long http_head(std::string_view in) {
  auto end = in.find("\r\n\r\n");
  return end == std::string_view::npos ? 0 : static_cast<long>(end + 4);
}

Opened open_http_connect(int fd, const ProxyAddress& proxy, const std::string& host, uint16_t port, std::string& rest) {
  const std::string authority = authority_of(host, port);
  std::string req = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (!proxy.username.empty())
    req += "Proxy-Authorization: Basic " + rules::base64_encode(proxy.username + ":" + proxy.password) + "\r\n";
  req += "\r\n";
  if (!write_all(fd, req)) {
    std::fprintf(stderr, "sluice connect: write to proxy failed\n");
    return Opened::Refused;
  }
  std::string buf;
  long end = read_message(fd, buf, http_head, -1);
  if (end <= 0) {
    std::fprintf(stderr, "sluice connect: the proxy closed before answering CONNECT %s\n", authority.c_str());
    return Opened::Refused;
  }
  std::string head = buf.substr(0, static_cast<size_t>(end) - 4);
  rest = buf.substr(static_cast<size_t>(end));
  int status = 0;
  std::sscanf(head.c_str(), "HTTP/%*d.%*d %d", &status);
  if (status != 200) {
    std::string first = head.substr(0, head.find("\r\n"));
    std::string body = rest.substr(0, rest.find('\n'));
    std::fprintf(stderr, "sluice connect: %s refused: %s%s%s\n", authority.c_str(), first.c_str(),
                 body.empty() ? "" : " — ", body.c_str());
    return Opened::Refused;
  }
  return Opened::Tunnel;
}

// Relays stdin to the tunnel and the tunnel to stdout. When the far end finishes,
// stdout is closed (the program sees EOF after the last byte) but stdin is still
// read to its end: a program that is writing just then (ssh sending its key
// exchange while a disconnect message arrives) must not die of a broken pipe
// before it has read what came.
int relay(int fd, const std::string& rest) {
  if (!rest.empty() && !write_all(STDOUT_FILENO, rest.data(), rest.size())) return 1;
  char buf[65536];
  bool in_open = true, out_open = true, tunnel_writable = true;
  while (in_open || out_open) {
    pollfd fds[2] = {{out_open ? fd : -1, POLLIN, 0}, {in_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (out_open && fds[0].revents) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) {
        out_open = false;  // the far end finished
        ::close(STDOUT_FILENO);
      } else if (!write_all(STDOUT_FILENO, buf, static_cast<size_t>(n))) {
        return 1;
      }
    }
    if (in_open && fds[1].revents) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        in_open = false;
        ::shutdown(fd, SHUT_WR);
      } else if (tunnel_writable && !write_all(fd, buf, static_cast<size_t>(n))) {
        tunnel_writable = false;  // the far end is gone; keep draining stdin
      }
    }
  }
  return 0;
}

// The address as an error may quote it: a password in it never reaches a terminal or a log.
std::string without_password(const std::string& text) {
  const size_t at = text.rfind('@');
  if (at == std::string::npos) return text;
  const size_t scheme = text.find("://");
  const size_t start = scheme == std::string::npos || scheme > at ? 0 : scheme + 3;
  const size_t colon = text.find(':', start);
  if (colon == std::string::npos || colon > at) return text;
  return text.substr(0, colon + 1) + "***" + text.substr(at);
}

}  // namespace

std::string parse_proxy_address(const std::string& text, ProxyAddress& out) {
  std::string t = text;
  if (t.rfind("unix:", 0) == 0) {
    out.unix_socket = true;
    out.path = t.substr(5);
    return out.path.empty() ? "empty unix socket path" : "";
  }
  for (auto [scheme, protocol] :
       {std::pair{"http://", ProxyAddress::Protocol::Http}, std::pair{"socks5://", ProxyAddress::Protocol::Socks5},
        std::pair{"socks5h://", ProxyAddress::Protocol::Socks5}}) {
    if (t.rfind(scheme, 0) == 0) {
      t = t.substr(std::strlen(scheme));
      out.protocol = protocol;
    }
  }
  if (t.find("://") != std::string::npos)
    return "proxy must be http://, socks5://, socks5h://HOST:PORT, HOST:PORT or unix:PATH, not '" +
           without_password(text) + "'";
  while (!t.empty() && t.back() == '/') t.pop_back();
  if (auto at = t.rfind('@'); at != std::string::npos) {
    std::string userinfo = t.substr(0, at);
    t = t.substr(at + 1);
    auto colon = userinfo.find(':');
    auto user = rules::percent_decode(userinfo.substr(0, colon));
    auto pass =
        colon == std::string::npos ? std::optional<std::string>("") : rules::percent_decode(userinfo.substr(colon + 1));
    if (!user || !pass)
      return "proxy credentials must be USER:PASSWORD, percent-encoded (a '%' not followed by two hex digits)";
    out.username = std::move(*user);
    out.password = std::move(*pass);
  }
  auto hp = rules::split_host_port(t);  // the one host:port splitter (rules/host.hpp)
  if (!hp)
    return "proxy must be http://HOST:PORT or unix:PATH, not '" + without_password(text) + "' (" + hp.error() + ")";
  out.host = hp->host;
  out.port = hp->port;
  return "";
}

int run_connect_relay(const ProxyAddress& proxy, const std::string& host, uint16_t port) {
  int fd = dial(proxy);
  if (fd < 0) {
    std::fprintf(stderr, "sluice connect: cannot reach the proxy: %s\n", std::strerror(errno));
    return 1;
  }
  std::string rest;
  Opened opened = Opened::NotSocks;
  if (proxy.protocol != ProxyAddress::Protocol::Http) {
    opened = open_socks5(fd, proxy, host, port, proxy.protocol == ProxyAddress::Protocol::Auto, rest);
    if (opened == Opened::NotSocks) {  // an HTTP-only proxy: start again with CONNECT
      ::close(fd);
      fd = dial(proxy);
      if (fd < 0) {
        std::fprintf(stderr, "sluice connect: cannot reach the proxy: %s\n", std::strerror(errno));
        return 1;
      }
    }
  }
  if (opened == Opened::NotSocks) opened = open_http_connect(fd, proxy, host, port, rest);
  int status = opened == Opened::Tunnel ? relay(fd, rest) : 1;
  ::close(fd);
  return status;
}

}  // namespace sluice::glue
