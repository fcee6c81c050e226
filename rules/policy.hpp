// A named policy: deny entries win, then the policy's Lua rules, then allow
// entries, then the default (deny, allow, or ask: a human decides, see
// proxy/ask.hpp). The whole order is applied by rules/judge.hpp; Policy::judge
// here is the list part alone (no scripts).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rules/gateway_credential.hpp"
#include "rules/git_guard.hpp"
#include "rules/host.hpp"
#include "rules/host_set.hpp"
#include "rules/path_entry.hpp"
#include "rules/reason.hpp"
#include "rules/upstream_proxy.hpp"

namespace sluice::rules {

// Ask: a human should decide; the connection waits for the answer (or the ask timeout).
enum class Action { Allow, Deny, Ask };
const char* to_string(Action a);

struct Verdict {
  Action action = Action::Deny;
  // Machine-readable code (rules/reason.hpp), sent to clients as X-Sluice-Reason on denial.
  Reason reason = Reason::None;
  std::string rule;     // the pattern as written, "default", or the script as written
  std::string policy;   // policy name
  std::string hook;     // the Lua hook that decided ("on_connect", ...), empty for list verdicts
  std::string message;  // text a script gave with {reason = ...}, shown to the client
  std::string error;    // "script.lua:12: message" when a script failed and on_error decided
  // Report mode: the policy would have refused (action was Deny or Ask); it is allowed.
  bool would_deny = false;
  // An allowed tunnel that sluice terminates (TLS inspection): each request inside is judged.
  bool inspect = false;
  bool allowed() const { return action == Action::Allow; }
  static Verdict of(Action action, Reason reason, std::string rule, std::string policy) {
    Verdict v;
    v.action = action;
    v.reason = reason;
    v.rule = std::move(rule);
    v.policy = std::move(policy);
    return v;
  }
};

// A rule script, read when the config is loaded so every worker compiles the same text.
struct ScriptSource {
  std::string name;  // as written in the config (relative to it): names the script in logs
  std::string path;  // the file actually read
  std::string text;
};

struct PolicyOverlay;

struct Policy {
  enum class Mode { Enforce, Report };
  std::string name;
  Action default_action = Action::Deny;
  HostSet allow;
  HostSet deny;
  // Path-scoped entries (rules/path_entry.hpp): they decide requests, never opaque tunnels.
  std::vector<PathEntry> allow_paths;
  std::vector<PathEntry> deny_paths;
  // TLS inspection: CONNECTs to these hosts are terminated and judged per request, unless
  // inspect_exclude matches (pinning clients). Hosts that path-scoped entries decide are
  // inspected too, when a CA is configured.
  HostSet inspect;
  HostSet inspect_exclude;
  // The credential gateway (`credentials:`): secrets the jail only has stand-ins for.
  std::vector<std::shared_ptr<const GatewayCredential>> credentials;
  // Opt-in: a SOCKS request for port 22 that this policy denies is answered "granted",
  // then sluice itself sends an SSH-2.0 disconnect carrying the denial reason, so ssh
  // and git print it. See docs/configuration.md for the trade-off.
  bool ssh_in_band_reason = false;
  std::vector<ScriptSource> rules;  // consulted in order after the deny entries
  Action on_error = Action::Deny;   // the verdict of a hook that failed (error, budget, memory)
  Mode mode = Mode::Enforce;        // Report: every would-deny is allowed and flagged
  // The policy's own parent proxy (`upstream_proxy:`); `direct_upstream` ("upstream_proxy:
  // direct") ignores the global one. Neither: the config's global parent, if any.
  std::shared_ptr<const UpstreamProxy> upstream_proxy;
  bool direct_upstream = false;
  // The git guard's rules (`git:`, rules/git_guard.hpp): smart-HTTP git to these hosts is
  // judged per repository and, for pushes, per ref command.
  std::vector<GitRule> git;

  // The lists and the default only (no scripts, no report mode). With `overlay` (a
  // sandbox's own entries) its deny entries join the deny list and its allow entries the
  // allow list.
  Verdict judge(const CanonicalHost& host, uint16_t port, const PolicyOverlay* overlay = nullptr) const;
  // Whether a tunnel to host:port would be inspected given a CA (`inspect` minus
  // `inspect_exclude`, plus hosts that path-scoped entries decide and hosts a `git:` rule
  // guards: the guard sees nothing through an opaque tunnel).
  bool inspects(const CanonicalHost& host, uint16_t port) const;
  // Whether a `git:` rule guards host:port's smart-HTTP git: port 443, or the port the rule's
  // host names (other ports, ssh to github.com:22, carry no git the guard could read).
  bool guards_git(const CanonicalHost& host, uint16_t port) const;
  bool inspects_anything() const {
    return !inspect.empty() || !allow_paths.empty() || !deny_paths.empty() || !git.empty();
  }
};

// A sandbox's own small additions to its named policy (POST /v1/sandboxes "overlay"). They
// are judged exactly like the policy's entries, in the same order: deny entries (the
// policy's and the overlay's) win, then the policy's Lua rules, then allow entries (either),
// then the policy's default. Host patterns only; the policy may change under it (a reload,
// a list replacement), the overlay stays with its sandbox until the sandbox is removed.
struct PolicyOverlay {
  HostSet allow;
  HostSet deny;
  // The first deny entry of the policy or the overlay that matches, or nullptr.
  static const HostPattern* match_deny(const Policy& p, const PolicyOverlay* o, const CanonicalHost& host,
                                       uint16_t port);
};

enum class PolicyList { Allow, Deny };
const char* to_string(PolicyList l);
// A copy of `p` with one list replaced by `entries`; everything else (the other list, the
// default, the options) is kept. For live list replacement, built off the worker loops.
std::shared_ptr<Policy> with_list(const Policy& p, PolicyList which, HostSet entries);

}  // namespace sluice::rules
