#include "sandbox-glue/jail_init.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sandbox-glue/bridge.hpp"
#include "sandbox-glue/capabilities.hpp"
#include "sandbox-glue/nft_install.hpp"
#include "sandbox-glue/seccomp_filter.hpp"

namespace sluice::glue {

namespace {

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

pid_t start_bridge(const std::string& socket_path, uint16_t port, const std::vector<int>& channel_fds,
                   const TransparentBridge& transparent) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    // Not dumpable: the jailed command (same uid) can neither ptrace this
    // process nor open its /proc/PID/fd entries.
    prctl(PR_SET_DUMPABLE, 0);
    ::close(ready[0]);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::string err = run_bridge(port, socket_path, channel_fds, transparent, [&] {
      char one = 1;
      (void)!::write(ready[1], &one, 1);
      ::close(ready[1]);
    });
    std::fprintf(stderr, "sluice: %s\n", err.c_str());
    _exit(1);
  }
  ::close(ready[1]);
  if (pid < 0) {
    ::close(ready[0]);
    return -1;
  }
  pollfd p{ready[0], POLLIN, 0};
  char byte = 0;
  bool ok = ::poll(&p, 1, 5000) == 1 && ::read(ready[0], &byte, 1) == 1;
  ::close(ready[0]);
  if (!ok) {
    kill(pid, SIGKILL);
    return -1;
  }
  return pid;
}

}  // namespace

int run_jail_init(const std::string& socket_path, uint16_t port, const std::vector<int>& channel_fds,
                  const TransparentBridge& transparent, const std::vector<std::string>& command) {
  if (command.empty()) {
    std::fprintf(stderr, "sluice jail-init: no command\n");
    return 125;
  }
  if (transparent.on) {
    TransparentRules rules;
    rules.tcp_port = transparent.tcp_port;
    rules.dns_port = transparent.dns_port;
    if (std::string err = install_transparent_rules(rules); !err.empty()) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 125;
    }
    if (std::string err = drop_all_capabilities(); !err.empty()) {
      std::fprintf(stderr, "sluice run --transparent: %s\n", err.c_str());
      return 125;
    }
  }
  // Signals are taken synchronously below; block them before any fork.
  sigset_t wanted, old;
  sigemptyset(&wanted);
  for (int s : kForwarded) sigaddset(&wanted, s);
  sigaddset(&wanted, SIGCHLD);
  sigprocmask(SIG_BLOCK, &wanted, &old);

  pid_t bridge = start_bridge(socket_path, port, channel_fds, transparent);
  // The bridge has its copies; CMD (forked below) and this init keep none.
  for (int fd : channel_fds) ::close(fd);
  if (bridge < 0) {
    std::fprintf(stderr, "sluice run: the in-jail bridge did not start on 127.0.0.1:%u\n", port);
    return 125;
  }
  pid_t child = fork();
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    if (std::string err = apply_jail_seccomp(); !err.empty()) {
      std::fprintf(stderr, "sluice run: %s\n", err.c_str());
      _exit(125);
    }
    std::vector<char*> argv;
    for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    int e = errno;
    std::fprintf(stderr, "sluice run: %s: %s\n", command[0].c_str(),
                 e == ENOENT ? "command not found" : std::strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  if (child < 0) {
    std::fprintf(stderr, "sluice run: fork: %s\n", std::strerror(errno));
    return 125;
  }
  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&wanted, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    // As pid 1 we reap every orphan; only CMD's end ends the jail.
    int status = 0;
    pid_t done;
    while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
      if (done != child) continue;
      kill(bridge, SIGKILL);
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return 125;
    }
  }
}

}  // namespace sluice::glue
