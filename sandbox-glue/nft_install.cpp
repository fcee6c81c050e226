#include "sandbox-glue/nft_install.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace sluice::glue {

namespace {

struct Ran {
  int exec_errno = 0;
  int status = -1;
  std::string err;
};

// Runs argv (searched in PATH) with `input` on stdin; collects stderr (bounded).
Ran run_program(const std::vector<std::string>& args, const std::string& input) {
  Ran r;
  int in[2], er[2], ex[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(er, O_CLOEXEC) != 0 || ::pipe2(ex, O_CLOEXEC) != 0) {
    r.exec_errno = errno;
    return r;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(er[1], 2);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    int e = errno;
    // The caller's PATH may lack the sbin directories (ip and nft live there).
    for (const char* dir : {"/usr/sbin/", "/sbin/"}) {
      if (e != ENOENT) break;
      ::execv((dir + args[0]).c_str(), argv.data());
      e = errno;
    }
    (void)!::write(ex[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(er[1]);
  ::close(ex[1]);
  if (pid < 0) {
    r.exec_errno = errno;
    ::close(in[1]);
    ::close(er[0]);
    ::close(ex[0]);
    return r;
  }
  int e = 0;
  if (::read(ex[0], &e, sizeof e) == sizeof e) r.exec_errno = e;
  ::close(ex[0]);
  if (r.exec_errno == 0) (void)!::write(in[1], input.data(), input.size());
  ::close(in[1]);
  char buf[1024];
  ssize_t n;
  while ((n = ::read(er[0], buf, sizeof buf)) > 0)
    if (r.err.size() < 8192) r.err.append(buf, static_cast<size_t>(n));
  ::close(er[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace

std::string install_transparent_rules(const TransparentRules& rules) {
  const std::string head = "sluice run --transparent: cannot set up the jail's network: ";
  const std::vector<std::vector<std::string>> routes = {
      {"ip", "link", "set", "lo", "up"},
      {"ip", "route", "add", "default", "dev", "lo", "src", "127.0.0.1"},
      {"ip", "-6", "route", "add", "default", "dev", "lo", "src", "::1"}};
  for (const auto& cmd : routes) {
    Ran r = run_program(cmd, "");
    std::string line;
    for (const auto& w : cmd) line += (line.empty() ? "" : " ") + w;
    if (r.exec_errno == ENOENT) return head + "the ip program is not installed (Debian package iproute2)";
    if (r.exec_errno != 0) return head + line + ": " + std::strerror(r.exec_errno);
    if (r.status != 0)
      return head + line + " failed: " + r.err.substr(0, r.err.find('\n')) +
             ". sluice does not fall back to the non-transparent jail";
  }
  Ran r = run_program({"nft", "-f", "-"}, nft_ruleset(rules));
  if (r.exec_errno != 0 || r.status != 0) return nft_failure_message(r.exec_errno, r.status, r.err);
  return "";
}

}  // namespace sluice::glue
