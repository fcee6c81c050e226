// The bubblewrap plan for a jail, against a described filesystem.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>

#include "sandbox-glue/bwrap_args.hpp"
#include "sandbox-glue/proxy_env.hpp"

using namespace sluice::glue;

namespace {

// True when `words` appear in argv consecutively.
bool has_seq(const std::vector<std::string>& argv, std::initializer_list<std::string> words) {
  std::vector<std::string> w(words);
  return std::search(argv.begin(), argv.end(), w.begin(), w.end()) != argv.end();
}

size_t index_of(const std::vector<std::string>& argv, std::initializer_list<std::string> words) {
  std::vector<std::string> w(words);
  return static_cast<size_t>(std::search(argv.begin(), argv.end(), w.begin(), w.end()) - argv.begin());
}

JailSpec spec() {
  JailSpec s;
  s.command = {"npm", "install"};
  s.cwd = "/home/u/proj";
  s.home = "/home/u";
  s.denied_reads = {"/home/u/.ssh", "/home/u/.netrc", "/home/u/.aws"};
  s.denied_writes = default_denied_writes();
  s.socket_host_path = "/run/user/1000/sluice-run-x/proxy.sock";
  s.runtime_dir = "/run/user/1000/sluice-run-x";
  s.sluice_binary = "/usr/bin/sluice";
  s.env = {{"HTTP_PROXY", "http://127.0.0.1:3128"}};
  return s;
}

PathProbe fs(std::map<std::string, PathKind> tree) {
  return [tree](const std::string& p) {
    auto it = tree.find(p);
    return it == tree.end() ? PathKind::Missing : it->second;
  };
}

}  // namespace

TEST_CASE("bwrap plan: isolation flags, read-only root, writable cwd, the socket and nothing else") {
  auto plan = build_bwrap_plan(spec(), fs({{"/home/u/proj", PathKind::Dir}}), "/empty");
  const auto& a = plan.argv;
  REQUIRE(a.front() == "bwrap");
  for (auto flag :
       {"--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session", "--as-pid-1"})
    CHECK(std::find(a.begin(), a.end(), flag) != a.end());
  CHECK(has_seq(a, {"--cap-drop", "ALL"}));
  CHECK(has_seq(a, {"--ro-bind", "/", "/"}));
  CHECK(has_seq(a, {"--bind", "/home/u/proj", "/home/u/proj"}));
  CHECK(has_seq(a, {"--tmpfs", "/tmp"}));
  CHECK(has_seq(a, {"--tmpfs", "/run"}));
  CHECK(has_seq(a, {"--dev", "/dev"}));
  CHECK(has_seq(a, {"--proc", "/proc"}));
  CHECK(has_seq(a, {"--bind", "/run/user/1000/sluice-run-x/proxy.sock", "/run/sluice/proxy.sock"}));
  CHECK(has_seq(a, {"--chdir", "/home/u/proj"}));
  CHECK(has_seq(a, {"--setenv", "HTTP_PROXY", "http://127.0.0.1:3128"}));
  // The binary is seen at a fixed path inside: its host path may be hidden (e.g. under /tmp).
  CHECK(has_seq(a, {"--ro-bind", "/usr/bin/sluice", "/run/sluice/sluice"}));
  CHECK(index_of(a, {"--tmpfs", "/run"}) < index_of(a, {"--ro-bind", "/usr/bin/sluice", "/run/sluice/sluice"}));
  CHECK(has_seq(a, {"--", "/run/sluice/sluice", "jail-init", "--socket", "/run/sluice/proxy.sock", "--port", "3128",
                    "--", "npm", "install"}));
  // The read-only root comes first; later mounts refine it.
  CHECK(index_of(a, {"--ro-bind", "/", "/"}) < index_of(a, {"--bind", "/home/u/proj", "/home/u/proj"}));
}

TEST_CASE("bwrap plan: the proxy's hand-over channels are named to jail-init") {
  JailSpec sp = spec();
  sp.channel_fds = {4, 5};
  auto plan = build_bwrap_plan(sp, fs({}), "/empty");
  CHECK(has_seq(plan.argv, {"jail-init", "--socket", "/run/sluice/proxy.sock", "--port", "3128", "--channel-fd", "4",
                            "--channel-fd", "5", "--", "npm", "install"}));
}

TEST_CASE("bwrap plan: transparent mode adds CAP_NET_ADMIN for jail-init, the stub's resolv.conf and socket") {
  JailSpec sp = spec();
  const auto plain = build_bwrap_plan(sp, fs({}), "/empty").argv;
  CHECK(std::find(plain.begin(), plain.end(), "CAP_NET_ADMIN") == plain.end());
  CHECK(std::find(plain.begin(), plain.end(), "/etc/resolv.conf") == plain.end());
  sp.transparent.on = true;
  sp.transparent.resolv_conf_host_path = "/run/user/1000/sluice-run-x/resolv.conf";
  sp.transparent.dns_socket_host_path = "/run/user/1000/sluice-run-x/dns.sock";
  sp.transparent.fake_ipv4 = "198.18.0.0/15";
  sp.transparent.fake_ipv6 = "fd73:6c75:6963:6500::/64";
  auto a = build_bwrap_plan(sp, fs({}), "/empty").argv;
  // Dropped first, then the one capability added back (bwrap applies them in order).
  CHECK(index_of(a, {"--cap-drop", "ALL"}) < index_of(a, {"--cap-add", "CAP_NET_ADMIN"}));
  CHECK(has_seq(a, {"--ro-bind", "/run/user/1000/sluice-run-x/resolv.conf", "/etc/resolv.conf"}));
  CHECK(has_seq(a, {"--bind", "/run/user/1000/sluice-run-x/dns.sock", "/run/sluice/dns.sock"}));
  CHECK(has_seq(a, {"jail-init", "--socket", "/run/sluice/proxy.sock", "--port", "3128", "--transparent",
                    "--dns-socket", "/run/sluice/dns.sock", "--fake-ipv4", "198.18.0.0/15", "--fake-ipv6",
                    "fd73:6c75:6963:6500::/64", "--", "npm", "install"}));
}

TEST_CASE("bwrap plan: denied reads hide what exists, skip what does not") {
  auto plan =
      build_bwrap_plan(spec(), fs({{"/home/u/.ssh", PathKind::Dir}, {"/home/u/.netrc", PathKind::File}}), "/empty");
  CHECK(has_seq(plan.argv, {"--tmpfs", "/home/u/.ssh"}));
  CHECK(has_seq(plan.argv, {"--ro-bind", "/dev/null", "/home/u/.netrc"}));
  CHECK(std::find(plan.argv.begin(), plan.argv.end(), "/home/u/.aws") == plan.argv.end());
}

TEST_CASE("bwrap plan: write-denied names, existing and not yet existing") {
  auto plan = build_bwrap_plan(spec(),
                               fs({{"/home/u/proj", PathKind::Dir},
                                   {"/home/u/proj/.git", PathKind::Dir},
                                   {"/home/u/proj/.git/config", PathKind::File},
                                   {"/home/u/proj/.bashrc", PathKind::File}}),
                               "/empty");
  const auto& a = plan.argv;
  CHECK(has_seq(a, {"--ro-bind", "/home/u/proj/.git/config", "/home/u/proj/.git/config"}));
  CHECK(has_seq(a, {"--ro-bind", "/home/u/proj/.bashrc", "/home/u/proj/.bashrc"}));
  // Missing: held by a read-only placeholder, recorded for removal.
  CHECK(has_seq(a, {"--ro-bind", "/empty", "/home/u/proj/.git/hooks"}));
  CHECK(has_seq(a, {"--ro-bind", "/dev/null", "/home/u/proj/.zshrc"}));
  CHECK(has_seq(a, {"--ro-bind", "/empty", "/home/u/proj/.vscode"}));
  auto& ph = plan.placeholders;
  CHECK(std::find(ph.begin(), ph.end(), "/home/u/proj/.git/hooks") != ph.end());
  CHECK(std::find(ph.begin(), ph.end(), "/home/u/proj/.zshrc") != ph.end());
  CHECK(std::find(ph.begin(), ph.end(), "/home/u/proj/.bashrc") == ph.end());  // it exists: not ours to remove
}

TEST_CASE("bwrap plan: never invents a .git") {
  auto plan = build_bwrap_plan(spec(), fs({{"/home/u/proj", PathKind::Dir}}), "/empty");
  // The plan is a real one (the project is bound), and nothing in it names a .git inside.
  REQUIRE(has_seq(plan.argv, {"--bind", "/home/u/proj", "/home/u/proj"}));
  for (const auto& w : plan.argv) CHECK(w.find("/.git/") == std::string::npos);
}

TEST_CASE("bwrap plan: a runtime dir outside /tmp and /run is hidden") {
  JailSpec s = spec();
  s.runtime_dir = "/var/tmp/sluice-run-y";
  s.socket_host_path = "/var/tmp/sluice-run-y/proxy.sock";
  auto plan = build_bwrap_plan(s, fs({}), "/empty");
  CHECK(has_seq(plan.argv, {"--tmpfs", "/var/tmp/sluice-run-y"}));
  auto under_run = build_bwrap_plan(spec(), fs({}), "/empty");
  CHECK_FALSE(has_seq(under_run.argv, {"--tmpfs", "/run/user/1000/sluice-run-x"}));
}

TEST_CASE("proxy environment: every variable points at the bridge") {
  auto env = proxy_environment(3128, "/usr/bin/sluice");
  std::map<std::string, std::string> m(env.begin(), env.end());
  for (auto k : {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "GRPC_PROXY",
                 "npm_config_proxy", "npm_config_https_proxy", "PIP_PROXY", "DOCKER_HTTP_PROXY", "DOCKER_HTTPS_PROXY"})
    CHECK(m[k] == "http://127.0.0.1:3128");
  CHECK(m["NO_PROXY"] == "localhost,127.0.0.1,::1");
  CHECK(m["SLUICE_SANDBOX"] == "1");
  CHECK(m["GIT_SSH_COMMAND"] == "ssh -o ProxyCommand='/usr/bin/sluice connect --proxy socks5h://127.0.0.1:3128 %h %p'");
}

TEST_CASE("shell quoting for --dry-run") {
  CHECK(shell_quote("plain/path-1.0") == "plain/path-1.0");
  CHECK(shell_quote("") == "''");
  CHECK(shell_quote("a b") == "'a b'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
}
