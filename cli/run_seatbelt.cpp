#include "cli/run_seatbelt.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/run_ask.hpp"
#include "proxy/server.hpp"
#include "sandbox-glue/bwrap_args.hpp"
#include "sandbox-glue/proxy_env.hpp"
#include "sandbox-glue/seatbelt.hpp"

extern char** environ;  // POSIX; not every libc declares it in <unistd.h>

namespace sluice::cli {

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string candidate = p.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

namespace {

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "sluice run: %s\n", message.c_str());
  return code;
}

// The port a "tcp:127.0.0.1:PORT" listener address ended up on.
uint16_t port_of(const std::string& address) {
  auto colon = address.rfind(':');
  return colon == std::string::npos ? 0 : static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1));
}

glue::SeatbeltSpec seatbelt_spec(const glue::JailSpec& spec, uint16_t port) {
  glue::SeatbeltSpec s;
  s.proxy_port = port;
  s.writable.push_back(spec.cwd);
  s.writable.push_back("/private/tmp");          // macOS: /tmp is a link to it
  s.writable.push_back("/private/var/folders");  // per-user temporary directories ($TMPDIR)
  for (const auto& w : spec.writable) s.writable.push_back(w);
  s.denied_reads = spec.denied_reads;
  for (const auto& dir : s.writable)
    for (const auto& name : spec.denied_writes) s.denied_writes.push_back(dir + "/" + name);
  return s;
}

}  // namespace

int run_seatbelt(SeatbeltRun run) {
  // The proxy listens on a fresh localhost port; the profile lets CMD reach nothing else.
  rules::ListenerConfig listener;
  listener.name = "sandbox";
  listener.kind = rules::ListenerConfig::Kind::Tcp;
  listener.host = "127.0.0.1";
  listener.port = 0;
  listener.policy = run.policy;
  run.config->listeners.push_back(listener);

  sigset_t handled, old;
  sigemptyset(&handled);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD}) sigaddset(&handled, s);
  sigprocmask(SIG_BLOCK, &handled, &old);  // before the proxy's threads start: they inherit it
  ::signal(SIGPIPE, SIG_IGN);

  proxy::Server server;
  if (!run.quiet && !run.dry_run) server.log().set_denial_stream(stderr);
  if (std::string err = server.start(run.config, run.workers); !err.empty()) return fail(err, 125);
  RunAsking asking;
  if (!run.dry_run)
    if (std::string err = asking.start(server, run.state_path, run.ask); !err.empty()) {
      server.stop();
      return fail(err, 2);
    }
  const uint16_t port = port_of(server.listeners().front().info->address);
  const std::string profile = glue::build_seatbelt_profile(seatbelt_spec(run.spec, port));
  glue::EnvList env = glue::proxy_environment(port, run.spec.sluice_binary);

  std::vector<std::string> argv = {"sandbox-exec", "-p", profile};
  argv.insert(argv.end(), run.spec.command.begin(), run.spec.command.end());
  if (run.dry_run) {
    std::string line;
    for (const auto& w : argv) line += (line.empty() ? "" : " ") + glue::shell_quote(w);
    std::printf("%s\n", line.c_str());
    for (const auto& [k, v] : env) std::printf("%s=%s\n", k.c_str(), glue::shell_quote(v).c_str());
    server.stop();
    return 0;
  }

  // The child of a threaded process may only make async-signal-safe calls until exec (a
  // worker may hold an allocator lock at the fork): argv and the environment are built here.
  std::vector<char*> args;
  for (auto& w : argv) args.push_back(w.data());
  args.push_back(nullptr);
  std::vector<std::string> env_words;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view word(*e);
    std::string_view key = word.substr(0, word.find('='));
    bool replaced = false;
    for (const auto& [k, v] : env) replaced = replaced || k == key;
    if (!replaced) env_words.emplace_back(word);
  }
  for (const auto& [k, v] : env) env_words.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& w : env_words) envp.push_back(w.data());
  envp.push_back(nullptr);
  const std::string program = find_in_path("sandbox-exec");  // here: execvp may allocate
  if (program.empty()) {
    asking.stop_asking();
    server.stop();
    asking.stop();
    std::fprintf(stderr, "sluice run: cannot start sandbox-exec: not found in PATH\n");
    return 127;
  }
  static constexpr char kExecFailed[] = "sluice run: cannot start sandbox-exec\n";
  pid_t child = ::fork();
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    ::chdir(run.spec.cwd.c_str());
    ::execve(program.c_str(), args.data(), envp.data());
    const int e = errno;
    (void)!::write(2, kExecFailed, sizeof kExecFailed - 1);
    _exit(e == ENOENT ? 127 : 126);
  }
  if (child < 0) {
    server.stop();
    return fail("fork: " + std::string(std::strerror(errno)), 125);
  }
  int status = 0;
  for (;;) {
    int sig = 0;
    if (sigwait(&handled, &sig) != 0) continue;
    if (sig != SIGCHLD) {
      ::kill(child, sig);
      continue;
    }
    if (::waitpid(child, &status, WNOHANG) == child) break;
  }
  asking.stop_asking();
  server.stop();
  asking.stop();
  sigprocmask(SIG_SETMASK, &old, nullptr);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}

}  // namespace sluice::cli
