// The bubblewrap plan for a jail, against a described filesystem.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include "sandbox-glue/bwrap_args.hpp"
#include "sandbox-glue/proxy_env.hpp"
#include "sandbox-glue/trust_bundle.hpp"

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

TEST_CASE("bwrap plan: a trust bundle is bound over the system bundle and at its own path") {
  JailSpec s = spec();
  s.trust_bundle = "/run/user/1000/sluice-run-x/ca-bundle.crt";
  auto plan = build_bwrap_plan(s, fs({{kSystemTrustBundle, PathKind::File}}), "/empty");
  CHECK(has_seq(plan.argv, {"--ro-bind", s.trust_bundle, "/run/sluice/ca-bundle.crt"}));
  CHECK(has_seq(plan.argv, {"--ro-bind", s.trust_bundle, kSystemTrustBundle}));
  // After the fresh /run, or the tmpfs would hide it.
  CHECK(index_of(plan.argv, {"--tmpfs", "/run"}) < index_of(plan.argv, {"--ro-bind", s.trust_bundle}));
  // No system bundle on this host: only the bundle's own path (a bind onto nothing fails).
  auto bare = build_bwrap_plan(s, fs({}), "/empty");
  CHECK_FALSE(has_seq(bare.argv, {"--ro-bind", s.trust_bundle, kSystemTrustBundle}));
  // No inspection: nothing bound.
  auto none = build_bwrap_plan(spec(), fs({{kSystemTrustBundle, PathKind::File}}), "/empty");
  CHECK(std::find(none.argv.begin(), none.argv.end(), kSystemTrustBundle) == none.argv.end());
}

TEST_CASE("bwrap plan: real secrets are unset before the stand-ins are set") {
  JailSpec s = spec();
  s.unset_env = {"GITHUB_TOKEN", "GH_TOKEN"};
  s.env.emplace_back("GH_TOKEN", "ghp_standin");
  auto plan = build_bwrap_plan(s, fs({}), "/empty");
  CHECK(has_seq(plan.argv, {"--unsetenv", "GITHUB_TOKEN"}));
  CHECK(index_of(plan.argv, {"--unsetenv", "GH_TOKEN"}) < index_of(plan.argv, {"--setenv", "GH_TOKEN", "ghp_standin"}));
}

TEST_CASE("trust environment: every CA-file variable names the whole bundle") {
  auto env = trust_environment("/run/sluice/ca-bundle.crt");
  std::map<std::string, std::string> m(env.begin(), env.end());
  CHECK(m.size() == 10);
  for (auto k : {"SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
                 "PIP_CERT", "AWS_CA_BUNDLE", "CARGO_HTTP_CAINFO", "DENO_CERT", "NIX_SSL_CERT_FILE"})
    CHECK(m[k] == "/run/sluice/ca-bundle.crt");
}

TEST_CASE("trust bundle: the system roots then the CA, readable by all, never overwritten") {
  char dir[] = "/tmp/sluice-trust-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string roots = std::string(dir) + "/roots.pem", out = std::string(dir) + "/bundle.crt";
  FILE* f = std::fopen(roots.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs("ROOT-A\nROOT-B", f);  // no final newline: the CA must still start on its own line
  std::fclose(f);
  ::umask(077);
  CHECK(write_trust_bundle(out, "-----BEGIN CERTIFICATE-----\nCA\n", roots) == "");
  ::umask(022);
  std::string text;
  if (FILE* in = std::fopen(out.c_str(), "r")) {
    char buf[256];
    size_t n = std::fread(buf, 1, sizeof buf, in);
    text.assign(buf, n);
    std::fclose(in);
  }
  CHECK(text == "ROOT-A\nROOT-B\n# sluice inspection CA (this run)\n-----BEGIN CERTIFICATE-----\nCA\n");
  struct stat st {};
  REQUIRE(::stat(out.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  CHECK(write_trust_bundle(out, "x", roots).find("cannot write") == 0);  // O_EXCL
  CHECK(write_trust_bundle(std::string(dir) + "/b2.crt", "CA\n", std::string(dir) + "/missing") == "");
  ::unlink(out.c_str());
  ::unlink((std::string(dir) + "/b2.crt").c_str());
  ::unlink(roots.c_str());
  ::rmdir(dir);
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
