// Transparent mode: jail-init's capability drop, in a forked child that first gets a
// full set of capabilities in a fresh user namespace (like jail-init's CAP_NET_ADMIN).
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "sandbox-glue/capabilities.hpp"

using namespace sluice::glue;

namespace {

std::string status_field(const std::string& name) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
  return "?";
}

bool all_zero(const std::string& v) { return v.find_first_not_of("\t 0") == std::string::npos && !v.empty(); }

// Exit status: 0 when every check holds, else the number of the first that failed.
int child() {
  if (::unshare(CLONE_NEWUSER) != 0) return 10;
  if (all_zero(status_field("CapEff"))) return 11;  // the namespace gave us capabilities
  if (!drop_all_capabilities().empty()) return 12;
  for (const char* f : {"CapEff", "CapPrm", "CapInh", "CapAmb"})
    if (!all_zero(status_field(f))) return 13;
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return 14;
  // What CAP_NET_ADMIN / CAP_SYS_ADMIN would allow is refused now.
  if (::unshare(CLONE_NEWNET) == 0 || errno != EPERM) return 15;
  return 0;
}

}  // namespace

TEST_CASE("drop_all_capabilities: no capability left, no way to regain one" * doctest::test_suite("userns")) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(child());
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
