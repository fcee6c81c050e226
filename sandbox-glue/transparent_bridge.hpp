// Transparent mode (issue 16), the bridge's two extra listeners inside the jail:
//
// - The transparent listener (127.0.0.1 and ::1, TransparentRules::tcp_port), where the
//   packet rules redirect every TCP connection CMD makes. For each one it reads the
//   original destination (SO_ORIGINAL_DST), maps it (a fake address to the name the stub
//   gave it, a real one to its IP literal: transparent_connect_target), reads the first
//   bytes (a ClientHello's SNI or a request's Host must match the name), and then hands the
//   program's socket itself to sluice over a hand-over channel, with the target, the
//   original destination and the first bytes (proxy/handover_frame.hpp): sluice judges,
//   dials and serves the program directly, and no byte of the connection crosses the bridge.
//   Without channels (--bridge relay, --daemon) it sends `CONNECT target` over the proxy's
//   unix socket instead and, on 200, relays; any other answer (a policy refusal, a failed
//   dial) resets the program's connection, or passes an HTTP program the refusal.
// - The DNS stub (UDP and TCP on 127.0.0.1 and ::1, TransparentRules::dns_port; the rules
//   redirect every :53 there). It decides nothing itself: each query goes, as one
//   length-prefixed frame, to the launcher's DNS service over a second unix socket
//   (the policy and the fake-address map live outside the jail, next to the decision
//   log); the answer comes back with the name's fake addresses, which the stub keeps
//   for the transparent listener's mapping. Nothing is ever asked of a real resolver.
//
// The service's reply to one query frame is two frames: the DNS answer (empty: say
// nothing) and the mapping text "name v4 v6" (empty when the query assigned nothing).
#pragma once
#include <uv.h>

#include <cstdint>
#include <string>

#include "rules/ip.hpp"
#include "sandbox-glue/handover_channels.hpp"

namespace sluice::glue {

struct TransparentBridge {
  bool on = false;
  uint16_t tcp_port = 3129;
  uint16_t dns_port = 3053;
  std::string proxy_socket;  // the proxy's unix socket inside the jail
  std::string dns_socket;    // the launcher's DNS service inside the jail
  rules::Cidr fake_ipv4, fake_ipv6;
  HandOverChannels* channels = nullptr;  // the proxy's hand-over channels (run_bridge's); null: relay
};

// Binds the listeners and connects the DNS link on `loop`; "" or a one-line error.
std::string start_transparent_bridge(uv_loop_t* loop, const TransparentBridge& cfg);

// The service's reply frames, parsed from `in`: nullopt-like `complete == false` until
// both frames are there. Pure; exposed for the unit tests.
struct StubReply {
  bool complete = false;
  size_t consumed = 0;
  std::string answer;   // empty: no answer
  std::string mapping;  // "name v4 v6" or empty
};
StubReply parse_stub_reply(std::string_view in);
std::string stub_reply_frames(std::string_view answer, std::string_view mapping);

}  // namespace sluice::glue
