// The protocol sniffer every accepted connection starts in, on every listener:
// it waits (under header_timeout) for the client's first bytes and hands the
// client to the session for that protocol: 0x05 (or 0x04, which the SOCKS
// session refuses) is SOCKS, anything else HTTP. It reads nothing but that first
// read, which the session receives as its first bytes.
#pragma once
#include <memory>
#include <string>

#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/handover_frame.hpp"
#include "proxy/termination.hpp"
#include "proxy/worker_context.hpp"
#include "rules/config.hpp"
#include "rules/rule_engine.hpp"

namespace sluice::proxy {

class Front {
 public:
  // `rules`: the worker's Lua states for `config` (may be null), handed on to the session.
  Front(WorkerContext& worker, std::shared_ptr<const ListenerInfo> listener,
        std::shared_ptr<const rules::Config> config, std::shared_ptr<rules::WorkerRules> rules);
  ~Front();

  // Accepts a pending connection from `server`; false when it failed (the front is already closing).
  bool accept(uv_stream_t* server, bool is_unix);
  // `refusal`: non-empty when the connection is over a limit: the session refuses it
  // in its own protocol (HTTP 503, SOCKS "no acceptable method") with this message.
  void start(std::string refusal);
  // A transparent connection the in-jail bridge handed over with its decision (issue 16):
  // no sniffing, the HTTP session starts at once from the bridge's target and first bytes.
  void start_transparent(TransparentStart t, std::string refusal);

  void drain() { close(Termination::Drain); }  // nothing has been said yet: an idle connection
  void abort() { close(Termination::DrainDeadline); }
  const ListenerInfo& listener() const { return *client_info_.listener; }

 private:
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_header_timeout(uv_timer_t*);
  void hand_over(const char* block, size_t n);
  void close(Termination why);
  static void on_closed(void* data);

  WorkerContext& worker_;
  std::shared_ptr<const rules::Config> config_;
  std::shared_ptr<rules::WorkerRules> rules_;
  ClientInfo client_info_;
  UvHandle<AnyStream> client_;
  UvHandle<uv_timer_t> header_timer_{UvHandle<uv_timer_t>::Empty{}};  // not counted: closes on its own
  std::string refusal_;
  bool closed_ = false;
};

}  // namespace sluice::proxy
