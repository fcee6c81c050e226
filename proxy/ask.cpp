#include "proxy/ask.hpp"

#include <uv.h>

#include "proxy/decision_log.hpp"
#include "proxy/json.hpp"

namespace sluice::proxy {

namespace {

uint64_t steady_ms() { return uv_hrtime() / 1000000; }

std::string peer_json(const PeerCred& p) {
  JsonLine j;
  j.num("pid", p.pid).num("uid", p.uid).num("gid", p.gid);
  return j.done();
}

}  // namespace

std::string AskBroker::key(const std::string& policy, const std::string& host, uint16_t port) {
  return policy + '\0' + host + ':' + std::to_string(port);
}

uint64_t AskBroker::join(const AskRequest& r, Deliver deliver, uint64_t* question) {
  std::function<void()> changed;
  uint64_t ticket = 0;
  std::optional<AskAnswer> remembered;
  bool opened = false;
  Question opened_q;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      remembered = AskAnswer{rules::Action::Deny, rules::Remember::Once, "closed"};
    } else if (const rules::RememberedAnswer* a = remembered_->find(r.policy, r.host, r.port)) {
      remembered = AskAnswer{a->action, a->scope, "remembered"};
    } else {
      std::string k = key(r.policy, r.host, r.port);
      auto it = open_.find(k);
      if (it == open_.end()) {
        Open o;
        o.q.id = next_id_++;
        o.q.policy = r.policy;
        o.q.host = r.host;
        o.q.port = r.port;
        o.q.since = DecisionLog::now_iso8601();
        o.q.since_ms = steady_ms();
        o.q.first_conn = r.conn;
        o.q.first_client = r.client;
        o.q.first_peer = r.peer;
        by_id_[o.q.id] = k;
        it = open_.emplace(k, std::move(o)).first;
        opened = true;
        questions_total_.fetch_add(1, std::memory_order_relaxed);
      }
      Open& o = it->second;
      auto add_unique = [](std::vector<std::string>& v, const std::string& s) {
        for (const auto& x : v)
          if (x == s) return;
        v.push_back(s);
      };
      add_unique(o.q.listeners, r.listener);
      add_unique(o.q.kinds, r.kind);
      ticket = next_ticket_++;
      o.waiters.push_back(Waiter{ticket, std::move(deliver)});
      o.q.waiting = o.waiters.size();
      tickets_[ticket] = o.q.id;
      if (question != nullptr) *question = o.q.id;
      if (opened) opened_q = o.q;
      changed = pending_changed_;
      // Written before the lock is let go: the question is answerable from then on, and its
      // "ask" line must reach the event stream before any "answer" line for it.
      if (opened) {
        JsonLine j;
        j.str("ts", opened_q.since).str("event", "ask").num("id", static_cast<int64_t>(opened_q.id));
        j.str("policy", opened_q.policy).str("listener", r.listener).str("kind", r.kind);
        j.str("host", opened_q.host).num("port", opened_q.port).num("conn", static_cast<int64_t>(r.conn));
        if (!r.client.empty()) j.str("client", r.client);
        if (r.peer.known) j.raw("peer", peer_json(r.peer));
        log_.write(j.done());
      }
    }
  }
  if (remembered) {
    deliver(*remembered);
    return 0;
  }
  if (changed) changed();
  return ticket;
}

void AskBroker::leave(uint64_t ticket, bool timeout) {
  std::function<void()> changed;
  std::optional<Question> expired;
  {
    std::lock_guard lock(mu_);
    auto t = tickets_.find(ticket);
    if (t == tickets_.end()) return;
    uint64_t id = t->second;
    tickets_.erase(t);
    auto k = by_id_.find(id);
    if (k == by_id_.end()) return;
    auto it = open_.find(k->second);
    if (it == open_.end()) return;
    auto& ws = it->second.waiters;
    for (auto w = ws.begin(); w != ws.end(); ++w) {
      if (w->ticket != ticket) continue;
      ws.erase(w);
      break;
    }
    it->second.q.waiting = ws.size();
    if (ws.empty()) {
      expired = it->second.q;
      by_id_.erase(k);
      open_.erase(it);
      if (timeout) ++answers_["deny|once|timeout"];
    }
    changed = pending_changed_;
  }
  if (expired) publish_expired(*expired, timeout);
  if (changed) changed();
}

std::vector<Question> AskBroker::pending() const {
  std::lock_guard lock(mu_);
  std::vector<Question> out;
  for (const auto& [id, k] : by_id_) out.push_back(open_.at(k).q);  // by id: oldest first
  return out;
}

std::optional<Question> AskBroker::find(uint64_t id) const {
  std::lock_guard lock(mu_);
  auto k = by_id_.find(id);
  if (k == by_id_.end()) return std::nullopt;
  return open_.at(k->second).q;
}

size_t AskBroker::pending_count() const {
  std::lock_guard lock(mu_);
  return open_.size();
}

std::optional<Question> AskBroker::answer(uint64_t id, const AskAnswer& a) {
  std::vector<Waiter> waiters;
  Question q;
  std::function<void()> pending_changed, remembered_changed;
  {
    std::lock_guard lock(mu_);
    auto k = by_id_.find(id);
    if (k == by_id_.end()) return std::nullopt;
    auto it = open_.find(k->second);
    q = it->second.q;
    waiters = std::move(it->second.waiters);
    for (const auto& w : waiters) tickets_.erase(w.ticket);
    open_.erase(it);
    by_id_.erase(k);
    if (a.remember != rules::Remember::Once) {
      // Copy on write: snapshots handed out earlier stay as they were.
      auto next = std::make_shared<rules::Remembered>(*remembered_);
      next->put(rules::RememberedAnswer{q.policy, q.host, q.port, a.action, a.remember, DecisionLog::now_iso8601()});
      remembered_ = std::move(next);
      remembered_changed = remembered_changed_;
    }
    ++answers_[std::string(rules::to_string(a.action)) + "|" + rules::to_string(a.remember) + "|" + a.by];
    pending_changed = pending_changed_;
  }
  q.waiting = waiters.size();
  publish_answer(q, a, a.by.c_str());
  AskAnswer delivered = a;
  delivered.question = q.id;
  for (auto& w : waiters) w.deliver(delivered);
  if (remembered_changed) remembered_changed();
  if (pending_changed) pending_changed();
  return q;
}

std::shared_ptr<const rules::Remembered> AskBroker::remembered() const {
  std::lock_guard lock(mu_);
  return remembered_;
}

void AskBroker::load_remembered(const std::vector<rules::RememberedAnswer>& answers) {
  std::lock_guard lock(mu_);
  auto next = std::make_shared<rules::Remembered>(*remembered_);
  for (const auto& a : answers) next->put(a);
  remembered_ = std::move(next);
}

std::vector<rules::RememberedAnswer> AskBroker::forget(const rules::HostPattern& pattern, const std::string& policy) {
  std::vector<rules::RememberedAnswer> removed;
  std::function<void()> changed;
  {
    std::lock_guard lock(mu_);
    auto next = std::make_shared<rules::Remembered>(*remembered_);
    removed = next->forget(pattern, policy);
    if (removed.empty()) return removed;
    remembered_ = std::move(next);
    changed = remembered_changed_;
  }
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "forget").str("pattern", pattern.source);
  if (!policy.empty()) j.str("policy", policy);
  j.num("removed", static_cast<int64_t>(removed.size()));
  log_.write(j.done());
  if (changed) changed();
  return removed;
}

void AskBroker::on_pending_changed(std::function<void()> f) {
  std::lock_guard lock(mu_);
  pending_changed_ = std::move(f);
}

void AskBroker::on_remembered_changed(std::function<void()> f) {
  std::lock_guard lock(mu_);
  remembered_changed_ = std::move(f);
}

std::vector<std::pair<std::string, uint64_t>> AskBroker::answer_counts() const {
  std::lock_guard lock(mu_);
  return {answers_.begin(), answers_.end()};
}

void AskBroker::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  open_.clear();
  by_id_.clear();
  tickets_.clear();
  pending_changed_ = nullptr;
  remembered_changed_ = nullptr;
}

void AskBroker::publish_answer(const Question& q, const AskAnswer& a, const char* by) {
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "answer").num("id", static_cast<int64_t>(q.id));
  j.str("policy", q.policy).str("host", q.host).num("port", q.port);
  j.str("verdict", rules::to_string(a.action)).str("remember", rules::to_string(a.remember)).str("by", by);
  j.num("released", static_cast<int64_t>(q.waiting));
  j.num("waited_ms", static_cast<int64_t>(steady_ms() - q.since_ms));
  log_.write(j.done());
}

void AskBroker::publish_expired(const Question& q, bool timeout) {
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "ask-expired").num("id", static_cast<int64_t>(q.id));
  j.str("policy", q.policy).str("host", q.host).num("port", q.port);
  j.str("reason", timeout ? "timeout" : "gone");
  j.num("waited_ms", static_cast<int64_t>(steady_ms() - q.since_ms));
  log_.write(j.done());
}

}  // namespace sluice::proxy
