// The one place the data plane asks rules/ for a verdict, for every kind of
// connection (CONNECT, plain HTTP, SOCKS5). Each session owns a SessionJudge:
// it makes the connection's rules::ConnectionJudge at the first judgment (the
// whole order lives there: deny entries, Lua rules, allow entries, default) and
// logs what the scripts report. Four named points, the same for every kind:
//   connect()   before any upstream work (CONNECT, SOCKS, a plain-HTTP target)
//   request()   each plain-HTTP request (on_request; header edits)
//   resolved()  after DNS and the resolved-address check (the dialer calls it)
//   close()     when the connection ends (on_close)
// An Ask verdict (a policy's `default: ask`, a script's "ask") is settled first by the
// answers remembered in the config snapshot (rules/remembered.hpp); if none, the
// session asks a human (proxy/ask.hpp) and hands the answer to answered().
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "proxy/connection.hpp"
#include "rules/host.hpp"
#include "rules/judge.hpp"
#include "rules/policy.hpp"
#include "rules/remembered.hpp"
#include "rules/rule_engine.hpp"

namespace sluice::proxy {

class SessionJudge {
 public:
  // `policy` null: the listener has no policy, everything is denied. `rules` may be
  // null (no policy has rules). `client` belongs to the session and outlives this.
  // `remembered`: the config snapshot's remembered answers (may be null), which outlive this.
  SessionJudge(WorkerContext& worker, const ClientInfo& client, const rules::Policy* policy,
               std::shared_ptr<rules::WorkerRules> rules, const rules::Remembered* remembered = nullptr);
  ~SessionJudge();
  SessionJudge(const SessionJudge&) = delete;
  SessionJudge& operator=(const SessionJudge&) = delete;

  // `kind`: "connect", "http", "socks"; fixed by the first call.
  rules::Verdict connect(std::string_view kind, const rules::CanonicalHost& host, uint16_t port,
                         bool can_inspect = false);
  // Edits are appended to `edits`; apply them only when the verdict allows.
  rules::Verdict request(const rules::CanonicalHost& host, uint16_t port, const rules::RequestFacts& r,
                         std::vector<rules::HeaderEdit>* edits);
  // A human answered an Ask verdict for host:port with `human` (allow or deny): it stands
  // for this target for the rest of the connection; for a plain-HTTP request (`r` set)
  // an allow still goes through on_request (which may refuse or edit headers).
  rules::Verdict answered(const rules::CanonicalHost& host, uint16_t port, const rules::Verdict& human,
                          const rules::RequestFacts* r, std::vector<rules::HeaderEdit>* edits);
  // Empty: go on. A verdict: a refusal, or an allow to record (report mode, on_error allow).
  std::optional<rules::Verdict> resolved(const std::vector<rules::IpAddr>& addrs);
  // `last`: the connection's last verdict, if it was judged.
  void close(uint64_t bytes_up, uint64_t bytes_down, uint64_t requests, const rules::Verdict* last);

 private:
  rules::ConnectionJudge& judge(std::string_view kind);
  void report(const rules::Verdict& v);  // a script error behind a verdict goes to the log
  void log_lua_error(const std::string& script, const std::string& hook, const std::string& error);

  WorkerContext& worker_;
  const ClientInfo& client_;
  const rules::Policy* policy_;
  std::shared_ptr<rules::WorkerRules> rules_;
  const rules::Remembered* remembered_;
  std::unique_ptr<rules::ConnectionJudge> judge_;
};

}  // namespace sluice::proxy
