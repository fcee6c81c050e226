// `sluice run --transparent` (issue 16): what the launcher adds to the jail in
// transparent mode: the dry run's text, and the DNS service the in-jail stub asks
// (sandbox-glue/transparent_bridge.hpp). The service holds the policy's DNS view
// (proxy/dns_answer.hpp: fake addresses for names the policy could allow or ask
// about, NXDOMAIN and a `dns-denied` log line for denied ones) and the sandbox's
// fake-address map, outside the jail, next to the decision log.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "cli/control_client.hpp"
#include "rules/dns_verdict.hpp"
#include "rules/fake_ip.hpp"
#include "rules/policy.hpp"

namespace sluice::proxy {
class DecisionLog;
}

namespace sluice::cli {

// What `sluice run --dry-run --transparent` prints after the bwrap line: the nft
// rule set exactly as it would be fed to `nft -f -` inside the jail's network
// namespace, the routes, and the jail's /etc/resolv.conf, each under a `# ` header.
std::string transparent_dry_run_text();

// What the jail's packet rules dropped (nft counters udp_dropped, icmp_dropped,
// other_dropped), read after CMD ended: the launcher holds the jail's network (and user)
// namespace open from the moment bwrap reports its pid, so the counters outlive the jail.
struct DroppedCounts {
  uint64_t udp = 0, icmp = 0, other = 0;
};
class JailNamespaces {
 public:
  ~JailNamespaces() { close(); }
  void open(pid_t jail_pid);  // best effort; nothing held when the jail is already gone
  void close();
  // Runs `nft list counters table inet sluice` inside them (in a forked child: setns
  // needs a single-threaded process). Nullopt when that is not possible.
  std::optional<DroppedCounts> read_dropped() const;

 private:
  int user_ = -1, net_ = -1;
};
// Parses nft's listing of the three counters (their packets).
std::optional<DroppedCounts> parse_dropped_counters(const std::string& nft_output);
// The decision log's `transparent-dropped` line.
std::string dropped_log_line(const DroppedCounts& c);

// `sluice run --transparent --daemon`: the DNS verdicts of the sandbox's policy, asked of the
// daemon (GET /v1/sandboxes/NAME/dns-verdict, which logs its denials) once per name and kept
// for the life of the jail. Called on the DNS service's one thread: a daemon that does not
// answer within `timeout_ms` would hold up every other query, so it fails closed instead
// (NXDOMAIN, reason "daemon-unavailable") and says why on `errors` (nullptr: --quiet). Such a
// failure is not kept as the name's verdict, but for the next `backoff_ms` every question
// not yet answered fails at once: a stalled daemon costs one wait, not one per query.
class DaemonDnsVerdicts {
 public:
  DaemonDnsVerdicts(std::string control_socket, std::string sandbox, int timeout_ms, int backoff_ms, FILE* errors);
  rules::DnsVerdict operator()(const rules::CanonicalHost& host);
  size_t asked() const { return asked_; }  // requests sent (tests: the cache holds)

 private:
  std::string socket_, sandbox_;
  int timeout_ms_, backoff_ms_;
  FILE* errors_;
  std::chrono::steady_clock::time_point failed_until_{};
  std::unique_ptr<ControlClient> client_;
  std::map<std::string, rules::DnsVerdict> known_;
  size_t asked_ = 0;
};

// The launcher's DNS service: a unix socket (bound into the jail, reached only by the
// bridge: CMD's seccomp filter refuses AF_UNIX) served by one thread. Each request is
// one length-prefixed frame: 'Q' and a DNS query, or 'C' and a name check for a
// redirected connection ("original looked-up-name|- claimed-name sni|host"); each reply
// is glue::stub_reply_frames(answer, mapping), the answer "ok"/"deny" for a check.
class TransparentDnsService {
 public:
  TransparentDnsService() = default;
  ~TransparentDnsService();
  TransparentDnsService(const TransparentDnsService&) = delete;
  TransparentDnsService& operator=(const TransparentDnsService&) = delete;

  // Listens on `path` (mode 0600); "" or an error line.
  std::string start(const std::string& path, std::shared_ptr<const rules::Policy> policy,
                    const rules::TransparentConfig& cfg, proxy::DecisionLog& log);
  // The same with the verdicts of a daemon's policy `policy_name`; the daemon logs the
  // denials, this one prints them on `denials` (nullptr: --quiet).
  using VerdictFn = std::function<rules::DnsVerdict(const rules::CanonicalHost&)>;
  std::string start(const std::string& path, VerdictFn verdict, std::string policy_name,
                    const rules::TransparentConfig& cfg, proxy::DecisionLog& log, FILE* denials);
  void stop();

 private:
  void serve();
  // A connection whose first bytes claim a name (TLS SNI, HTTP Host): refused
  // (host-mismatch, logged) when it was looked up as another name, or, on a real
  // address, when the policy could never allow the claimed name.
  bool check_claimed_name(const std::string& request);
  void denial(const std::string& line);

  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
  VerdictFn verdict_;
  std::string policy_name_;
  rules::TransparentConfig cfg_;
  proxy::DecisionLog* log_ = nullptr;
  FILE* denials_ = nullptr;  // daemon mode: the launcher's log prints nothing
};

}  // namespace sluice::cli
