// A tiny blocking proxy for the load generator's tests: one thread per connection, no libuv, so
// it shares no code with what it tests. CONNECT host:port is answered with `status` (200 then a
// relay, or a refusal and a close); any other request is relayed raw to its Host header, which
// is enough for absolute-form GETs to the bench upstream (it accepts absolute-form targets).
// A first byte 0x05 is SOCKS5: no-auth, then CONNECT to an IPv4 address, answered 0 (status 200)
// or 2 (any other status) like a policy denial.
#pragma once
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace bench_test {

class FakeProxy {
 public:
  // unix_path empty: TCP on 127.0.0.1, ephemeral port.
  explicit FakeProxy(int status = 200, std::string unix_path = "") : status_(status), unix_path_(std::move(unix_path)) {
    if (unix_path_.empty()) {
      lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
      socklen_t len = sizeof a;
      ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
      port_ = ntohs(a.sin_port);
    } else {
      ::unlink(unix_path_.c_str());
      lfd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::strncpy(a.sun_path, unix_path_.c_str(), sizeof a.sun_path - 1);
      ::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    ::listen(lfd_, 128);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FakeProxy() {
    stop_ = true;
    acceptor_.join();
    ::close(lfd_);
    std::vector<std::thread> ts;
    {
      std::lock_guard<std::mutex> g(mu_);
      ts.swap(threads_);
    }
    for (auto& t : ts) t.join();
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  }

  int port() const { return port_; }
  int accepted() const { return accepted_; }
  int connects() const { return connects_; }  // CONNECT requests seen
  int forwards() const { return forwards_; }  // other requests seen (first of each connection)
  int socks() const { return socks_; }        // SOCKS5 CONNECT requests seen
  // CONNECT to NAME:PORT then dials 127.0.0.1:PORT (the fake proxy resolves nothing else).
  void alias_loopback(std::string name) { alias_ = std::move(name); }
  std::string last_connect() {  // the authority of the latest CONNECT
    std::lock_guard<std::mutex> g(mu_);
    return last_connect_;
  }
  // SOCKS5 then requires RFC 1929 username/password with exactly these.
  void require_socks_credentials(std::string user, std::string pass) {
    socks_user_ = std::move(user);
    socks_pass_ = std::move(pass);
  }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{lfd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      accepted_++;
      std::lock_guard<std::mutex> g(mu_);
      threads_.emplace_back([this, fd] { serve(fd); });
    }
  }

  static bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  static int dial(const std::string& authority) {
    size_t colon = authority.rfind(':');
    if (colon == std::string::npos) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(authority.substr(colon + 1))));
    if (::inet_pton(AF_INET, authority.substr(0, colon).c_str(), &a.sin_addr) != 1) return -1;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // Reads until `buf` holds `n` bytes; false on EOF or a 5 s stall.
  static bool read_at_least(int fd, std::string& buf, size_t n) {
    char tmp[4096];
    while (buf.size() < n) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return false;
      ssize_t got = ::recv(fd, tmp, sizeof tmp, 0);
      if (got <= 0) return false;
      buf.append(tmp, static_cast<size_t>(got));
    }
    return true;
  }

  void serve_socks(int cfd) {
    std::string in;
    if (!read_at_least(cfd, in, 2) || !read_at_least(cfd, in, 2 + static_cast<uint8_t>(in[1])))
      return (void)::close(cfd);
    in.erase(0, 2 + static_cast<uint8_t>(in[1]));
    if (!socks_user_.empty()) {
      write_all(cfd, "\x05\x02", 2);
      if (!read_at_least(cfd, in, 2) || !read_at_least(cfd, in, 3 + static_cast<uint8_t>(in[1])))
        return (void)::close(cfd);
      size_t ulen = static_cast<uint8_t>(in[1]);
      size_t plen = static_cast<uint8_t>(in[2 + ulen]);
      if (!read_at_least(cfd, in, 3 + ulen + plen)) return (void)::close(cfd);
      bool ok = in.substr(2, ulen) == socks_user_ && in.substr(3 + ulen, plen) == socks_pass_;
      write_all(cfd, ok ? "\x01\x00" : "\x01\x01", 2);
      if (!ok) return (void)::close(cfd);
      in.erase(0, 3 + ulen + plen);
    } else {
      write_all(cfd, "\x05\x00", 2);
    }
    if (!read_at_least(cfd, in, 10) || in[3] != 0x01) return (void)::close(cfd);
    socks_++;
    char ip[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, in.data() + 4, ip, sizeof ip);
    int port = static_cast<uint8_t>(in[8]) << 8 | static_cast<uint8_t>(in[9]);
    std::string rest = in.substr(10);
    int ufd = status_ == 200 ? dial(std::string(ip) + ":" + std::to_string(port)) : -1;
    char reply[10] = {5, static_cast<char>(status_ == 200 ? (ufd < 0 ? 5 : 0) : 2), 0, 1, 0, 0, 0, 0, 0, 0};
    write_all(cfd, reply, sizeof reply);
    if (ufd < 0) return (void)::close(cfd);
    if (!rest.empty()) write_all(ufd, rest.data(), rest.size());
    relay(cfd, ufd);
    ::close(cfd);
    ::close(ufd);
  }

  void serve(int cfd) {
    {
      char first = 0;
      pollfd p{cfd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0 || ::recv(cfd, &first, 1, MSG_PEEK) != 1) return (void)::close(cfd);
      if (first == 0x05) return serve_socks(cfd);
    }
    std::string head;
    char buf[65536];
    size_t end = std::string::npos;
    while (end == std::string::npos) {
      pollfd p{cfd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return (void)::close(cfd);
      ssize_t n = ::recv(cfd, buf, sizeof buf, 0);
      if (n <= 0) return (void)::close(cfd);
      head.append(buf, static_cast<size_t>(n));
      end = head.find("\r\n\r\n");
    }
    std::string rest = head.substr(end + 4);
    head.resize(end + 4);
    int ufd = -1;
    if (head.rfind("CONNECT ", 0) == 0) {
      connects_++;
      std::string authority = head.substr(8, head.find(' ', 8) - 8);
      {
        std::lock_guard<std::mutex> g(mu_);
        last_connect_ = authority;
      }
      if (!alias_.empty() && authority.rfind(alias_ + ":", 0) == 0)
        authority = "127.0.0.1" + authority.substr(alias_.size());
      if (status_ != 200) {
        std::string body = "denied by the fake proxy\n";
        std::string resp = "HTTP/1.1 " + std::to_string(status_) +
                           " Refused\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body;
        write_all(cfd, resp.data(), resp.size());
        ::shutdown(cfd, SHUT_WR);
        return (void)::close(cfd);
      }
      ufd = dial(authority);
      if (ufd < 0) {
        const char* bad = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        write_all(cfd, bad, std::strlen(bad));
        return (void)::close(cfd);
      }
      const char* ok = "HTTP/1.1 200 Connection established\r\n\r\n";
      write_all(cfd, ok, std::strlen(ok));
    } else {
      forwards_++;
      size_t h = head.find("\r\nHost: ");
      if (h == std::string::npos) return (void)::close(cfd);
      std::string authority = head.substr(h + 8, head.find("\r\n", h + 8) - (h + 8));
      ufd = dial(authority);
      if (ufd < 0) return (void)::close(cfd);
      rest = head + rest;
    }
    if (!rest.empty()) write_all(ufd, rest.data(), rest.size());
    relay(cfd, ufd);
    ::close(cfd);
    ::close(ufd);
  }

  // Both directions until both have ended (EOF becomes a half-close of the other side).
  static void relay(int a, int b) {
    bool a_open = true, b_open = true;
    char buf[65536];
    while (a_open || b_open) {
      pollfd p[2] = {{a, static_cast<short>(a_open ? POLLIN : 0), 0}, {b, static_cast<short>(b_open ? POLLIN : 0), 0}};
      if (::poll(p, 2, 5000) <= 0) return;
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        int from = i == 0 ? a : b, to = i == 0 ? b : a;
        ssize_t n = ::recv(from, buf, sizeof buf, 0);
        if (n <= 0) {
          if (n < 0) return;  // reset: drop both
          ::shutdown(to, SHUT_WR);
          (i == 0 ? a_open : b_open) = false;
          continue;
        }
        if (!write_all(to, buf, static_cast<size_t>(n))) return;
      }
    }
  }

  int status_;
  std::string unix_path_;
  int lfd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0}, connects_{0}, forwards_{0}, socks_{0};
  std::string socks_user_, socks_pass_;
  std::thread acceptor_;
  std::mutex mu_;
  std::string alias_, last_connect_;
  std::vector<std::thread> threads_;
};

}  // namespace bench_test
