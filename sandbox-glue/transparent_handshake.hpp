// Transparent mode (issue 16): how the bridge's transparent listener hands a
// redirected connection to sluice. It speaks CONNECT over the sandbox's unix socket,
// exactly like an explicit client, so the proxy's existing target flow judges it;
// a 200 means relay, anything else means reset the program's connection (RST, via
// SO_LINGER 0) and log the refusal. Pure apart from reset_connection.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::glue {

// "CONNECT <target> HTTP/1.1\r\nHost: <target>\r\n\r\n"; `target` is `name:port`,
// `1.2.3.4:port` or `[v6]:port` (transparent_connect_target). A non-empty
// `original_dst` (the address CMD dialed, e.g. "198.18.0.1:443") goes along as
// `X-Sluice-Original-Dst`, which the proxy logs as the decision's "original_dst".
// `tls_first`: the program's first bytes are a TLS handshake record, sent as
// `X-Sluice-First-Bytes: tls`: a refused connection to a host the proxy inspects is then
// answered inside TLS (its readable 403) rather than reset.
std::string transparent_connect_request(std::string_view target, std::string_view original_dst = {},
                                        bool tls_first = false);

struct ConnectReply {
  enum class State { Incomplete, Ok, Refused, Malformed };
  State state = State::Incomplete;
  int status = 0;           // the HTTP status, when complete
  std::string reason;       // the status line's reason phrase
  size_t header_bytes = 0;  // bytes of the reply header, through the blank line; the rest is tunnel data
};

// Reads the proxy's answer to the CONNECT from the bytes received so far. Incomplete
// until the blank line; Malformed past kMaxConnectReply bytes without one or when the
// status line is not `HTTP/1.x NNN ...`. Ok only for 200.
inline constexpr size_t kMaxConnectReply = 16384;
ConnectReply parse_connect_reply(std::string_view bytes);

// Closes `fd` (a TCP socket) with a reset instead of a FIN: SO_LINGER with a zero
// timeout, then close. The program sees ECONNRESET, as from a refusing firewall.
void reset_connection(int fd);

}  // namespace sluice::glue
