// `sluice run`: an embedded proxy on a private unix socket, and CMD in a
// bubblewrap jail whose only way out is that socket (through the in-jail bridge).
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/control_client.hpp"
#include "cli/run_ask.hpp"
#include "cli/run_daemon.hpp"
#include "cli/run_seatbelt.hpp"
#include "cli/run_transparent.hpp"
#include "control/control_plane.hpp"
#include "proxy/server.hpp"
#include "rules/config.hpp"
#include "rules/json.hpp"
#include "rules/pattern.hpp"
#include "sandbox-glue/bwrap_args.hpp"
#include "sandbox-glue/git_env.hpp"
#include "sandbox-glue/nft_rules.hpp"
#include "sandbox-glue/proxy_env.hpp"
#include "sandbox-glue/transparent_target.hpp"
#include "sandbox-glue/trust_bundle.hpp"
#include "sandbox-glue/tty_prompt.hpp"
#include "tls/inspector.hpp"

namespace sluice::cli {

namespace {

std::string runtime_base() {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && *xdg == '/' && ::access(xdg, W_OK | X_OK) == 0) return xdg;
  return "/tmp";
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::string absolute(const std::string& p, const std::string& cwd) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) != nullptr) return buf;
  return p.empty() || p[0] == '/' ? p : cwd + "/" + p;
}

// Removes what the launcher made, leaving anything the jail wrote into it.
void remove_placeholders(const std::vector<std::string>& paths) {
  for (const auto& p : paths) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode))
      ::rmdir(p.c_str());  // fails, and keeps it, unless empty
    else if (S_ISREG(st.st_mode) && st.st_size == 0)
      ::unlink(p.c_str());
  }
}

// fd 3 is bwrap's --info-fd; the proxy's hand-over channels follow.
constexpr int kFirstChannelFd = 4;
// --transparent --daemon: how long the DNS service waits for the daemon's verdict on a name,
// and how long after a wait in vain new names fail at once.
constexpr int kDaemonDnsTimeoutMs = 2000;
constexpr int kDaemonDnsBackoffMs = 5000;

// The state file: --state, or with --ask the per-user default.
std::string state_path(const Args& a) {
  if (a.has("--state")) return a.one("--state");
  return a.has("--ask") ? default_state_file() : "";
}

int fail(const std::string& message, int code) {
  std::fprintf(stderr, "sluice run: %s\n", message.c_str());
  return code;
}

// --daemon: what the daemon's create answer gives the jail (control/sandbox_credentials.hpp),
// exported the way the embedded proxy exports its own: each credential's stand-in under the
// policy's names (the real secret's variable removed), git's extraHeader entries, and the
// daemon's inspection CA as the jail's trust bundle. "" or an error.
std::string take_daemon_credentials(const rules::Json& reply, const std::string& dir, glue::JailSpec& spec) {
  auto text = [](const rules::Json& o, const char* key) {
    const rules::Json* v = o.find(key);
    return v != nullptr && v->is_string() ? v->as_string() : std::string();
  };
  if (const rules::Json* list = reply.find("credentials"); list != nullptr && list->is_array())
    for (const auto& c : list->items()) {
      const std::string stand_in = text(c, "stand_in");
      if (stand_in.empty()) return "the daemon's answer has a credential without a stand-in";
      if (std::string secret_env = text(c, "secret_env"); !secret_env.empty()) spec.unset_env.push_back(secret_env);
      if (const rules::Json* env = c.find("env"); env != nullptr && env->is_array())
        for (const auto& var : env->items())
          if (var.is_string()) {
            spec.unset_env.push_back(var.as_string());
            spec.env.emplace_back(var.as_string(), stand_in);
          }
    }
  std::vector<glue::GitExtraHeader> headers;
  if (const rules::Json* git = reply.find("git_config"); git != nullptr && git->is_array())
    for (const auto& h : git->items()) headers.push_back({text(h, "url"), text(h, "header")});
  for (auto& kv : glue::git_config_environment(headers, std::getenv("GIT_CONFIG_COUNT")))
    spec.env.push_back(std::move(kv));
  if (std::string ca = text(reply, "ca"); !ca.empty() && spec.trust_bundle.empty()) {
    spec.trust_bundle = dir + "/ca-bundle.crt";
    if (std::string err = glue::write_trust_bundle(spec.trust_bundle, ca); !err.empty()) {
      spec.trust_bundle.clear();
      return err;
    }
    for (auto& kv : glue::trust_environment(spec.trust_bundle_jail_path)) spec.env.push_back(std::move(kv));
  }
  return "";
}

int run_main(const Args& a) {
  if (!a.positional.empty()) return fail("put the command after --: sluice run [OPTIONS] -- " + a.positional[0], 2);
  if (a.rest.empty()) return fail("no command: sluice run [OPTIONS] -- CMD [ARGS...]", 2);
  const bool daemon = a.has("--daemon");
  if (daemon) {
    for (const char* f : {"--allow", "--deny", "--policy", "--dns-server", "--log", "--workers", "--bridge", "--ask",
                          "--state", "--upstream-proxy-from-env", "--inspect"})
      if (a.has(f))
        return fail(std::string(f) +
                        " cannot be combined with --daemon: the daemon's policy, resolver and log apply "
                        "(answer its asks with sluice ctl)",
                    2);
  } else {
    for (const char* f : {"--daemon-policy", "--name"})
      if (a.has(f)) return fail(std::string(f) + " goes with --daemon SOCKET", 2);
  }

  // The policy: from --policy, then --allow/--deny on top; closed by default.
  auto cfg = std::make_shared<rules::Config>();
  std::shared_ptr<rules::Policy> policy = std::make_shared<rules::Policy>();
  policy->name = "default";
  if (a.has("--policy")) {
    auto load = rules::load_config_file(a.one("--policy"), true);
    if (!load.errors.empty()) {
      for (const auto& e : load.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
      return 2;
    }
    cfg = load.config;
    auto it = cfg->policies.find("default");
    if (it == cfg->policies.end() && cfg->policies.size() == 1) it = cfg->policies.begin();
    if (it == cfg->policies.end())
      return fail(a.one("--policy") + ": name one policy 'default' (it has " + std::to_string(cfg->policies.size()) +
                      " policies and none is called default)",
                  2);
    // Fresh from the loader and not shared yet: safe to extend in place.
    policy = std::const_pointer_cast<rules::Policy>(it->second);
  }
  cfg->listeners.clear();
  cfg->policies = {{policy->name, policy}};
  for (const auto& text : a.all("--allow"))
    if (auto err = rules::add_flag_entry(text, "--allow", policy->allow, policy->allow_paths)) return fail(*err, 2);
  for (const auto& text : a.all("--deny"))
    if (auto err = rules::add_flag_entry(text, "--deny", policy->deny, policy->deny_paths)) return fail(*err, 2);
  for (const auto& text : a.all("--inspect")) {
    auto p = rules::parse_pattern(text);
    if (!p) return fail("--inspect: " + p.error(), 2);
    policy->inspect.add(std::move(p.value()));
  }
  // --ask: what the policy would deny by default is asked about instead.
  if (a.has("--ask") && policy->default_action == rules::Action::Deny) policy->default_action = rules::Action::Ask;
  for (const auto& s : a.all("--dns-server")) cfg->resolver.servers.push_back(s);
  // Only when asked: the jail's way out must not change with the caller's environment.
  if (a.has("--upstream-proxy-from-env")) {
    auto parent = rules::upstream_proxy_from_env([](const char* n) -> const char* { return std::getenv(n); });
    if (!parent) return fail("--upstream-proxy-from-env: " + parent.error(), 2);
    cfg->upstream_proxy = std::make_shared<rules::UpstreamProxy>(std::move(parent.value()));
  }
  cfg->log.path = a.one("--log", "");
  // TLS inspection: the CA whose leaves the jail must trust. Without one in the --policy
  // file, a CA made for this run, in memory only: its key is never written anywhere.
  std::shared_ptr<tls::Inspector> run_inspector;
  std::string inspection_ca_pem;
  if (!daemon && policy->inspects_anything()) {
    if (cfg->tls.has_ca()) {
      std::string error;
      auto loaded = tls::Inspector::load(proxy::inspector_settings(cfg->tls), error);
      if (!loaded) return fail("tls: " + error, 2);
      inspection_ca_pem = loaded->ca_pem();
    } else {
      tls::CaResult made = tls::create_ca();
      if (!made.ca) return fail("cannot create this run's inspection CA: " + made.error, 125);
      std::string error;
      // No CA in the config (has_ca() is false): the settings name no CA files.
      run_inspector = tls::Inspector::from_ca(std::move(*made.ca), proxy::inspector_settings(cfg->tls), error);
      if (!run_inspector) return fail("tls: " + error, 2);
      inspection_ca_pem = run_inspector->ca_pem();
    }
  }
  cfg->limits.drain_timeout_ms = 200;  // the jail is gone when we stop; nothing to wait for

  char cwd_buf[PATH_MAX];
  if (::getcwd(cwd_buf, sizeof cwd_buf) == nullptr) return fail("cannot read the current directory", 125);
  const std::string cwd = cwd_buf;
  const char* home_env = std::getenv("HOME");
  const std::string home = home_env ? home_env : "";

  glue::JailSpec spec;
  spec.command = a.rest;
  spec.cwd = cwd;
  spec.home = home;
  for (const auto& w : a.all("--write")) {
    if (glue::probe_path(w) == glue::PathKind::Missing) return fail("--write " + w + ": no such file or directory", 2);
    spec.writable.push_back(absolute(w, cwd));
  }
  if (!home.empty())
    for (const auto& d : glue::default_denied_reads()) spec.denied_reads.push_back(home + "/" + d);
  for (const auto& d : a.all("--deny-read")) spec.denied_reads.push_back(absolute(d, cwd));
  spec.denied_writes = glue::default_denied_writes();
  spec.sluice_binary = self_exe();
  spec.env = glue::proxy_environment(spec.bridge_port, spec.sluice_jail_path);
  // The credential gateway: the jail gets a fresh stand-in per credential, under the names the
  // policy gives; real secrets under the usual names never reach it (docs/credentials.md).
  std::vector<std::pair<std::string, std::string>> stand_ins;
  spec.unset_env = rules::default_secret_env_names();
  if (!daemon)
    for (const auto& c : policy->credentials) {
      std::string stand_in = rules::make_stand_in(c->secret);
      stand_ins.emplace_back(c->name, stand_in);
      if (!c->secret_env.empty()) spec.unset_env.push_back(c->secret_env);
      for (const auto& var : c->env) {
        spec.unset_env.push_back(var);
        spec.env.emplace_back(var, stand_in);
      }
    }
  // git presents the stand-in on its own for hosts a git: rule guards (http.<url>.extraHeader).
  if (!daemon)
    for (auto& kv :
         glue::git_config_environment(glue::git_extra_headers(*policy, stand_ins), std::getenv("GIT_CONFIG_COUNT")))
      spec.env.push_back(std::move(kv));
  if (daemon) {
    // Belt and braces: the jail cannot create unix sockets anyway (seccomp), but neither
    // the control socket nor the other sandboxes' sockets are even visible in it.
    std::string control = absolute(a.one("--daemon"), cwd);
    for (const std::string& p : {control, control + ".sandboxes"})
      if (p.rfind("/tmp/", 0) != 0 && p.rfind("/run/", 0) != 0) spec.denied_reads.push_back(p);
  }

#ifdef __APPLE__
  const char* default_jail = "seatbelt";
#else
  const char* default_jail = "bwrap";
#endif
  const std::string jail = a.one("--jail", default_jail);
  if (jail != "bwrap" && jail != "seatbelt") return fail("--jail must be bwrap or seatbelt", 2);
  if (jail == "seatbelt") {
    if (a.has("--transparent"))
      return fail("--transparent needs the bwrap jail (nftables in its network namespace)", 2);
    if (daemon) return fail("--daemon needs the bwrap jail (its bridge reaches the daemon's socket)", 2);
    int workers = a.has("--workers") ? std::atoi(a.one("--workers").c_str()) : 1;
    if (workers < 1 || workers > 64) return fail("--workers must be a number from 1 to 64", 2);
    return run_seatbelt(SeatbeltRun{cfg, policy->name, spec, a.has("--quiet"), a.has("--dry-run"), workers,
                                    a.has("--ask"), state_path(a)});
  }

  const bool transparent = a.has("--transparent");

  // A private runtime directory: the socket lives here and nothing else of it enters the jail.
  std::string dir_template = runtime_base() + "/sluice-run-XXXXXX";
  if (::mkdtemp(dir_template.data()) == nullptr)
    return fail("cannot create a runtime directory: " + std::string(std::strerror(errno)), 125);
  const std::string dir = dir_template;
  const std::string empty_dir = dir + "/empty";
  ::mkdir(empty_dir.c_str(), 0500);
  spec.socket_host_path = dir + "/proxy.sock";
  spec.runtime_dir = dir;
  if (!inspection_ca_pem.empty()) {
    spec.trust_bundle = dir + "/ca-bundle.crt";
    if (std::string err = glue::write_trust_bundle(spec.trust_bundle, inspection_ca_pem); !err.empty()) {
      ::rmdir(empty_dir.c_str());
      ::rmdir(dir.c_str());
      return fail(err, 125);
    }
    for (auto& kv : glue::trust_environment(spec.trust_bundle_jail_path)) spec.env.push_back(std::move(kv));
  }
  // --daemon: the daemon makes this jail's listener; we hold the control connection that
  // made it (its lease) until CMD exits.
  std::unique_ptr<ControlClient> lease;
  std::string sandbox_name;
  if (daemon && !a.has("--dry-run")) {
    lease = std::make_unique<ControlClient>(a.one("--daemon"));
    sandbox_name = a.one("--name", "run-" + std::to_string(::getpid()));
    rules::Json body = rules::Json::object();
    body.set("name", rules::Json::string(sandbox_name));
    body.set("policy", rules::Json::string(a.one("--daemon-policy", "default")));
    body.set("lease", rules::Json::boolean(true));
    ControlResponse r = lease->request("POST", "/v1/sandboxes", body.dump());
    auto reply = rules::Json::parse(r.body);
    const rules::Json* path = reply ? reply->find("path") : nullptr;
    if (r.status != 201 || path == nullptr || !path->is_string()) {
      ::rmdir(empty_dir.c_str());
      ::rmdir(dir.c_str());
      const rules::Json* err = reply ? reply->find("error") : nullptr;
      return fail("the daemon made no sandbox: " + (r.status == 0             ? r.error
                                                    : err && err->is_string() ? err->as_string()
                                                                              : "status " + std::to_string(r.status)),
                  125);
    }
    spec.socket_host_path = path->as_string();
    if (std::string err = take_daemon_credentials(reply.value(), dir, spec); !err.empty()) {
      lease->request("DELETE", "/v1/sandboxes/" + sandbox_name);
      ::rmdir(empty_dir.c_str());
      ::rmdir(dir.c_str());
      return fail(err, 125);
    }
  }
  const std::string resolv_conf = dir + "/resolv.conf", dns_socket = dir + "/dns.sock";
  if (transparent) {
    spec.transparent.on = true;
    spec.transparent.resolv_conf_host_path = resolv_conf;
    spec.transparent.dns_socket_host_path = dns_socket;
    spec.transparent.fake_ipv4 = cfg->transparent.fake_ipv4.to_string();
    spec.transparent.fake_ipv6 = cfg->transparent.fake_ipv6.to_string();
  }
  auto cleanup_dir = [&] {
    ::unlink(resolv_conf.c_str());
    ::unlink(dns_socket.c_str());
    ::rmdir(empty_dir.c_str());
    if (!spec.trust_bundle.empty()) ::unlink(spec.trust_bundle.c_str());
    if (!daemon) ::unlink(spec.socket_host_path.c_str());
    ::rmdir(dir.c_str());
    if (lease) {
      lease->request("DELETE", "/v1/sandboxes/" + sandbox_name);
      lease.reset();  // closing the lease would remove it too
    }
  };

  int workers = 1;
  if (a.has("--workers")) workers = std::atoi(a.one("--workers").c_str());
  if (workers < 1 || workers > 64) return fail("--workers must be a number from 1 to 64", 2);
  // The daemon is another process: the bridge relays bytes to its socket.
  const std::string bridge_mode = a.one("--bridge", daemon ? "relay" : "handover");
  if (bridge_mode != "handover" && bridge_mode != "relay") return fail("--bridge must be handover or relay", 2);
  // The hand-over channels, one per proxy worker, arrive in the jail as fds 4, 5, ...
  if (bridge_mode == "handover")
    for (int i = 0; i < workers; ++i) spec.channel_fds.push_back(kFirstChannelFd + i);

  glue::BwrapPlan plan = glue::build_bwrap_plan(spec, glue::probe_path, empty_dir);
  if (a.has("--dry-run")) {
    std::string line;
    for (const auto& w : plan.argv) line += (line.empty() ? "" : " ") + glue::shell_quote(w);
    std::printf("%s\n", line.c_str());
    for (const auto& [k, v] : spec.env) std::printf("%s=%s\n", k.c_str(), glue::shell_quote(v).c_str());
    if (a.has("--transparent")) std::printf("%s", transparent_dry_run_text().c_str());
    cleanup_dir();
    return 0;
  }
  std::string bwrap = find_in_path("bwrap");
  if (bwrap.empty()) {
    cleanup_dir();
    return fail("bwrap (bubblewrap) not found in PATH; install it: apt-get install bubblewrap", 125);
  }

  rules::ListenerConfig listener;
  listener.name = "sandbox";
  listener.kind = rules::ListenerConfig::Kind::Unix;
  listener.path = spec.socket_host_path;
  listener.mode = 0600;
  listener.policy = policy->name;
  listener.stand_ins = std::move(stand_ins);
  cfg->listeners.push_back(listener);

  // Signals are read from a signalfd; block them before any thread starts.
  sigset_t handled, old;
  sigemptyset(&handled);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD}) sigaddset(&handled, s);
  sigprocmask(SIG_BLOCK, &handled, &old);
  ::signal(SIGPIPE, SIG_IGN);

  proxy::Server server;
  RunAsking asking;
  std::unique_ptr<DenialWatcher> watcher;
  if (daemon && !a.has("--quiet")) {
    watcher = std::make_unique<DenialWatcher>(a.one("--daemon"), sandbox_name);
    if (std::string err = watcher->start(); !err.empty()) watcher.reset();  // denials then show in the daemon only
  }
  if (!daemon) {
    if (!a.has("--quiet")) server.log().set_denial_stream(stderr);
    if (run_inspector) server.preset_inspector(run_inspector);
    if (std::string err = server.start(cfg, workers); !err.empty()) {
      cleanup_dir();
      return fail(err, 125);
    }
    if (std::string err = asking.start(server, state_path(a), a.has("--ask")); !err.empty()) {
      server.stop();
      cleanup_dir();
      return fail(err, 2);
    }
  }
  TransparentDnsService dns_service;
  if (transparent) {
    std::string err;
    if (FILE* f = std::fopen(resolv_conf.c_str(), "we"); f != nullptr) {
      std::fputs(glue::transparent_resolv_conf().c_str(), f);
      std::fclose(f);
    } else {
      err = "cannot write " + resolv_conf + ": " + std::strerror(errno);
    }
    if (err.empty() && daemon) {
      // The daemon's policy decides what the jail may resolve (and logs the denials); a
      // daemon that does not answer within 2 s fails closed (then new names fail for 5 s).
      auto verdicts = std::make_shared<DaemonDnsVerdicts>(a.one("--daemon"), sandbox_name, kDaemonDnsTimeoutMs,
                                                          kDaemonDnsBackoffMs, a.has("--quiet") ? nullptr : stderr);
      err = dns_service.start(
          dns_socket, [verdicts](const rules::CanonicalHost& host) { return (*verdicts)(host); },
          a.one("--daemon-policy", "default"), cfg->transparent, server.log(), a.has("--quiet") ? nullptr : stderr);
    } else if (err.empty()) {
      err = dns_service.start(dns_socket, policy, cfg->transparent, server.log());
    }
    if (!err.empty()) {
      server.stop();
      cleanup_dir();
      return fail(err, 125);
    }
  }
  std::string channel_error;
  std::vector<int> channels;
  if (!spec.channel_fds.empty()) channels = server.open_channels(listener.name, &channel_error);
  if (channels.size() != spec.channel_fds.size()) {
    cleanup_dir();
    return fail("cannot open the bridge's channels: " + channel_error, 125);
  }

  int info[2];
  if (::pipe2(info, O_CLOEXEC) != 0) return fail("pipe: " + std::string(std::strerror(errno)), 125);
  std::vector<std::string> argv_words = plan.argv;
  argv_words.insert(argv_words.begin() + 1, {"--info-fd", "3"});
  // The child of a threaded process may only make async-signal-safe calls until exec: a
  // worker thread may hold an allocator lock at the fork (glibc resets its own; ASan's
  // stack depot lock is not, and a child that allocated spun forever). So everything the
  // child needs is built here, before the fork.
  std::vector<char*> args;
  for (auto& w : argv_words) args.push_back(w.data());
  args.push_back(nullptr);
  std::vector<int> high(channels.size(), -1);
  const std::string exec_failed = "sluice run: cannot start " + bwrap + ": ";
  pid_t child = ::fork();
  if (child == 0) {
    ::setpgid(0, 0);  // terminal signals reach the launcher, which forwards them to CMD
    sigprocmask(SIG_SETMASK, &old, nullptr);
    // Move everything out of the way first, so no dup2 below overwrites a source.
    int info_high = ::fcntl(info[1], F_DUPFD_CLOEXEC, 100);
    for (size_t i = 0; i < channels.size(); ++i) high[i] = ::fcntl(channels[i], F_DUPFD_CLOEXEC, 100);
    ::dup2(info_high, 3);  // dup2 clears O_CLOEXEC on the copy
    for (size_t i = 0; i < high.size(); ++i) ::dup2(high[i], kFirstChannelFd + static_cast<int>(i));
    // Nothing else the launcher inherited (a socket, a directory) may cross into the jail.
    ::close_range(static_cast<unsigned>(kFirstChannelFd + static_cast<int>(high.size())), ~0U, 0);
    ::execv(bwrap.c_str(), args.data());
    const char* why = ::strerrordesc_np(errno);  // a static string: no locale, no allocation
    (void)!::write(2, exec_failed.data(), exec_failed.size());
    (void)!::write(2, why, std::strlen(why));
    (void)!::write(2, "\n", 1);
    _exit(125);
  }
  ::close(info[1]);
  for (int fd : channels) ::close(fd);  // the jail's bridge holds them now
  if (child < 0) return fail("fork: " + std::string(std::strerror(errno)), 125);

  JailNamespaces jail_namespaces;  // transparent: the counters are read once CMD is gone
  int sfd = ::signalfd(-1, &handled, SFD_CLOEXEC);
  std::string info_text;
  bool info_open = true;
  pid_t jail_pid = 0;
  int status = 0;
  for (;;) {
    // A closed info pipe is left out (fd -1): poll would report its POLLHUP at once, forever,
    // and the launcher would spin a core for the whole run.
    pollfd fds[2] = {{sfd, POLLIN, 0}, {info_open ? info[0] : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (info_open && fds[1].revents) {
      char buf[512];
      ssize_t n = ::read(info[0], buf, sizeof buf);
      if (n > 0)
        info_text.append(buf, static_cast<size_t>(n));
      else
        info_open = false;
      if (auto k = info_text.find("\"child-pid\""); k != std::string::npos && jail_pid == 0) {
        auto colon = info_text.find(':', k);
        if (colon != std::string::npos) jail_pid = static_cast<pid_t>(std::atoi(info_text.c_str() + colon + 1));
        if (transparent && jail_pid > 0) jail_namespaces.open(jail_pid);
      }
    }
    if (fds[0].revents) {
      signalfd_siginfo si{};
      if (::read(sfd, &si, sizeof si) != sizeof si) continue;
      int sig = static_cast<int>(si.ssi_signo);
      if (sig == SIGCHLD) {
        if (::waitpid(child, &status, WNOHANG) == child) break;
        continue;
      }
      ::kill(jail_pid > 0 ? jail_pid : child, sig);
    }
  }
  ::close(sfd);
  ::close(info[0]);
  if (transparent) {
    if (auto dropped = jail_namespaces.read_dropped()) {
      server.log().write(dropped_log_line(*dropped));
      if (dropped->udp + dropped->icmp + dropped->other > 0 && !a.has("--quiet"))
        std::fprintf(stderr,
                     "sluice: the jail's packet rules dropped %llu UDP (not DNS), %llu ICMP and %llu other "
                     "packets\n",
                     static_cast<unsigned long long>(dropped->udp), static_cast<unsigned long long>(dropped->icmp),
                     static_cast<unsigned long long>(dropped->other));
    }
    jail_namespaces.close();
  }
  asking.stop_asking();
  dns_service.stop();
  server.stop();
  asking.stop();
  remove_placeholders(plan.placeholders);
  cleanup_dir();  // --daemon: deletes the sandbox; its denials are in the stream before that
  if (watcher) watcher->stop();
  sigprocmask(SIG_SETMASK, &old, nullptr);

  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 125;
  if (jail_pid == 0 && code != 0) {
    std::fprintf(stderr, "%s\n", glue::jail_failure_message(transparent).c_str());
    return 125;
  }
  return code;
}

}  // namespace

Subcommand run_command(CLI::App& root) {
  auto c = std::make_shared<Command>(root, "run", "run a command in a jail whose only way out is sluice");
  c->usage_tail("-- CMD [ARGS...]")
      .description(
          "Runs CMD in a bubblewrap jail with no network of its own. Its only way out is\n"
          "an embedded sluice proxy, reached through a bridge on 127.0.0.1:3128 inside the\n"
          "jail; HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and friends point there. The same port\n"
          "speaks SOCKS5 (socks5h://127.0.0.1:3128), and git over ssh goes through it\n"
          "(GIT_SSH_COMMAND). With no --policy and no --allow, every request is denied.\n"
          "With --daemon SOCKET a running `sluice serve` is the proxy instead; then only\n"
          "--daemon-policy, --name, --write, --deny-read, --quiet, --jail and --dry-run apply.")
      .value("--allow", "PATTERN",
             "allow entry (host, *.host, host:port, IP, CIDR, or host/path/\n"
             "for requests; docs/configuration.md); repeatable",
             true)
      .value("--deny", "PATTERN", "deny entry, wins over allow; repeatable", true)
      .value("--inspect", "PATTERN",
             "terminate TLS to these hosts and judge each request inside\n"
             "(docs/tls.md); the jail trusts this run's own CA; repeatable",
             true)
      .value("--policy", "FILE",
             "a sluice config; its policy 'default' (or its only policy),\n"
             "resolver and limits apply; listeners in it are ignored")
      .flag("--ask",
            "hosts the policy does not settle are asked about on the\n"
            "terminal (/dev/tty): [o]nce / [a]lways / [d]eny; the\n"
            "connection waits (limits.ask_timeout_ms, default 60 s).\n"
            "Without a terminal, asking means denying")
      .value("--state", "FILE",
             "where `always` answers are kept (default with --ask:\n"
             "$XDG_STATE_HOME/sluice/run-state.json, or\n"
             "~/.local/state/sluice/run-state.json)")
      .value("--daemon", "SOCKET",
             "use a running `sluice serve` (its control socket) instead\n"
             "of an embedded proxy: it makes a listener for this jail,\n"
             "removed when CMD exits; its policy, log and events apply.\n"
             "The jail trusts the daemon's inspection CA when that policy\n"
             "inspects; its credentials give the jail stand-ins the daemon\n"
             "issues for this jail's listener only, exported under their\n"
             "env names and to git (docs/credentials.md)")
      .value("--daemon-policy", "NAME", "the daemon's policy for this jail (default: default)")
      .value("--name", "NAME", "the sandbox's name at the daemon (default: run-PID)")
      .value("--write", "PATH", "another writable path besides the current directory (repeatable)", true)
      .value("--deny-read", "PATH", "hide PATH from the jail (besides ~/.ssh, ~/.aws, ...; repeatable)", true)
      .value("--dns-server", "IP:PORT", "DNS server for the proxy (default: /etc/resolv.conf; repeatable)", true)
      .value("--log", "FILE", "write the full JSON decision log to FILE")
      .flag("--upstream-proxy-from-env",
            "send what the policy allows through the parent proxy named\n"
            "by HTTPS_PROXY (else HTTP_PROXY) of this environment,\n"
            "NO_PROXY naming what goes direct;\n"
            "a parent in the --policy file's policy wins")
      .flag("--quiet", "do not print denials on stderr")
      .value("--bridge", "MODE",
             "handover (default): the in-jail bridge passes each\n"
             "connection to the proxy, which serves it directly\n"
             "(with --transparent, with the bridge's decision);\n"
             "relay: the bridge copies its bytes over the socket")
      .value("--workers", "N", "proxy event loops (default 1)")
      .value("--jail", "KIND",
             "bwrap (Linux, the default there) or seatbelt (macOS's\n"
             "sandbox-exec, the default there; on Linux only useful\n"
             "with a stand-in sandbox-exec, for testing)")
      .flag("--transparent",
            "capture every TCP connection and DNS query of CMD, also of\n"
            "programs that ignore HTTP_PROXY: nft rules in the jail send\n"
            "TCP to the bridge, DNS to a stub answering fake addresses\n"
            "for names the policy could allow (NXDOMAIN for denied ones),\n"
            "other UDP is dropped; a refused connection is reset (an HTTP\n"
            "request, or TLS to an inspected host, gets the 403), so is an\n"
            "SNI/Host naming another host.\n"
            "With --daemon the daemon's policy decides the DNS answers\n"
            "(asked once per name) and the connections. --dry-run prints\n"
            "the rule set, routes, resolv.conf")
      .flag("--dry-run", "print the bwrap command line and exit")
      .footer(
          "Exit status: CMD's (128+N if a signal ended it); 2 for bad arguments or policy,\n"
          "125 when the jail could not be built, 127 when CMD is not found.")
      .takes_rest();
  return {c, run_main};
}

}  // namespace sluice::cli
