// Why an operation failed, as one short key per kind: "connect-refused", "proxy-403",
// "upstream-500", "timeout", "short-read", "reset", ... The load generator counts keys, so a
// report says at a glance whether the proxy denied, the upstream failed, or the client gave up.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace sluice::bench {

enum class ErrorKind {
  ConnectRefused,  // nobody listening (ECONNREFUSED; ENOENT for a unix socket path)
  ConnectFailed,   // any other failure to connect (EADDRNOTAVAIL, ETIMEDOUT from the kernel, ...)
  ProxyStatus,     // the proxy answered with a non-2xx status (CONNECT reply, or a forwarded GET)
  SocksReply,      // the proxy refused a SOCKS5 method or request: the reply code (255: no method;
                   // 256 + code: username/password refused)
  UpstreamStatus,  // the target answered through the tunnel with a non-2xx status
  Timeout,         // our own inactivity timeout fired
  ShortRead,       // EOF before the response (head or body) was complete
  Reset,           // ECONNRESET / EPIPE: the peer aborted
  BadResponse,     // bytes that are not a well-framed HTTP/1.x response
  ByteMismatch,    // a body or a sink's count that differs from what was asked for
  TlsFailed,       // the TLS handshake inside the tunnel (or direct) failed, or a TLS record was bad
  Other,           // any other libuv error
};

// Where in an operation the error happened: a refusal while connecting is not a reset mid-stream.
enum class Phase { Connect, Io };

// Maps a libuv error code (negative errno, or UV_EOF) to a kind.
ErrorKind classify_uv_error(int uv_err, Phase phase);

// The counting key: "proxy-403" for ProxyStatus 403, "socks-2" for SocksReply 2, "upstream-502", "other-EHOSTUNREACH"
// (uv_err_name) for Other, the kind's name otherwise.
std::string error_key(ErrorKind kind, int status_or_uv_err = 0);

struct ErrorCounts {
  std::map<std::string, uint64_t> by_key;
  uint64_t total = 0;

  void add(ErrorKind kind, int status_or_uv_err = 0) { add_key(error_key(kind, status_or_uv_err)); }
  void add_key(const std::string& key, uint64_t n = 1) {
    by_key[key] += n;
    total += n;
  }
  void merge(const ErrorCounts& o) {
    for (const auto& [k, n] : o.by_key) add_key(k, n);
  }
  uint64_t get(const std::string& key) const {
    auto it = by_key.find(key);
    return it == by_key.end() ? 0 : it->second;
  }
};

}  // namespace sluice::bench
