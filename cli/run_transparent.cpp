#include "cli/run_transparent.hpp"

#include "sandbox-glue/nft_rules.hpp"
#include "sandbox-glue/transparent_target.hpp"

namespace sluice::cli {

std::string transparent_dry_run_text() {
  std::string out;
  out += "# nft -f - (in the jail's network namespace, before CMD starts)\n";
  out += glue::nft_ruleset(glue::TransparentRules{});
  if (out.back() != '\n') out += '\n';
  out += "# routes (a redirect needs a route to rewrite)\n";
  out += "ip route add default dev lo src 127.0.0.1\n";
  out += "ip -6 route add default dev lo src ::1\n";
  out += "# /etc/resolv.conf in the jail\n";
  out += glue::transparent_resolv_conf();
  return out;
}

std::string transparent_unavailable_message() {
  return "--transparent: capturing connections inside the jail is not built yet (issue 16); "
         "`--dry-run --transparent` prints what it would install";
}

}  // namespace sluice::cli
