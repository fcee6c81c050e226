// Transparent mode (issue 16): jail-init holds CAP_NET_ADMIN (in the jail's own user
// namespace) only to install the packet rules; before CMD starts it gives up every
// capability for good.
#pragma once
#include <string>

namespace sluice::glue {

// Clears the ambient set, the bounding set (as far as CAP_SETPCAP allows), and the
// effective, permitted and inheritable sets, then sets no_new_privs, so neither this
// process nor anything it execs can regain a capability (no file capabilities, no
// setuid). Empty on success, else what failed; the caller must not start CMD then.
std::string drop_all_capabilities();

}  // namespace sluice::glue
