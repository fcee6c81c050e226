#include "sandbox-glue/nft_rules.hpp"

#include <cerrno>
#include <cstring>

namespace sluice::glue {

std::string nft_ruleset(const TransparentRules& r) {
  const std::string tcp = std::to_string(r.tcp_port), dns = std::to_string(r.dns_port);
  std::string out;
  out += "table inet sluice {\n";
  for (const char* c : {"udp_dropped", "icmp_dropped", "other_dropped"})
    out += "\tcounter " + std::string(c) + " {\n\t}\n";
  // NAT first (priority -100), so the filter below sees the rewritten destination.
  out += "\tchain to_bridge {\n";
  out += "\t\ttype nat hook output priority -100; policy accept;\n";
  // DNS first, to any address including the jail's own 127.0.0.1:53 (resolv.conf's
  // nameserver): every query lands in the stub, none leaves the jail.
  out += "\t\tudp dport 53 redirect to :" + dns + "\n";
  out += "\t\ttcp dport 53 redirect to :" + dns + "\n";
  out += "\t\tip daddr 127.0.0.0/8 return\n";
  out += "\t\tip6 daddr ::1 return\n";
  out += "\t\tmeta l4proto tcp redirect to :" + tcp + "\n";
  out += "\t}\n";
  // Whatever still leaves loopback after the redirects is dropped: UDP (QUIC too, so
  // clients fall back to TCP), ICMP, raw IP. Counted per kind for the log.
  out += "\tchain outbound {\n";
  out += "\t\ttype filter hook output priority 0; policy drop;\n";
  out += "\t\tip daddr 127.0.0.0/8 accept\n";
  out += "\t\tip6 daddr ::1 accept\n";
  out += "\t\tmeta l4proto udp counter name \"udp_dropped\" drop\n";
  out += "\t\tmeta l4proto { icmp, ipv6-icmp } counter name \"icmp_dropped\" drop\n";
  out += "\t\tcounter name \"other_dropped\" drop\n";
  out += "\t}\n";
  out += "}\n";
  return out;
}

std::string nft_failure_message(int exec_errno, int exit_status, std::string_view err) {
  const std::string head = "sluice run --transparent: cannot install the packet rules in the jail: ";
  auto has = [&](std::string_view s) { return err.find(s) != std::string_view::npos; };
  if (exec_errno == ENOENT)
    return head + "the nft program is not installed (Debian package nftables); transparent mode needs it";
  if (exec_errno != 0) return head + "cannot start nft: " + std::strerror(exec_errno);
  if (has("Operation not permitted") || has("Permission denied"))
    return head + "the kernel refused nftables in an unprivileged user namespace (" +
           std::string(err.substr(0, err.find('\n'))) +
           "). Check the sysctls kernel.unprivileged_userns_clone=1 and user.max_user_namespaces>0, and on Ubuntu "
           "the AppArmor setting kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile allowing "
           "userns for sluice). sluice does not fall back to the non-transparent jail";
  if (has("Protocol not supported") || has("Address family not supported"))
    return head +
           "this kernel has no nf_tables support (CONFIG_NF_TABLES, module nf_tables); transparent mode "
           "needs it. sluice does not fall back to the non-transparent jail";
  if (has("No such file or directory") || has("Could not process rule"))
    return head + "this kernel lacks NAT for nftables (modules nf_nat, nft_chain_nat, nft_redir, nft_ct: " +
           std::string(err.substr(0, err.find('\n'))) + "). sluice does not fall back to the non-transparent jail";
  std::string first = std::string(err.substr(0, err.find('\n')));
  return head + "nft exited with status " + std::to_string(exit_status) + (first.empty() ? "" : ": " + first) +
         ". sluice does not fall back to the non-transparent jail";
}

std::string jail_failure_message(bool transparent) {
  std::string m =
      "sluice run: bubblewrap could not build the jail (see its message above); it needs unprivileged user and "
      "network namespaces: check the sysctls kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0 and "
      "user.max_net_namespaces>0, and on Ubuntu the AppArmor setting kernel.apparmor_restrict_unprivileged_userns=0 "
      "(or an AppArmor profile allowing userns for bwrap)";
  if (transparent)
    m += "; --transparent programs its packet rules in that namespace, and sluice does not fall back to the "
         "non-transparent jail";
  return m;
}

}  // namespace sluice::glue
