// Reaching a judged target: resolve the name with the worker's resolver (IP
// literals skip it), drop what the resolved-address check refuses, then try each
// address that passed in turn, all under one connect_timeout. The caller gets a
// connected TCP handle, or one failure with its cause. Shared by every session kind.
// Between the check and the first connect, an optional gate (the rules' on_resolved)
// sees the addresses that passed and may refuse them.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <uv.h>

#include "proxy/resolver.hpp"
#include "proxy/base_aliases.hpp"
#include "proxy/worker_context.hpp"
#include "rules/config.hpp"
#include "rules/host.hpp"
#include "rules/policy.hpp"

namespace sluice::proxy {

class Dialer {
 public:
  enum class Failure { None, DnsFailed, AddressDenied, RefusedByRules, ConnectFailed, ConnectTimeout };

  struct Outcome {
    Failure failure = Failure::None;
    std::string error;          // one line: the resolver's error, or the last connect error
    int uv_error = 0;           // ConnectFailed: the last attempt's libuv error (UV_ECONNREFUSED, ...)
    std::string address_class;  // the class of the first resolved address dropped, if any
    std::string addr;           // the address dialed last, "ip:port"
    double dns_ms = -1;         // -1: not resolved (an IP literal)
    double connect_ms = -1;
    // What the gate answered, when it answered: the refusal (RefusedByRules), or an
    // allow the caller records (report mode, a script error under on_error: allow).
    std::optional<rules::Verdict> verdict;
    // Connected (Failure::None): the caller takes it and sets its data pointer.
    UvHandle<uv_tcp_t> stream{UvHandle<uv_tcp_t>::Empty{}};
  };
  // Runs once per dial(), possibly before dial() returns (IP literal refused, no address left).
  using Callback = std::function<void(Outcome&)>;
  using ResolvedGate = std::function<std::optional<rules::Verdict>(const std::vector<rules::IpAddr>&)>;

  Dialer(WorkerContext& worker, const rules::Config& config, const rules::Policy* policy);
  ~Dialer();
  Dialer(const Dialer&) = delete;
  Dialer& operator=(const Dialer&) = delete;

  void dial(const rules::CanonicalHost& host, uint16_t port, Callback done, ResolvedGate gate = {});
  // Abandons a dial in progress: no callback will run.
  void cancel();

 private:
  struct ConnectReq;
  void on_resolved(ResolveResult r);
  void connect_next();
  static void on_connect(uv_connect_t* req, int status);
  static void on_timeout(uv_timer_t* t);
  void finish(Failure f, std::string error);
  void fail_safely();

  WorkerContext& worker_;
  const rules::Config& config_;
  const rules::Policy* policy_;
  rules::CanonicalHost host_;
  uint16_t port_ = 0;
  Callback done_;
  ResolvedGate gate_;
  Outcome outcome_;
  std::vector<rules::IpAddr> candidates_;
  size_t next_ = 0;
  int attempt_ = 0;
  uint64_t connect_started_ns_ = 0;
  UvHandle<uv_tcp_t> trying_{UvHandle<uv_tcp_t>::Empty{}};
  UvHandle<uv_timer_t> timer_{UvHandle<uv_timer_t>::Empty{}};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // resolver callbacks hold it weakly
  bool resolving_ = false;
};

}  // namespace sluice::proxy
