// Why a connection closed: one cause on every close line, the way HAProxy's termination
// codes answer "why did this end" without reading the code. The first cause noted wins:
// a reply followed by its lingering drain is "refused", not "linger".
#pragma once
#include <cstddef>
#include <cstdint>

#include "base/relay.hpp"

namespace sluice::proxy {

enum class Termination : uint8_t {
  None,           // not decided yet (never logged: close() falls back to ProxyError)
  ClientEof,      // the client closed (between requests, or its side of a finished tunnel first)
  UpstreamEof,    // the upstream closed first, and the close was passed on
  ClientReset,    // a read or write error on the client's connection
  UpstreamReset,  // a read or write error on the upstream's connection
  BadResponse,    // the upstream's response turned malformed after its head went to the client
  Done,           // the exchange completed and HTTP said close (Connection: close, HTTP/1.0)
  Refused,        // sluice answered with a denial or an error and closed
  HeaderTimeout,  // no (whole) request head in time, or not a byte before the sniffer gave up
  IdleTimeout,    // nothing moved for idle_timeout_ms (also: no response in time)
  AskTimeout,     // nobody answered an ask (the reply says so; counted apart from refusals)
  Drain,          // the proxy is stopping and the connection had nothing in flight
  DrainDeadline,  // the proxy stopped and the drain deadline cut the connection
  TlsFailed,      // an inspected tunnel's client handshake failed (not TLS, leaf refused, SNI mismatch)
  ProxyError,     // sluice itself failed (out of memory, a libuv call refused)
};

inline constexpr const char* termination_text(Termination t) {
  switch (t) {
    case Termination::None: return "none";
    case Termination::ClientEof: return "client-eof";
    case Termination::UpstreamEof: return "upstream-eof";
    case Termination::ClientReset: return "client-reset";
    case Termination::UpstreamReset: return "upstream-reset";
    case Termination::BadResponse: return "bad-upstream-response";
    case Termination::Done: return "done";
    case Termination::Refused: return "refused";
    case Termination::HeaderTimeout: return "header-timeout";
    case Termination::IdleTimeout: return "idle-timeout";
    case Termination::AskTimeout: return "ask-timeout";
    case Termination::Drain: return "drain";
    case Termination::DrainDeadline: return "drain-deadline";
    case Termination::TlsFailed: return "tls-failed";
    case Termination::ProxyError: return "proxy-error";
  }
  return "proxy-error";
}

inline constexpr size_t kTerminationCount = static_cast<size_t>(Termination::ProxyError) + 1;

inline constexpr Termination kAllTerminations[] = {
    Termination::ClientEof,   Termination::UpstreamEof, Termination::ClientReset, Termination::UpstreamReset,
    Termination::BadResponse, Termination::Done,        Termination::Refused,     Termination::HeaderTimeout,
    Termination::IdleTimeout, Termination::AskTimeout,  Termination::Drain,       Termination::DrainDeadline,
    Termination::TlsFailed,   Termination::ProxyError};

// The close line's cause for a tunnel that ended so.
inline Termination termination_of(base::Relay::End e) {
  switch (e) {
    case base::Relay::End::ClientEofFirst: return Termination::ClientEof;
    case base::Relay::End::UpstreamEofFirst: return Termination::UpstreamEof;
    case base::Relay::End::ClientError: return Termination::ClientReset;
    case base::Relay::End::UpstreamError: return Termination::UpstreamReset;
    case base::Relay::End::IdleTimeout: return Termination::IdleTimeout;
    case base::Relay::End::LocalError: return Termination::ProxyError;
    case base::Relay::End::FirstBytesRefused: return Termination::Refused;
  }
  return Termination::ProxyError;
}

}  // namespace sluice::proxy
