// The decision record every session kind fills in, and the two log lines
// (decision, close) written from it in one format for HTTP and SOCKS alike.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/connection.hpp"
#include "proxy/termination.hpp"
#include "rules/host.hpp"
#include "rules/policy.hpp"

namespace sluice::proxy {

// The kind of connection a decision is about: its text is the log's "kind" and what Lua sees.
enum class ConnKind : uint8_t { None, Connect, Http, Socks, Socks4 };
inline constexpr size_t kConnKindCount = 5;
constexpr const char* to_string(ConnKind k) {
  switch (k) {
    case ConnKind::None: return "none";
    case ConnKind::Connect: return "connect";
    case ConnKind::Http: return "http";
    case ConnKind::Socks: return "socks";
    case ConnKind::Socks4: return "socks4";  // the refused protocol
  }
  return "none";
}

struct Decision {
  ConnKind kind = ConnKind::None;
  std::string method;  // HTTP method, or the SOCKS command ("CONNECT", "BIND", "UDP-ASSOCIATE")
  std::string host;
  uint16_t port = 0;
  std::string url;
  rules::Verdict verdict;
  rules::Reason error = rules::Reason::None;  // a failure after (or before) the verdict: dns-failed, ...
  std::string addr;
  std::string address_class;  // the class of the first resolved address refused
  std::string parent;         // the parent proxy dialed through, "scheme://host:port" (never credentials)
  std::string host_replaced;  // the client's Host header, when it differed from the URL's host
  std::string original_dst;   // transparent mode: the address and port CMD dialed ("198.18.0.1:443")
  bool reused = false;
  bool inspected = false;    // TLS inspection: the CONNECT that was terminated, or a request inside
  std::string tls_error;     // upstream-tls-failed: the verification or handshake error
  bool tls_resumed = false;  // inspected: the upstream handshake resumed a kept session
  std::string credential;    // the gateway credential attached, or whose stand-in was misused (never its value)
  std::string git;           // the git guard's facts about this request: one JSON object (proxy/http_session_git.cpp)
  bool in_band_reason = false;  // SOCKS: the denial was sent as an SSH disconnect
  uint64_t question = 0;        // the ask this decision waited on (0: none)
  double ask_ms = -1;           // how long it waited for the answer
  double dns_ms = -1;
  double connect_ms = -1;
  bool logged = false;
};

// What the client was told: an HTTP status, or a SOCKS5 reply code.
struct Outcome {
  const char* key;  // "status" or "socks_reply"
  int value;
  bool denied;  // a policy denial: also printed on the human denial stream (sluice run)
};

void log_decision(WorkerContext& worker, const ClientInfo& client, Decision& d, Outcome outcome);
// `cause`: why the connection closed (proxy/termination.hpp), the close line's "cause".
void log_close(WorkerContext& worker, const ClientInfo& client, uint64_t bytes_up, uint64_t bytes_down,
               uint64_t requests, Termination cause);

// The credential gateway, for both tunnel kinds: the relay's first client bytes must hold none of
// `stand_ins`; one that does closes the tunnel unsent and is logged by log_tunnel_misuse.
void guard_tunnel_bytes(base::Relay& relay, WorkerContext& worker, const ClientInfo& client,
                        const rules::CanonicalHost& host, uint16_t port, std::vector<rules::StandIn> stand_ins);
// A stand-in in the first bytes of an opaque tunnel: a `credential-misuse` line and the metric.
void log_tunnel_misuse(WorkerContext& worker, const ClientInfo& client, const rules::CanonicalHost& host, uint16_t port,
                       const std::string& credential);

// The one-line human reason for a policy denial: which rule, and how to allow it.
std::string denial_message(const rules::Verdict& v, const rules::CanonicalHost& host, uint16_t port);

}  // namespace sluice::proxy
