// Transparent mode's packet rules inside the jail's network namespace (issue 16):
// every TCP connection, IPv4 and IPv6, to any address and port goes to the in-jail
// bridge's transparent listener; UDP and TCP to port 53 (any address, the jail's own
// loopback included) go to the DNS stub; all other UDP,
// ICMP and anything else leaving loopback is dropped and counted. Loopback traffic
// stays as it is (the bridge, the stub, and servers CMD runs for itself). Pure: the
// text for `nft -f -`, and the words for a refusal; installing them is jail-init's job.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::glue {

struct TransparentRules {
  uint16_t tcp_port = 3129;  // the bridge's transparent listener, on 127.0.0.1 and ::1
  // The stub, on 127.0.0.1 (UDP and TCP). Port 53 itself would need
  // CAP_NET_BIND_SERVICE in the bridge; the redirect makes it answer for every :53.
  uint16_t dns_port = 3053;
};

inline constexpr std::string_view kNftTable = "sluice";

// The rule set, one `table inet sluice`. A redirect needs a route to rewrite, so the
// namespace also needs default routes through lo with loopback sources
// (`default dev lo src 127.0.0.1`, `default dev lo src ::1`): see nft_routes_note.
std::string nft_ruleset(const TransparentRules& r);

// What to tell the user when installing the rules failed, before CMD starts:
// the cause and the setting involved. `exec_errno`: errno of starting nft (0 if it
// ran); `exit_status` and `stderr_text`: what it returned and printed.
std::string nft_failure_message(int exec_errno, int exit_status, std::string_view stderr_text);

// What `sluice run` says when bubblewrap could not build the jail at all (it printed its own
// reason before): almost always the kernel refusing an unprivileged user or network
// namespace, so the line names those settings; `transparent` adds that there is no fall-back.
std::string jail_failure_message(bool transparent);

}  // namespace sluice::glue
