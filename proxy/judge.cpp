#include "proxy/judge.hpp"

#include "proxy/decision_log.hpp"
#include "proxy/json.hpp"
#include "proxy/metrics.hpp"

namespace sluice::proxy {

SessionJudge::SessionJudge(WorkerContext& worker, const ClientInfo& client, const rules::Policy* policy,
                           std::shared_ptr<rules::WorkerRules> rules, const rules::Remembered* remembered)
    : worker_(worker), client_(client), policy_(policy), rules_(std::move(rules)), remembered_(remembered) {}

SessionJudge::~SessionJudge() = default;

rules::ConnectionJudge& SessionJudge::judge(std::string_view kind) {
  if (!judge_) {
    rules::ConnectionFacts f;
    f.id = client_.id;
    f.kind = std::string(kind);
    f.listener = client_.listener->name;
    f.peer_known = client_.peer.known;
    f.pid = client_.peer.pid;
    f.uid = client_.peer.uid;
    f.gid = client_.peer.gid;
    f.client = client_.addr;
    judge_ = rules::make_judge(*policy_, rules_.get(), std::move(f));
    judge_->set_remembered(remembered_);
    judge_->set_overlay(client_.listener->overlay.get());
  }
  return *judge_;
}

rules::Verdict SessionJudge::connect(std::string_view kind, const rules::CanonicalHost& host, uint16_t port,
                                     bool can_inspect) {
  if (policy_ == nullptr) return rules::Verdict::of(rules::Action::Deny, rules::Reason::NoPolicy, "default", "");
  rules::Verdict v = judge(kind).judge_connect(host, port, can_inspect);
  report(v);
  return v;
}

rules::Verdict SessionJudge::request(const rules::CanonicalHost& host, uint16_t port, const rules::RequestFacts& r,
                                     std::vector<rules::HeaderEdit>* edits) {
  if (policy_ == nullptr) return rules::Verdict::of(rules::Action::Deny, rules::Reason::NoPolicy, "default", "");
  rules::Verdict v = judge("http").judge_request(host, port, r, edits);
  report(v);
  return v;
}

rules::Verdict SessionJudge::answered(const rules::CanonicalHost& host, uint16_t port, const rules::Verdict& human,
                                      const rules::RequestFacts* r, std::vector<rules::HeaderEdit>* edits) {
  if (policy_ == nullptr) return human;
  rules::Verdict v = judge(r ? "http" : "connect").answered(host, port, human, r, edits);
  report(v);
  return v;
}

std::optional<rules::Verdict> SessionJudge::resolved(const std::vector<rules::IpAddr>& addrs) {
  if (!judge_) return std::nullopt;
  auto v = judge_->judge_resolved(addrs);
  if (v) report(*v);
  return v;
}

void SessionJudge::close(uint64_t bytes_up, uint64_t bytes_down, uint64_t requests, const rules::Verdict* last) {
  if (!judge_) return;
  rules::CloseStats stats;
  stats.bytes_up = bytes_up;
  stats.bytes_down = bytes_down;
  stats.duration_ms = uv_now(worker_.loop()) - client_.started_ms;
  stats.requests = requests;
  if (last != nullptr && last->reason != rules::Reason::None) stats.verdict = rules::to_string(last->action);
  for (const auto& e : judge_->close(stats)) log_lua_error("", "on_close", e);
}

void SessionJudge::report(const rules::Verdict& v) {
  if (!v.error.empty()) log_lua_error(v.rule, v.hook, v.error);
}

void SessionJudge::log_lua_error(const std::string& script, const std::string& hook, const std::string& error) {
  ++worker_.metrics().lua_errors;
  if (error.find("instruction budget of") != std::string::npos) ++worker_.metrics().lua_budget_hits;
  if (!worker_.log().wanted()) return;
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "lua-error").num("conn", static_cast<int64_t>(client_.id));
  j.str("listener", client_.listener->name);
  if (policy_ != nullptr) j.str("policy", policy_->name);
  if (!script.empty()) j.str("script", script);
  j.str("hook", hook).str("error", error);
  worker_.log().write(j.done());
}

}  // namespace sluice::proxy
