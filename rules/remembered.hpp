// Answers to "ask" questions that are remembered: `session` ones until the
// process ends, `always` ones also in the state file. They overlay an Ask
// verdict only: deny entries, scripts and allow entries still decide first, so a
// remembered answer never widens what the policy itself settles.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/host.hpp"
#include "rules/pattern.hpp"
#include "rules/policy.hpp"
#include "rules/result.hpp"

namespace sluice::rules {

// How long an answer holds: this connection (and those sharing its question), this
// process, or for good.
enum class Remember { Once, Session, Always };
const char* to_string(Remember r);
std::optional<Remember> parse_remember(std::string_view s);

struct RememberedAnswer {
  std::string policy;
  std::string host;  // canonical text (CanonicalHost::text)
  uint16_t port = 0;
  Action action = Action::Deny;        // Allow or Deny
  Remember scope = Remember::Session;  // Session or Always
  std::string at;                      // when it was answered, ISO 8601 UTC
};

class Remembered {
 public:
  const RememberedAnswer* find(std::string_view policy, std::string_view host, uint16_t port) const;
  // Adds or replaces the answer for its policy, host and port.
  void put(RememberedAnswer a);
  // Removes every answer whose host:port `pattern` matches (in `policy`, or any when empty);
  // returns what was removed.
  std::vector<RememberedAnswer> forget(const HostPattern& pattern, std::string_view policy = {});
  // Sorted by policy, host, port.
  std::vector<RememberedAnswer> all() const;
  size_t size() const { return answers_.size(); }
  bool has_always() const;

  // The state file: a JSON object {"version": 1, "remembered": [...]} with the `always`
  // answers only. parse_state() accepts exactly what to_state_json() writes; `file` names
  // the file in errors.
  std::string to_state_json() const;
  static Result<std::vector<RememberedAnswer>> parse_state(std::string_view text, const std::string& file);

 private:
  static std::string key(std::string_view policy, std::string_view host, uint16_t port);
  std::map<std::string, RememberedAnswer> answers_;
};

// An Ask verdict answered by a remembered answer becomes Allow (reason "remembered-allow")
// or Deny ("remembered-deny"), with the scope as its rule; any other verdict is returned as it is.
// `host` is canonical text (CanonicalHost::text).
Verdict overlay_remembered(const Verdict& v, const Remembered* remembered, std::string_view host, uint16_t port);

}  // namespace sluice::rules
