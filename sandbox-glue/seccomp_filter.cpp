#include "sandbox-glue/seccomp_filter.hpp"

#include <linux/netlink.h>
#include <seccomp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace sluice::glue {

std::string apply_jail_seccomp() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return "seccomp_init failed";
  std::string err;
  // 32-bit entry points must not be a way around the filter.
  for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    if (seccomp_arch_native() == SCMP_ARCH_X86_64) seccomp_arch_add(ctx, arch);
  }
  // The kernel reads socket()'s arguments as int: compare only the low 32 bits, or
  // socket(AF_UNIX | 1 << 32, ...) would pass the filter and still make a unix socket.
  constexpr scmp_datum_t kInt = 0xffffffff;
  int rc =
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, kInt, AF_UNIX));
  if (rc != 0) err = std::string("seccomp rule for socket: ") + std::strerror(-rc);
  // nftables and iptables talk NETLINK_NETFILTER: CMD may not change (or read) the
  // packet rules of its namespace, including transparent mode's.
  rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_MASKED_EQ, kInt, AF_NETLINK),
                        SCMP_A2(SCMP_CMP_MASKED_EQ, kInt, NETLINK_NETFILTER));
  if (rc != 0 && err.empty()) err = std::string("seccomp rule for netlink sockets: ") + std::strerror(-rc);
  for (const char* name : {"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "io_uring_setup"}) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: nothing to block
    if (int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0); r != 0 && err.empty())
      err = std::string("seccomp rule for ") + name + ": " + std::strerror(-r);
  }
  if (err.empty()) {
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
    if (int r = seccomp_load(ctx); r != 0) err = std::string("seccomp_load: ") + std::strerror(-r);
  }
  seccomp_release(ctx);
  return err;
}

}  // namespace sluice::glue
