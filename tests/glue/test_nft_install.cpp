// Transparent mode: jail-init's installation of the routes and rules, in a forked
// child in a fresh user+network namespace (nothing leaves it), and its refusal
// without CAP_NET_ADMIN.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "sandbox-glue/capabilities.hpp"
#include "sandbox-glue/nft_install.hpp"

using namespace sluice::glue;

namespace {

bool write_file(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::string output_of(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

// In a fresh user+net namespace: install (or, with `drop_first`, first give up the
// capabilities), then write the message and what nft and ip now list to `out_file`.
int child(bool drop_first, const std::string& out_file) {
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return 3;
  write_file("/proc/self/setgroups", "deny");
  if (!write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n")) return 4;
  if (!write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) return 4;
  if (drop_first && !drop_all_capabilities().empty()) return 5;
  std::string msg = install_transparent_rules(TransparentRules{});
  std::ofstream out(out_file);
  out << "message=" << msg << "\n";
  out << output_of("nft list ruleset 2>&1; ip route 2>&1; ip -6 route 2>&1");
  return 0;
}

std::string run_child(bool drop_first) {
  char dir[] = "/tmp/sluice-nfti-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string out_file = std::string(dir) + "/out";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(child(drop_first, out_file));
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  std::ifstream in(out_file);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(out_file.c_str());
  ::rmdir(dir);
  return all;
}

}  // namespace

TEST_CASE("install_transparent_rules: routes and the rule set are in place" * doctest::test_suite("userns")) {
  std::string out = run_child(false);
  CHECK(out.find("message=\n") == 0);
  CHECK(out.find("table inet sluice") != std::string::npos);
  CHECK(out.find("redirect to :3129") != std::string::npos);
  CHECK(out.find("default dev lo scope link src 127.0.0.1") != std::string::npos);
  CHECK(out.find("default dev lo") != std::string::npos);
}

TEST_CASE("install_transparent_rules: without CAP_NET_ADMIN it stops with one line naming the cause" *
          doctest::test_suite("userns")) {
  std::string out = run_child(true);
  std::string first = out.substr(0, out.find('\n'));
  CHECK(first.find("message=sluice run --transparent: cannot set up the jail's network: ip link set lo up failed") ==
        0);
  CHECK(first.find("does not fall back") != std::string::npos);
  CHECK(out.find("table inet sluice") == std::string::npos);
}
