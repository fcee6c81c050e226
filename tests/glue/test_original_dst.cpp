// Transparent mode: the original destination of a redirected connection, on this
// kernel, in a fresh user+network namespace with the jail's own rule set (a forked
// child; no traffic leaves that namespace).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "sandbox-glue/nft_rules.hpp"
#include "sandbox-glue/original_dst.hpp"

using namespace sluice::glue;

namespace {

bool write_file(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

int listen_on(int family, uint16_t port) {
  int s = ::socket(family, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) {
    ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(port);
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  }
  return ::listen(s, 4) == 0 ? s : -1;
}

// Connects to `text`:`port` (redirected to the listener), accepts, and returns what
// original_destination says as "addr port", or a failure word.
std::string probe(int listener, int family, const char* text, uint16_t port) {
  int c = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, text, &a->sin6_addr);
    a->sin6_port = htons(port);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    ::inet_pton(AF_INET, text, &a->sin_addr);
    a->sin_port = htons(port);
    len = sizeof *a;
  }
  ::connect(c, reinterpret_cast<sockaddr*>(&ss), len);
  int a = ::accept(listener, nullptr, nullptr);
  if (a < 0) return "no-accept";
  auto d = original_destination(a);
  ::close(a);
  ::close(c);
  if (!d) return "none";
  return d->addr.to_string() + " " + std::to_string(d->port);
}

// Runs in the forked child: namespaces, routes, rules, then the probes. Writes the
// results to `out` (one per line) and returns the exit status.
int child(const std::string& rules_file, const std::string& out_file) {
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return 3;
  write_file("/proc/self/setgroups", "deny");
  if (!write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n")) return 4;
  if (!write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) return 4;
  std::string cmd =
      "ip link set lo up && ip route add default dev lo src 127.0.0.1 && "
      "ip -6 route add default dev lo src ::1 && nft -f " +
      rules_file;
  if (std::system(cmd.c_str()) != 0) return 5;
  int l4 = listen_on(AF_INET, 3129), l6 = listen_on(AF_INET6, 3129);
  if (l4 < 0 || l6 < 0) return 6;
  std::ofstream out(out_file);
  out << probe(l4, AF_INET, "198.18.0.7", 8443) << "\n";
  out << probe(l6, AF_INET6, "fd73:6c75:6963:6500::9", 22) << "\n";
  // Loopback is not redirected (conntrack reports the listener itself): none.
  int l7 = listen_on(AF_INET, 4000);
  out << probe(l7, AF_INET, "127.0.0.1", 4000) << "\n";
  return 0;
}

}  // namespace

TEST_CASE("original_destination: the address and port a redirected connection was meant for" *
          doctest::test_suite("userns")) {
  char dir[] = "/tmp/sluice-odst-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string rules_file = std::string(dir) + "/rules.nft", out_file = std::string(dir) + "/out";
  {
    std::ofstream f(rules_file);
    f << nft_ruleset(TransparentRules{});
  }
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(child(rules_file, out_file));
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::ifstream in(out_file);
  std::string v4, v6, lo;
  std::getline(in, v4);
  std::getline(in, v6);
  std::getline(in, lo);
  CHECK(v4 == "198.18.0.7 8443");
  CHECK(v6 == "fd73:6c75:6963:6500::9 22");
  CHECK(lo == "none");
  std::remove(rules_file.c_str());
  std::remove(out_file.c_str());
  ::rmdir(dir);
}
