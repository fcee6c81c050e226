// Reaching a judged target: resolve the name with the worker's resolver (IP
// literals skip it), drop what the resolved-address check refuses, then try each
// address that passed in turn, all under one connect_timeout. The caller gets a
// connected TCP handle, or one failure with its cause. Shared by every session kind.
// Between the check and the first connect, an optional gate (the rules' on_resolved)
// sees the addresses that passed and may refuse them.
//
// With a parent proxy (rules::Config::upstream_for, not bypassed) the judged target is
// reached through the parent: a socks5 parent gets the address sluice resolved and
// checked; http and socks5h parents get the name (sluice cannot check what it never
// resolves; IP literals are still checked). The caller still gets one connected stream,
// already tunnelled, or one failure; a plain-HTTP forward through an http parent gets a
// plain connection to the parent and `forward_via()` tells it to speak absolute-form.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <uv.h>

#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/parent_proxy.hpp"
#include "proxy/resolver.hpp"
#include "proxy/worker_context.hpp"
#include "rules/config.hpp"
#include "rules/host.hpp"
#include "rules/policy.hpp"

namespace sluice::proxy {

class Dialer {
 public:
  enum class Failure {
    None,
    DnsFailed,
    AddressDenied,
    RefusedByRules,
    ConnectFailed,
    ConnectTimeout,
    ParentFailed,   // the parent proxy cannot be reached or refused the target (502 upstream-proxy-failed)
    ParentAuth,     // the parent refused sluice's credentials, e.g. 407 (502 upstream-proxy-auth)
    ParentTimeout,  // the parent did not finish within connect_timeout (504 upstream-proxy-timeout)
  };
  // Tunnel: the caller wants a byte stream to the target. Forward: plain HTTP requests
  // follow (an http parent then takes them in absolute-form, without CONNECT).
  enum class Use { Tunnel, Forward };

  struct Outcome {
    Failure failure = Failure::None;
    std::string error;          // one line: the resolver's error, or the last connect error
    int uv_error = 0;           // ConnectFailed: the last attempt's libuv error (UV_ECONNREFUSED, ...)
    std::string address_class;  // the class of the first resolved address dropped, if any
    std::string addr;           // the address dialed last, "ip:port" (the parent's, through one)
    std::string parent;         // the parent proxy used, "scheme://host:port" (never credentials)
    int parent_status = 0;      // an HTTP parent's status code for CONNECT
    double dns_ms = -1;         // -1: not resolved (an IP literal)
    double connect_ms = -1;
    // What the gate answered, when it answered: the refusal (RefusedByRules), or an
    // allow the caller records (report mode, a script error under on_error: allow).
    std::optional<rules::Verdict> verdict;
    // Connected (Failure::None): the caller takes it and sets its data pointer.
    UvHandle<AnyStream> stream{UvHandle<AnyStream>::Empty{}};
  };
  // Runs once per dial(), possibly before dial() returns (IP literal refused, no address left).
  using Callback = std::function<void(Outcome&)>;
  using ResolvedGate = std::function<std::optional<rules::Verdict>(const std::vector<rules::IpAddr>&)>;

  // `overlay`: the sandbox's own entries (its address entries count in the resolved-address check).
  Dialer(WorkerContext& worker, const rules::Config& config, const rules::Policy* policy,
         const rules::PolicyOverlay* overlay = nullptr);
  ~Dialer();
  Dialer(const Dialer&) = delete;
  Dialer& operator=(const Dialer&) = delete;

  void dial(const rules::CanonicalHost& host, uint16_t port, Callback done, ResolvedGate gate = {},
            Use use = Use::Tunnel);
  // After a successful Forward dial through an http parent: that parent (requests go to it
  // in absolute-form, with its Proxy-Authorization). Null otherwise.
  const rules::UpstreamProxy* forward_via() const { return forward_via_; }
  // Abandons a dial in progress: no callback will run.
  void cancel();

 private:
  struct ConnectReq;
  void on_resolved(ResolveResult r);
  void connect_next();
  void start_connect(uint16_t port);
  void connect_parent();
  void on_connected();
  void on_handshake(ParentHandshake::Outcome h);
  static void on_connect(uv_connect_t* req, int status);
  static void on_timeout(uv_timer_t* t);
  void finish(Failure f, std::string error);
  void fail_safely();

  WorkerContext& worker_;
  const rules::Config& config_;
  const rules::Policy* policy_;
  const rules::PolicyOverlay* overlay_;
  rules::CanonicalHost host_;
  uint16_t port_ = 0;
  uint16_t dial_port_ = 0;  // port_, or the parent's
  Use use_ = Use::Tunnel;
  const rules::UpstreamProxy* parent_ = nullptr;
  const rules::UpstreamProxy* forward_via_ = nullptr;
  std::optional<rules::IpAddr> target_addr_;  // what a parent is asked for, when sluice resolved it
  ParentHandshake handshake_;
  Callback done_;
  ResolvedGate gate_;
  Outcome outcome_;
  std::vector<rules::IpAddr> candidates_;
  size_t next_ = 0;
  int attempt_ = 0;
  uint64_t connect_started_ns_ = 0;
  UvHandle<AnyStream> trying_{UvHandle<AnyStream>::Empty{}};
  UvHandle<uv_timer_t> timer_{UvHandle<uv_timer_t>::Empty{}};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // resolver callbacks hold it weakly
  bool resolving_ = false;
};

}  // namespace sluice::proxy
