// Pieces shared by session.cpp and session_io.cpp, not part of the session's API.
#pragma once
#include <sys/socket.h>

#include <string>

#include "proxy/session.hpp"

namespace sluice::proxy {

// Stop reading a side while the other side has this much queued for writing.
inline constexpr size_t kHighWatermark = 512 * 1024;
// How long a closing connection keeps draining the client after sluice's reply.
inline constexpr uint64_t kLingerMs = 2000;

struct Session::Decision {
  std::string kind;
  std::string method;
  std::string host;
  uint16_t port = 0;
  std::string url;
  rules::Verdict verdict;
  std::string error;  // failure code after the policy verdict (dns-failed, connect-failed, ...)
  std::string addr;
  std::string address_class;  // the class of the first resolved address refused
  std::string host_replaced;  // the client's Host header, when it differed from the URL's host
  bool reused = false;
  double dns_ms = -1;
  double connect_ms = -1;
  bool logged = false;
};

struct Session::WriteReq {
  uv_write_t req;
  Session* session;
  Side to;
  std::string bytes;
  char* block;  // pooled read buffer, returned to the pool when written
};

std::string format_sockaddr(const sockaddr_storage& ss);
sockaddr_storage to_sockaddr(const rules::IpAddr& addr, uint16_t port);
std::string host_port_text(const rules::CanonicalHost& host, uint16_t port);
std::string denial_message(const rules::Verdict& v, const rules::CanonicalHost& host, uint16_t port);

}  // namespace sluice::proxy
