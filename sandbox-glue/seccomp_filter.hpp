// The seccomp filter applied to the jailed command (never to the bridge).
#pragma once
#include <string>

namespace sluice::glue {

// Installs, for this process and its descendants: no_new_privs, and EPERM for
// socket(AF_UNIX, ...) (host sockets must stay out of reach) and for
// socket(AF_NETLINK, ..., NETLINK_NETFILTER) (the namespace's packet rules), ptrace,
// process_vm_readv/writev and pidfd_getfd (the unfiltered bridge must not be
// borrowed from), and io_uring_setup (io_uring can open sockets without
// passing through seccomp). Returns "" or an error line.
std::string apply_jail_seccomp();

}  // namespace sluice::glue
