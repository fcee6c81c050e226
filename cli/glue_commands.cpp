// Small front ends over sandbox-glue: `sluice jail-init` (internal: the jail's
// init, started by `sluice run` inside bwrap) and `sluice connect`.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "rules/ip.hpp"
#include "sandbox-glue/connect_relay.hpp"
#include "sandbox-glue/jail_init.hpp"

namespace sluice::cli {

namespace {

int jail_init_main(const Args& a) {
  if (!a.has("--socket") || a.rest.empty() || !a.positional.empty()) {
    std::fprintf(
        stderr,
        "sluice jail-init: internal command of sluice run (--socket PATH --port N [--channel-fd FD]... -- CMD)\n");
    return 125;
  }
  std::vector<int> channel_fds;
  for (const auto& text : a.all("--channel-fd")) {
    int fd = std::atoi(text.c_str());
    if (fd < 3) {
      std::fprintf(stderr, "sluice jail-init: bad --channel-fd %s\n", text.c_str());
      return 125;
    }
    channel_fds.push_back(fd);
  }
  int port = std::atoi(a.one("--port", "3128").c_str());
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "sluice jail-init: bad --port\n");
    return 125;
  }
  glue::TransparentBridge transparent;
  if (a.has("--transparent")) {
    auto v4 = rules::Cidr::parse(a.one("--fake-ipv4", "198.18.0.0/15"));
    auto v6 = rules::Cidr::parse(a.one("--fake-ipv6", "fd73:6c75:6963:6500::/64"));
    if (!v4 || !v6 || !a.has("--dns-socket")) {
      std::fprintf(stderr, "sluice jail-init: --transparent needs --dns-socket and valid fake ranges\n");
      return 125;
    }
    transparent.on = true;
    transparent.proxy_socket = a.one("--socket");
    transparent.dns_socket = a.one("--dns-socket");
    transparent.fake_ipv4 = *v4;
    transparent.fake_ipv6 = *v6;
  }
  return glue::run_jail_init(a.one("--socket"), static_cast<uint16_t>(port), channel_fds, transparent, a.rest);
}

int connect_main(const Args& a) {
  if (a.positional.size() != 2) {
    std::fprintf(stderr, "sluice connect: expected HOST PORT (see sluice connect --help)\n");
    return 2;
  }
  std::string proxy_text = a.one("--proxy");
  for (const char* var : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"}) {
    if (!proxy_text.empty()) break;
    if (const char* v = std::getenv(var); v != nullptr) proxy_text = v;
  }
  if (proxy_text.empty()) {
    std::fprintf(stderr, "sluice connect: no proxy: give --proxy or set HTTPS_PROXY\n");
    return 2;
  }
  glue::ProxyAddress proxy;
  if (std::string err = glue::parse_proxy_address(proxy_text, proxy); !err.empty()) {
    std::fprintf(stderr, "sluice connect: %s\n", err.c_str());
    return 2;
  }
  int port = std::atoi(a.positional[1].c_str());
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "sluice connect: bad port '%s'\n", a.positional[1].c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a closed tunnel or stdout is an error to handle, not a death
  return glue::run_connect_relay(proxy, a.positional[0], static_cast<uint16_t>(port));
}

}  // namespace

Subcommand jail_init_command(CLI::App& root) {
  auto c = std::make_shared<Command>(root, "jail-init", "internal: the jail's init, started by sluice run");
  c->hidden()
      .usage_tail("-- CMD [ARGS...]")
      .value("--socket", "PATH", "the proxy's socket")
      .value("--port", "N", "the bridge's port in the jail (default 3128)")
      .value("--channel-fd", "FD", "a hand-over channel (repeatable)", true)
      .flag("--transparent", "install the packet rules, drop capabilities, start the stub (issue 16)")
      .value("--dns-socket", "PATH", "the launcher's DNS service (with --transparent)")
      .value("--fake-ipv4", "CIDR", "the fake IPv4 range (with --transparent)")
      .value("--fake-ipv6", "CIDR", "the fake IPv6 range (with --transparent)")
      .takes_rest();
  return {c, jail_init_main, 125};
}

Subcommand connect_command(CLI::App& root) {
  auto c = std::make_shared<Command>(root, "connect",
                                     "relay stdin/stdout through the proxy to HOST PORT (ssh ProxyCommand)");
  c->description(
       "Opens a tunnel to HOST:PORT through the proxy and relays it over stdin/stdout,\n"
       "for ssh: ssh -o ProxyCommand='sluice connect %h %p' HOST.")
      .positionals("HOST PORT", "the target")
      .value("--proxy", "URL",
             "http://[USER:PASS@]HOST:PORT   HTTP CONNECT\n"
             "socks5h://[USER:PASS@]HOST:PORT or socks5://...   SOCKS5\n"
             "  (names are always sent to the proxy to resolve)\n"
             "HOST:PORT or unix:PATH   whichever the listener offers: SOCKS5\n"
             "  when it answers the SOCKS5 greeting, else HTTP CONNECT")
      .footer(
          "Without --proxy it uses $HTTPS_PROXY, $https_proxy, $HTTP_PROXY, $http_proxy,\n"
          "$ALL_PROXY or $all_proxy. A refusal prints the proxy's reason (the HTTP status and\n"
          "reason line, or the SOCKS5 reply) and exits 1.");
  return {c, connect_main};
}

}  // namespace sluice::cli
