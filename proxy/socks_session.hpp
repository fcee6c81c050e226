// One SOCKS5 client connection (RFC 1928), beside the HTTP session: the same
// listener, policy judgment, dialer, relay and decision log, its own protocol.
//
//   Greeting -> [Authenticating] -> ReadingRequest -> Targeting -> Tunnelling
//   any state -> Closing (reply, FIN, short lingering drain) -> gone
//
// Targeting: the target flow (proxy/target_flow.hpp) judges, asks and dials; this
// session turns its outcome into a reply. When the verdict was Ask, the request gets
// its reply only once a human has answered or ask_timeout has passed (0x02, ask-timeout).
// Only CONNECT is served; BIND and UDP ASSOCIATE are answered 0x07. While a
// request is judged and dialed the client is not read; after a refusal, bytes
// the client sent are drained unparsed and never forwarded. SOCKS4 (first byte
// 0x04) is refused with a SOCKS4 "rejected" reply and a log line.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <uv.h>

#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision.hpp"
#include "proxy/session_timer.hpp"
#include "proxy/socks5.hpp"
#include "proxy/target_flow.hpp"
#include "proxy/worker_context.hpp"
#include "rules/config.hpp"
#include "rules/rule_engine.hpp"

namespace sluice::proxy {

class SocksSession {
 public:
  enum class State { Greeting, Authenticating, ReadingRequest, Targeting, Tunnelling, Closing };

  // `rules`: the worker's Lua states for `config` (may be null), kept for the session's life.
  SocksSession(WorkerContext& worker, std::shared_ptr<const rules::Config> config,
               std::shared_ptr<rules::WorkerRules> rules, ClientInfo client, UvHandle<AnyStream>&& stream,
               std::string first_bytes);
  ~SocksSession();
  SocksSession(const SocksSession&) = delete;
  SocksSession& operator=(const SocksSession&) = delete;

  void start();
  // Before start(): the front's running read goes on into this session (callbacks swapped)
  // instead of a stop and restart (two epoll_ctl in libuv 1.44).
  void take_over_reading();
  // Over a connection limit: "no acceptable method" (or the SOCKS4 rejection) and close.
  void refuse(const std::string& message);
  void drain();
  void abort() { close_now(Termination::DrainDeadline); }
  const ListenerInfo& listener() const { return *client_info_.listener; }

 private:
  // TunnelStarted: the loop turn after the relay starts, for release_head_state() (0 ms).
  enum class TimerKind { None, HandshakeTimeout, LingerTimeout, TunnelStarted };

  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  void client_data(const char* block, size_t n);
  void client_eof();
  void parse();
  void on_greeting(const socks5::Greeting& g);
  void on_user_pass(const socks5::UserPass& u);
  void on_request(const socks5::Request& r);
  void on_flow(FlowOutcome& o);
  void on_connected(flow::Connected& c);
  void refuse_socks4();
  void send_in_band_reason(const std::string& detail);
  void update_reading();
  void hand_to_inspection(UvHandle<AnyStream>&& upstream);
  void guard_tunnel_bytes();

  // Logs the decision, sends `bytes` and closes (lingering).
  void reply_and_close(std::string bytes, rules::Reason error, Outcome outcome);
  void refuse_request(socks5::Reply code, rules::Reason error);
  void write(std::string bytes);
  static void on_write(void* session, int, int status);  // base::WriteDone
  static void on_shutdown(uv_shutdown_t*, int);
  void close_now(Termination why);  // `why` unless a cause was noted first
  static void on_handle_closed(void* data);
  // (Re)makes the timer if a tunnel released it, unless the session is closing.
  void arm(TimerKind kind, uint64_t ms) { timer_.arm(kind, ms, closed_, open_handles_); }
  // A relaying tunnel frees the flow's dialer and its own timer (the relay has its own).
  void release_head_state();
  static void on_timer(uv_timer_t*);

  WorkerContext& worker_;
  std::shared_ptr<const rules::Config> config_;
  ClientInfo client_info_;
  const rules::ListenerConfig* listener_config_ = nullptr;
  State state_ = State::Greeting;

  UvHandle<AnyStream> client_{UvHandle<AnyStream>::Empty{}};
  UvHandle<AnyStream> upstream_{UvHandle<AnyStream>::Empty{}};
  SessionTimer<TimerKind> timer_;
  int open_handles_ = 0;
  bool closed_ = false;
  bool reading_ = false;
  bool client_eof_ = false;
  bool lingering_ = false;
  bool shut_ = false;

  std::string pending_;                        // client bytes not yet parsed; after the request, early tunnel bytes
  std::shared_ptr<rules::WorkerRules> rules_;  // for an HTTP session taking over an inspected target
  rules::CanonicalHost host_;
  uint16_t port_ = 0;
  Decision decision_;
  TargetFlow flow_;  // judge, ask, dial
  Relay relay_;
  Termination cause_ = Termination::None;  // the close line's "cause"
};

}  // namespace sluice::proxy
