// Questions for a human, and the answers remembered. A connection whose verdict
// is Ask joins the pending question for its policy and host:port (opening one if
// none is pending), so many connections asking the same thing share one
// question. An answer releases every connection waiting on it; `session` and
// `always` answers are remembered (the control plane puts them into each config
// snapshot, so later connections are answered on the worker without asking, and
// writes the `always` ones to the state file).
//
// Thread-safe, one mutex: joins come from worker threads, but only for Ask
// verdicts that no snapshot answered; answers come from the control API or the
// terminal. Delivery to a waiting connection is its own callback, which posts to
// the connection's worker loop.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proxy/connection.hpp"
#include "rules/policy.hpp"
#include "rules/remembered.hpp"

namespace sluice::proxy {

class DecisionLog;

struct AskRequest {
  std::string policy;
  std::string listener;  // the sandbox
  std::string kind;      // connect, http, socks
  std::string host;      // canonical
  uint16_t port = 0;
  uint64_t conn = 0;
  std::string client;
  PeerCred peer;
};

struct AskAnswer {
  rules::Action action = rules::Action::Deny;  // Allow or Deny
  rules::Remember remember = rules::Remember::Once;
  std::string by;         // "api", "terminal", or "remembered" (an answer given earlier)
  uint64_t question = 0;  // the question it answers (0: a remembered answer)
};

struct Question {
  uint64_t id = 0;
  std::string policy;
  std::string host;
  uint16_t port = 0;
  std::vector<std::string> listeners;  // each sandbox waiting, in order of asking
  std::vector<std::string> kinds;
  size_t waiting = 0;     // connections held
  std::string since;      // when it was first asked, ISO 8601
  uint64_t since_ms = 0;  // steady clock
  uint64_t first_conn = 0;
  std::string first_client;
  PeerCred first_peer;
};

class AskBroker {
 public:
  using Deliver = std::function<void(const AskAnswer&)>;

  explicit AskBroker(DecisionLog& log) : log_(log) {}

  // Whether anyone can answer (a control socket, or a terminal). When nobody can,
  // an Ask verdict is a denial at once ("ask-unavailable").
  void set_answerable(bool v) { answerable_.store(v, std::memory_order_relaxed); }
  bool answerable() const { return answerable_.load(std::memory_order_relaxed); }

  // Any thread. Joins (or opens) the question for r's policy and host:port and returns a
  // ticket for leave(). If the answer is remembered already (it came a moment before the
  // worker's snapshot had it), `deliver` runs before join returns and the ticket is 0.
  // `question` (optional) receives the question's id.
  uint64_t join(const AskRequest& r, Deliver deliver, uint64_t* question = nullptr);
  // The waiter gave up: `timeout` (its ask_timeout_ms passed) or the connection went away.
  // The question disappears with its last waiter.
  void leave(uint64_t ticket, bool timeout);

  std::vector<Question> pending() const;
  std::optional<Question> find(uint64_t id) const;
  size_t pending_count() const;
  // Answers question `id`: every waiter is released. Empty when there is no such
  // question (answered already, expired, or never asked).
  std::optional<Question> answer(uint64_t id, const AskAnswer& a);

  // The remembered answers (session and always).
  std::shared_ptr<const rules::Remembered> remembered() const;
  void load_remembered(const std::vector<rules::RememberedAnswer>& answers);
  std::vector<rules::RememberedAnswer> forget(const rules::HostPattern& pattern, const std::string& policy);

  // Runs (outside the lock, on the thread that made the change) when the set of pending
  // questions changes; `remembered_changed` when the remembered answers do.
  void on_pending_changed(std::function<void()> f);
  void on_remembered_changed(std::function<void()> f);

  uint64_t questions_total() const { return questions_total_.load(std::memory_order_relaxed); }
  std::vector<std::pair<std::string, uint64_t>> answer_counts() const;

  // At shutdown: forget every waiter without delivering (their workers are stopping).
  void close();

 private:
  struct Waiter {
    uint64_t ticket;
    Deliver deliver;
  };
  struct Open {
    Question q;
    std::vector<Waiter> waiters;
  };
  static std::string key(const std::string& policy, const std::string& host, uint16_t port);
  void publish_answer(const Question& q, const AskAnswer& a, const char* by);
  void publish_expired(const Question& q, bool timeout);

  DecisionLog& log_;
  std::atomic<bool> answerable_{false};
  std::atomic<uint64_t> questions_total_{0};
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  uint64_t next_ticket_ = 1;
  std::map<std::string, Open> open_;       // by key
  std::map<uint64_t, std::string> by_id_;  // question id -> key
  std::map<uint64_t, uint64_t> tickets_;   // ticket -> question id
  std::shared_ptr<rules::Remembered> remembered_ = std::make_shared<rules::Remembered>();
  std::map<std::string, uint64_t> answers_;  // "verdict|remember|by" -> count
  std::function<void()> pending_changed_;
  std::function<void()> remembered_changed_;
  bool closed_ = false;
};

}  // namespace sluice::proxy
