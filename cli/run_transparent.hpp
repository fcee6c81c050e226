// `sluice run --transparent` (issue 16): what the launcher adds to the jail in
// transparent mode. Today only the dry run is built: the rule set, the routes and
// the resolver config the jail would get. A real run refuses before CMD starts
// (never a silent fall-back to the ordinary jail).
#pragma once
#include <string>

namespace sluice::cli {

// What `sluice run --dry-run --transparent` prints after the bwrap line: the nft
// rule set exactly as it would be fed to `nft -f -` inside the jail's network
// namespace, the routes, and the jail's /etc/resolv.conf, each under a `# ` header.
std::string transparent_dry_run_text();

// The one line a real `--transparent` run stops with while the in-jail capture is
// not built (exit status 125, before CMD starts).
std::string transparent_unavailable_message();

}  // namespace sluice::cli
