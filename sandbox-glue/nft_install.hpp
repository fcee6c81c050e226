// Transparent mode (issue 16): jail-init installs the routes and the packet rules in
// the jail's network namespace, with the CAP_NET_ADMIN bwrap gave it, before CMD
// starts. Through the programs: `ip route add` for the two loopback default routes,
// then `nft -f -` fed nft_ruleset's text on stdin (the text --dry-run prints is
// exactly what runs; a refusal arrives as nft's own message).
#pragma once
#include <string>

#include "sandbox-glue/nft_rules.hpp"

namespace sluice::glue {

// Empty on success, else the one-line message to stop with (nft_failure_message's
// words for nft; the failing command for the routes).
std::string install_transparent_rules(const TransparentRules& r);

}  // namespace sluice::glue
