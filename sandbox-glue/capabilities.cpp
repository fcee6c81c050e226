#include "sandbox-glue/capabilities.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::glue {

std::string drop_all_capabilities() {
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return std::string("clearing the ambient capabilities: ") + std::strerror(errno);
  // The bounding set needs CAP_SETPCAP to shrink; without it, the cleared sets and
  // no_new_privs below are what keep capabilities gone (nothing exec'd can gain any).
  for (int cap = 0; cap <= 63; ++cap) {
    int in = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in < 0) break;  // past the kernel's last capability
    if (in == 1) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  }
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capset, &header, data) != 0)
    return std::string("clearing the capability sets: ") + std::strerror(errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return std::string("setting no_new_privs: ") + std::strerror(errno);
  return "";
}

}  // namespace sluice::glue
