// What a jail looks like, independent of the mechanism that builds it.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice::glue {

// Paths under $HOME whose reads are denied by default: credentials and keys.
std::vector<std::string> default_denied_reads();
// Names that stay read-only even inside writable directories: things that run
// code later (hooks, shell rc files, editor and MCP configs).
std::vector<std::string> default_denied_writes();

struct JailSpec {
  std::vector<std::string> command;        // argv of CMD
  std::string cwd;                         // writable, bound at the same path
  std::string home;                        // $HOME on the host
  std::vector<std::string> writable;       // extra writable paths (--write)
  std::vector<std::string> denied_reads;   // absolute paths hidden from the jail
  std::vector<std::string> denied_writes;  // names relative to each writable dir
  std::string socket_host_path;            // the proxy's unix socket on the host
  std::string runtime_dir;                 // the launcher's private dir: never visible inside
  std::string socket_jail_path = "/run/sluice/proxy.sock";
  uint16_t bridge_port = 3128;
  // Descriptors (as numbered inside the jail) of the proxy's hand-over channels: the bridge
  // passes each accepted connection on one of them instead of relaying its bytes.
  std::vector<int> channel_fds;
  std::string sluice_binary;  // this binary on the host
  // Where the jail sees it (bound read-only there): the host path may be hidden inside, e.g.
  // under /tmp, which is a fresh tmpfs, or under a --deny-read directory.
  std::string sluice_jail_path = "/run/sluice/sluice";
  std::vector<std::pair<std::string, std::string>> env;  // set inside the jail
  std::vector<std::string> unset_env;                    // removed from what the jail inherits (real secrets)
  // TLS inspection: the host file with the system roots plus sluice's CA, bound read-only over
  // the system bundle and at trust_bundle_jail_path (sandbox-glue/trust_bundle.hpp). Empty: none.
  std::string trust_bundle;
  std::string trust_bundle_jail_path = "/run/sluice/ca-bundle.crt";
  // Transparent mode (issue 16): jail-init gets CAP_NET_ADMIN (in the jail's own namespaces)
  // to install the packet rules, then drops it before the bridge and CMD start.
  struct Transparent {
    bool on = false;
    std::string resolv_conf_host_path;  // the stub's resolv.conf, bound over /etc/resolv.conf
    std::string dns_socket_host_path;   // the launcher's DNS service for the stub
    std::string dns_socket_jail_path = "/run/sluice/dns.sock";
    std::string fake_ipv4, fake_ipv6;  // the fake ranges (CIDR text), for the bridge's mapping
  } transparent;
};

}  // namespace sluice::glue
