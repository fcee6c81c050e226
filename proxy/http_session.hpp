// One HTTP client connection: an explicit state machine from request head to close.
//
//   ReadingHead -> Targeting -> Tunnelling                 (CONNECT)
//                            -> Forwarding -> ReadingHead  (plain HTTP, judged per request)
//   any state -> Closing (lingering close after sluice's own reply) -> gone
//
// Targeting: the target flow (proxy/target_flow.hpp) judges, asks and dials, the same
// as for SOCKS5; this session turns its outcome into a status line and X-Sluice-Reason.
// When the verdict was Ask, nothing goes upstream until a human answers or ask_timeout
// passes (403 ask-timeout). Tunnelling is base/relay.hpp's job.
//
// An inspected CONNECT (TLS inspection, http_session_tls.cpp) takes one detour: the
// upstream's TLS handshake (502 upstream-tls-failed if it fails), then the 200, then the
// client's handshake against a leaf for the CONNECT host; then the session reads and
// writes both sides' plaintext through their TLS pumps (proxy/tls_pump.hpp, attached) and
// goes back to ReadingHead with plaintext requests, each judged, forwarded and logged like
// a plain-HTTP request, pinned to the CONNECT's host.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <uv.h>

#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision.hpp"
#include "proxy/handover_frame.hpp"
#include "proxy/http_message.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/session_timer.hpp"
#include "proxy/target_flow.hpp"
#include "proxy/tls_pump.hpp"
#include "proxy/worker_context.hpp"
#include "rules/body_replace.hpp"
#include "rules/config.hpp"
#include "rules/host.hpp"
#include "rules/policy.hpp"
#include "rules/rule_engine.hpp"
#include "rules/stand_in_index.hpp"

namespace sluice::proxy {

class HttpSession {
 public:
  enum class State { ReadingHead, Targeting, Tunnelling, Forwarding, Closing };

  // Takes the accepted client from the sniffer, with the bytes it already read.
  // `rules`: the worker's Lua states for `config` (may be null); the session keeps both
  // for its whole life, so a reload never changes its judgment half way.
  HttpSession(WorkerContext& worker, std::shared_ptr<const rules::Config> config,
              std::shared_ptr<rules::WorkerRules> rules, ClientInfo client, UvHandle<AnyStream>&& stream,
              std::string first_bytes);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void start();
  // Before start(): the client's read the front started is still running; it goes on into this
  // session (its callbacks swapped) instead of being stopped and restarted, which costs libuv
  // 1.44 two epoll_ctl.
  void take_over_reading();
  // A transparent connection (issue 16) the in-jail bridge handed over with its decision:
  // judged as a CONNECT to `t.target` at once (or refused with `refusal`, e.g. over a limit).
  // The program does not speak to a proxy: no 200 on success, and a refusal is a reset, the
  // readable 403 for an HTTP request (first_kind Http), or the 403 inside TLS on an inspected
  // host (first_kind Tls). The session's first bytes are the program's, sent upstream first.
  void start_transparent(const TransparentStart& t, const std::string& refusal);
  // A SOCKS5 CONNECT to an inspected host (proxy/socks_session.cpp) continues here: the
  // upstream's TLS handshake, then the SOCKS5 reply, then the client's TLS and its requests.
  void start_inspected_socks(rules::CanonicalHost host, uint16_t port, Decision decision,
                             UvHandle<AnyStream>&& upstream);
  // Refuses at once (e.g. over max_connections) with a reply and closes.
  void refuse(rules::Reason reason, const std::string& message);
  void drain();
  void abort();
  const ListenerInfo& listener() const { return *client_info_.listener; }

  uint64_t id() const { return client_info_.id; }

 private:
  enum class Side { Client, Upstream };
  // One timer, named after what it waits for (limits in rules/config.hpp):
  //   HeaderTimeout     a request head (header_timeout_ms)
  //   KeepAliveTimeout  the next request on a kept-alive connection (keepalive_timeout_ms)
  //   ForwardTimeout    progress of a forwarded exchange: request_body_timeout_ms while the body is
  //                     due, response_timeout_ms until the response head, idle_timeout_ms after
  //   LingerTimeout     the drain after sluice's own reply (kLingerMs)
  //   TunnelStarted     the loop turn after a tunnel starts: release_head_state() (0 ms)
  // (A person's answer is waited for under the target flow's own timer, ask_timeout_ms.)
  enum class TimerKind { None, HeaderTimeout, KeepAliveTimeout, ForwardTimeout, LingerTimeout, TunnelStarted };

  // reading and parsing
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_client_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_upstream_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  void client_data(const char* block, size_t n);
  void client_eof();
  void upstream_data(const char* block, size_t n);
  void upstream_eof();
  void upstream_reset();
  void parse_client(bool kick = false);
  void parse_upstream(const char* data, size_t n);
  void update_reading();

  // judging, dialing, tunnelling
  void on_request_head(bool is_connect);
  bool authorized();
  void judge_target(const std::string& raw_host, uint16_t port);
  bool reuse_upstream();  // the flow's before_dial: a kept-alive upstream for this target?
  void on_flow(FlowOutcome& o);
  void on_upstream_ready();
  void start_tunnel(std::string to_upstream, std::string to_client);
  // A relaying tunnel keeps what its close needs (the judge, the byte counts, the verdict's
  // action and reason) and frees what only the head phase used: the dialer, the request head,
  // the response parser, the decision (its line is written), and the session's timer (the
  // relay has its own idle timer).
  void release_head_state();
  void send_request_upstream();
  void forward_request_body(const char* data, size_t n);  // as it is, or as one chunk

  // TLS inspection (http_session_tls.cpp)
  void wrap_upstream(UvHandle<AnyStream>&& tcp);
  void on_upstream_tls(TlsPump::Handshake& h);
  void start_client_tls();
  void on_client_tls(TlsPump::Handshake& h);
  // An attached pump's event for side `side` (proxy/tls_pump.hpp): the same steps a plain
  // socket's read, write and shutdown callbacks take.
  static void on_tls_event(void* session, int side, TlsPump::Event e, const char* data, size_t n);
  bool has_stream(Side s) const;  // a socket, or an attached TLS pump
  // Before a byte relay takes the sides over (an upgrade's 101): the pumps' socketpairs.
  bool unfuse_tls();
  void on_inspected_request(bool is_connect);
  bool pinned_host(std::string_view authority, uint16_t default_port) const;
  void log_tls_failure(rules::Reason reason, const TlsPump::Handshake& h);
  // A refusal inside an inspected tunnel, answered on a connection that stays open when
  // the request had no body and HTTP allows it; false when the caller must close.
  bool refuse_and_continue(rules::Reason reason, const std::string& body_line);
  // Transparent mode (issue 16): a refused CONNECT from the in-jail bridge to a host the policy
  // inspects. The program speaks TLS, not HTTP to a proxy: it gets the TLS handshake with a
  // leaf, and its request inside the readable 403. False when that does not apply.
  bool refuse_inside_tls(rules::Reason reason, const std::string& body_line);

  // the credential gateway (http_session_gateway.cpp)
  void load_stand_ins();
  bool refuse_misused_stand_in();  // true: refused (the reply is on its way)
  bool foreign_stand_in(rules::IssuedStandIn& found, std::string& where) const;
  void mask_in_logged_url(const std::string& stand_in, const std::string& credential);
  void attach_credential();
  // replace_body: refused before dialing (over the cap, encoded), else streamed through a filter.
  size_t body_replace_cap(std::vector<const rules::StandIn*>* which) const;
  bool refuse_unreplaceable_body();  // true: refused (the reply is on its way)
  void start_body_replace();
  void replace_in_body(const char* data, size_t n);
  void finish_body_replace();
  // An opaque tunnel of a sandbox with stand-ins: its first client bytes must not carry one.
  void guard_tunnel_bytes();

  // the git guard (http_session_git.cpp): git requests to a host a `git:` rule names
  bool refuse_git_request();  // true: refused (the reply is on its way)
  // A receive-pack: its head and body are held until the ref commands are read and judged.
  void hold_push(std::string head);
  void git_body(const char* data, size_t n);
  void git_body_done();
  void judge_held_push();
  void refuse_push(const rules::GitResponse& answer);
  void refuse_unreadable_push(const std::string& why);

  // forwarding
  void request_body(const char* data, size_t n);
  void request_done();
  void response_head();
  void response_body(const char* data, size_t n);
  void response_done();

  // writing and closing
  // `count`: add to the byte counts (sluice's own replies are not the client's traffic).
  void write(Side to, std::string bytes, bool count = true);
  // The same for a side with an attached TLS pump: encrypted at once from BYTES (no copy);
  // while corked the records wait in the pump, and uncork() sends them.
  void write_tls(Side to, std::string_view bytes, bool count);
  // While a read callback runs, writes gather per side and go out as one write at its end:
  // a response head and its body leave in one segment, not two.
  void cork() { ++cork_; }
  void uncork();
  void flush(Side to);
  static void on_write(void* session, int side, int status);  // base::WriteDone
  size_t queued(Side s) const;
  // `why`: the cause its close line will carry (a refusal unless a timeout led to it).
  // The status comes from the reason's row in rules/reason.hpp.
  void reply_and_close(rules::Reason reason, const std::string& body_line, Termination why = Termination::Refused);
  void close_upstream();
  void reset_client();  // a refused transparent program that is not HTTP: RST, no reply
  void begin_linger();
  // The client's EOF was read ahead and nothing more of it will be served: what is written
  // (corked replies included) goes out, then the connection closes (cause client-eof).
  void finish_after_client_eof();
  void shutdown(Side s);
  static void on_shutdown(uv_shutdown_t*, int);
  void on_shutdown_done(Side s);
  // Closes both sides at once; `why` is the close line's cause unless one was noted first.
  void close_now(Termination why);
  static void on_handle_closed(void* data);

  // timers
  // (Re)makes the timer if a tunnel released it, unless the session is closing.
  void arm(TimerKind kind, uint64_t ms) { timer_.arm(kind, ms, closed_, open_handles_); }
  static void on_timer(uv_timer_t*);
  uint64_t forward_limit_ms() const;  // the ForwardTimeout limit for the exchange's phase
  void on_forward_timeout();

  // logging
  void log_decision(int status);

  WorkerContext& worker_;
  std::shared_ptr<const rules::Config> config_;
  ClientInfo client_info_;
  const rules::ListenerConfig* listener_config_ = nullptr;
  rules::RequestFacts facts_;                    // the request being judged (views into its head)
  std::vector<rules::HeaderEdit> header_edits_;  // from on_request, applied before forwarding
  State state_ = State::ReadingHead;

  UvHandle<AnyStream> client_{UvHandle<AnyStream>::Empty{}};    // from the front
  UvHandle<AnyStream> upstream_{UvHandle<AnyStream>::Empty{}};  // from the dialer
  SessionTimer<TimerKind> timer_;
  uint64_t last_activity_ = 0;
  int open_handles_ = 0;
  int cork_ = 0;
  std::string corked_[2];  // by Side: bytes written while corked, not yet handed to libuv

  HttpParser request_parser_;
  std::unique_ptr<HttpParser> response_parser_;  // made for the first forwarded request
  HttpParser& response_parser();
  std::string client_pending_;  // client bytes not yet parsed (or tunnel bytes after CONNECT)
  // What each side's connection has done: the same four facts for both, reset for an
  // upstream when a new one is dialed.
  struct SideState {
    bool reading = false;    // a read is started
    bool eof = false;        // it sent EOF (or failed)
    bool shut = false;       // sluice asked to shut its write side
    bool shut_done = false;  // and the shutdown completed
  };
  SideState client_side_, upstream_side_;
  // The request/response exchange under way on this connection: reset for each request.
  struct Exchange {
    bool in_flight = false;          // request head sent, body may be streaming
    bool request_complete = false;   // whole request sent upstream
    bool response_started = false;   // a final response head went to the client
    bool close_after = false;        // the connection closes once this response is done
    bool informational = false;      // the response head seen is a 1xx
    bool upgrade_requested = false;  // the request asked for a protocol upgrade
    bool client_chunked = false;     // the response body is re-chunked for the client
    bool upstream_garbage = false;   // the upstream sent bytes after a response
  };
  Exchange exchange_;
  bool is_connect_ = false;
  bool tls_resumed_ = false;  // inspected: the upstream's TLS handshake resumed a kept session
  bool draining_ = false;
  bool got_bytes_ = false;
  bool closed_ = false;
  bool lingering_ = false;
  bool settling_reads_ = false;  // judge_target's flow_.start() runs: update_reading() waits
  // TLS inspection: the inspector (CA, leaves, contexts) this CONNECT was judged with, the
  // pump whose handshake is under way (owned by this session until it succeeds), and
  // whether requests now arrive decrypted.
  std::shared_ptr<tls::Inspector> inspector_;
  TlsPump* pump_ = nullptr;
  // By side (Client 0, Upstream 1): the attached pump its plaintext goes through; the
  // side's socket (client_, upstream_) is then the pump's, and the UvHandle stays empty.
  TlsPump* tls_[2] = {nullptr, nullptr};
  bool inspected_ = false;
  bool client_handed_ = false;  // the client's own socket belongs to a pump
  // refuse_inside_tls: the refusal each request inside gets (no upstream exists), and the
  // connection's verdict, which the requests' decision lines repeat.
  std::optional<std::pair<rules::Reason, std::string>> refusal_inside_;
  rules::Verdict refusal_verdict_;
  bool client_tls_first_ = false;  // X-Sluice-First-Bytes: tls (from the transparent bridge)
  // start_transparent: the client is the program itself (no 200), and what its first bytes
  // were, which decides how a refusal reaches it.
  bool transparent_ = false;
  FirstBytesKind first_kind_ = FirstBytesKind::Other;
  bool socks_ = false;  // the tunnel came as a SOCKS5 CONNECT: its answers are SOCKS5 replies
  // The credential gateway: this sandbox's stand-ins (rules/gateway_credential.hpp).
  std::vector<rules::StandIn> stand_ins_;
  bool stand_ins_loaded_ = false;
  std::unique_ptr<rules::BodyReplacer> body_replace_;  // this request's replace_body filter, or null
  size_t body_replace_max_ = 0;

  // The git guard's view of the request under way (reset for each request).
  struct GitExchange {
    const rules::GitRule* rule = nullptr;  // the rule that allowed it (the policy outlives the session)
    rules::GitRequest request;
    bool push_check = false;       // a receive-pack: its commands are judged before anything goes upstream
    bool holding = false;          // head and body held until then
    bool discarding = false;       // the push was refused: the rest of its body is read and dropped
    bool expect_continue = false;  // the client waits for a 100 before its body: sluice sends it
    uint64_t discarded = 0;
    std::string head;  // the upstream request head, held
    std::string held;  // body bytes held (as the parser decoded them)
    std::unique_ptr<rules::ReceivePackParser> parser;
  };
  GitExchange git_;

  // the current target
  rules::CanonicalHost host_;
  uint16_t port_ = 0;
  AbsoluteUrl url_;
  std::string upstream_key_;     // "host:port" the upstream connection serves
  std::string upstream_addr_;    // the address dialed, "ip:port"
  std::string upstream_parent_;  // the parent proxy it goes through, if any
  std::unique_ptr<Decision> decision_;
  // What the close reads of a released decision's verdict (release_head_state).
  rules::Action tunnel_action_ = rules::Action::Deny;
  rules::Reason tunnel_reason_ = rules::Reason::None;
  TargetFlow flow_;  // judge, ask, dial
  Relay relay_;

  uint64_t bytes_up_ = 0, bytes_down_ = 0;
  uint64_t requests_ = 0;
  Termination cause_ = Termination::None;  // the first cause noted; the close line's "cause"
};

}  // namespace sluice::proxy
