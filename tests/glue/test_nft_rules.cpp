// Transparent mode's packet rules: the exact rule set text, that this kernel's nft
// accepts it in a fresh unprivileged user+network namespace and that it redirects
// and drops as promised there (traffic never leaves that namespace), and the
// refusal messages.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string>

#include "sandbox-glue/nft_rules.hpp"

using namespace sluice::glue;

namespace {

std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

}  // namespace

TEST_CASE("nft: the rule set redirects TCP and DNS, drops the rest, keeps loopback") {
  TransparentRules r;
  r.tcp_port = 4711;
  r.dns_port = 5353;
  const std::string got = nft_ruleset(r);
  const char* lines[] = {
      "table inet sluice {\n",
      "\tcounter udp_dropped {\n",
      "\t\ttype nat hook output priority -100; policy accept;\n",
      "\t\tudp dport 53 redirect to :5353\n\t\ttcp dport 53 redirect to :5353\n"
      "\t\tip daddr 127.0.0.0/8 return\n\t\tip6 daddr ::1 return\n\t\tmeta l4proto tcp redirect to :4711\n",
      "\t\ttype filter hook output priority 0; policy drop;\n",
      "\t\tip daddr 127.0.0.0/8 accept\n\t\tip6 daddr ::1 accept\n"
      "\t\tmeta l4proto udp counter name \"udp_dropped\" drop\n"
      "\t\tmeta l4proto { icmp, ipv6-icmp } counter name \"icmp_dropped\" drop\n"
      "\t\tcounter name \"other_dropped\" drop\n",
  };
  for (const char* l : lines) {
    CAPTURE(l);
    CHECK(got.find(l) != std::string::npos);
  }
  CHECK(got.find(":3129") == std::string::npos);
  CHECK(nft_ruleset(TransparentRules{}).find("redirect to :3129\n") != std::string::npos);
}

TEST_CASE("nft: this kernel accepts the rule set and it redirects inside a fresh namespace") {
  // Everything below runs in a user+network namespace made for this test, with only lo:
  // the connects to 198.18.0.5 and fd73:...::5 are rewritten to loopback there.
  const std::string file = "/tmp/sluice-test-nft-" + std::to_string(::getpid()) + ".nft";
  { std::ofstream(file) << nft_ruleset(TransparentRules{}); }
  const std::string py =
      "import socket\n"
      "for fam, dst, lo in ((socket.AF_INET, '198.18.0.5', '127.0.0.1'), (socket.AF_INET6, 'fd73:6c75:6963:6500::5', "
      "'::1')):\n"
      "  l = socket.socket(fam); l.bind((lo, 3129)); l.listen()\n"
      "  s = socket.socket(fam); s.settimeout(5); s.connect((dst, 9)); c, a = l.accept(); print('tcp-landed', a[0])\n"
      "  u = socket.socket(fam, socket.SOCK_DGRAM)\n"
      "  try: u.sendto(b'x', (dst, 9)); print('udp-sent')\n"
      "  except PermissionError: print('udp-dropped')\n"
      "d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); d.bind(('127.0.0.1', 3053)); d.settimeout(5)\n"
      "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'q', ('198.18.0.9', 53)); print('dns-landed', "
      "d.recv(9).decode())\n"
      "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'r', ('127.0.0.1', 53)); print('dns-landed', "
      "d.recv(9).decode())\n"
      "t = socket.socket(); t.bind(('127.0.0.1', 3053)); t.listen()\n"
      "socket.create_connection(('127.0.0.1', 53), timeout=5); c, a = t.accept(); print('dns-tcp-landed')\n";
  { std::ofstream(file + ".py") << py; }
  const std::string out = run("unshare -rn sh -c 'ip link set lo up && nft -f " + file +
                              " && ip route add default dev lo src 127.0.0.1 && ip -6 route add default dev lo src ::1"
                              " && " SLUICE_PYTHON " " +
                              file + ".py && nft list counter inet sluice udp_dropped' 2>&1");
  std::remove(file.c_str());
  std::remove((file + ".py").c_str());
  INFO(out);
  CHECK(out.find("tcp-landed 127.0.0.1\n") != std::string::npos);
  CHECK(out.find("tcp-landed ::1\n") != std::string::npos);
  CHECK(out.find("udp-sent") == std::string::npos);
  size_t dropped = 0;
  for (size_t at = out.find("udp-dropped"); at != std::string::npos; at = out.find("udp-dropped", at + 1)) ++dropped;
  CHECK(dropped == 2);  // one per family
  CHECK(out.find("dns-landed q\n") != std::string::npos);
  CHECK(out.find("dns-landed r\n") != std::string::npos);  // resolv.conf's 127.0.0.1:53 too
  CHECK(out.find("dns-tcp-landed\n") != std::string::npos);
  CHECK(out.find("packets 2 ") != std::string::npos);  // both UDP datagrams counted
}

TEST_CASE("nft: refusals name the cause and the setting") {
  struct Row {
    int exec_errno, status;
    const char* err;
    const char* want;
  };
  const Row rows[] = {
      {ENOENT, 127, "", "nft program is not installed (Debian package nftables)"},
      {EACCES, 127, "", "cannot start nft"},
      {0, 1, "netlink: Error: cache initialization failed: Operation not permitted\n",
       "kernel.apparmor_restrict_unprivileged_userns"},
      {0, 1, "Error: Operation not permitted", "kernel.unprivileged_userns_clone"},
      {0, 1, "netlink: Error: Protocol not supported", "CONFIG_NF_TABLES"},
      {0, 1, "Error: Could not process rule: No such file or directory", "nft_chain_nat"},
      {0, 3, "Error: something new", "nft exited with status 3: Error: something new"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.err);
    const std::string m = nft_failure_message(r.exec_errno, r.status, r.err);
    CHECK(m.find(r.want) != std::string::npos);
    CHECK(m.rfind("sluice run --transparent: cannot install the packet rules in the jail: ", 0) == 0);
    CHECK(m.find('\n') == std::string::npos);
  }
}

TEST_CASE("the jail that bubblewrap cannot build: the settings are named, transparent mode does not fall back") {
  for (bool transparent : {false, true}) {
    const std::string m = jail_failure_message(transparent);
    CAPTURE(m);
    for (const char* want : {"kernel.unprivileged_userns_clone", "user.max_user_namespaces", "user.max_net_namespaces",
                             "kernel.apparmor_restrict_unprivileged_userns"})
      CHECK(m.find(want) != std::string::npos);
    CHECK((m.find("does not fall back to the non-transparent jail") != std::string::npos) == transparent);
    CHECK(m.find('\n') == std::string::npos);
  }
}
