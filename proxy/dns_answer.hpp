// Transparent mode's resolver, the deciding half (issue 16): sluice, outside the
// jail, answers each query the jail's stub forwards. A name the policy could allow
// (or ask about) gets fake addresses from the sandbox's FakeIpMap; a name it denies
// does not exist (NXDOMAIN, logged `dns-denied`). No query ever goes to a real
// resolver, so DNS cannot carry data out of the jail. One DnsAnswerer per sandbox;
// not thread-safe (its owner serialises calls). Pure apart from the log's timestamp.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/dns_message.hpp"
#include "rules/dns_verdict.hpp"
#include "rules/fake_ip.hpp"
#include "rules/policy.hpp"

namespace sluice::proxy {

// Queries of types other than A and AAAA (TXT, NULL, ANY... the ones a tunnel would
// use), and malformed ones, draw from a token bucket; once it is empty they are
// answered REFUSED (malformed ones: not at all) until it refills.
struct DnsFloodLimit {
  double per_second = 10;
  double burst = 50;
  int64_t log_window_ms = 10000;  // a refusal kind is logged once per window, with a count
};

class DnsAnswerer {
 public:
  DnsAnswerer(const rules::TransparentConfig& cfg, std::string sandbox, DnsFloodLimit flood = {});

  struct Outcome {
    std::optional<std::string> reply;  // the answer to send; none: stay silent
    dns::Rcode rcode = dns::Rcode::NoError;
    std::vector<std::string> log;  // decision-log lines (JSON objects, no newline)
  };
  // `msg` is one DNS message as the stub received it; `now_ms` a monotonic clock.
  Outcome answer(const rules::Policy& policy, std::string_view msg, int64_t now_ms);
  // The same with the verdicts from elsewhere (`sluice run --daemon`: the daemon's policy,
  // asked over its control API); `policy_name` names it in the log lines.
  using VerdictFn = std::function<rules::DnsVerdict(const rules::CanonicalHost&)>;
  Outcome answer(const VerdictFn& verdict, std::string_view policy_name, std::string_view msg, int64_t now_ms);

  const rules::FakeIpMap& map() const { return map_; }

 private:
  // One refusal kind logged at most once per window; the next line says how many
  // were left unlogged since.
  struct Window {
    int64_t start = 0;
    bool open = false;
    uint64_t unlogged = 0;
  };
  bool take_token(int64_t now_ms);
  void note(Window& w, int64_t now_ms, Outcome& out, std::string line_without_count);

  rules::FakeIpMap map_;
  uint32_t ttl_s_;
  std::string sandbox_;
  DnsFloodLimit flood_;
  double tokens_;
  int64_t refilled_ms_ = 0;
  bool clock_started_ = false;
  Window flood_window_, full_window_;
};

}  // namespace sluice::proxy
