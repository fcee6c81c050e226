// The decision record every session kind fills in, and the two log lines
// (decision, close) written from it in one format for HTTP and SOCKS alike.
#pragma once
#include <cstdint>
#include <string>

#include "proxy/connection.hpp"
#include "proxy/termination.hpp"
#include "rules/host.hpp"
#include "rules/policy.hpp"

namespace sluice::proxy {

struct Decision {
  std::string kind;    // "connect", "http", "socks" (and "socks4" for the refused protocol)
  std::string method;  // HTTP method, or the SOCKS command ("CONNECT", "BIND", "UDP-ASSOCIATE")
  std::string host;
  uint16_t port = 0;
  std::string url;
  rules::Verdict verdict;
  std::string error;  // failure code after the policy verdict (dns-failed, connect-failed, ...)
  std::string addr;
  std::string address_class;  // the class of the first resolved address refused
  std::string host_replaced;  // the client's Host header, when it differed from the URL's host
  bool reused = false;
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

// The one-line human reason for a policy denial: which rule, and how to allow it.
std::string denial_message(const rules::Verdict& v, const rules::CanonicalHost& host, uint16_t port);

}  // namespace sluice::proxy
