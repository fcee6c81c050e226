#include "bench/errors.hpp"

#include <uv.h>

namespace sluice::bench {

ErrorKind classify_uv_error(int err, Phase phase) {
  switch (err) {
    case UV_ECONNREFUSED: return phase == Phase::Connect ? ErrorKind::ConnectRefused : ErrorKind::Reset;
    case UV_ENOENT:  // unix socket path missing: nobody listening
      return phase == Phase::Connect ? ErrorKind::ConnectRefused : ErrorKind::Other;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_ECONNABORTED: return ErrorKind::Reset;
    case UV_EOF: return ErrorKind::ShortRead;
    case UV_ETIMEDOUT: return phase == Phase::Connect ? ErrorKind::ConnectFailed : ErrorKind::Timeout;
    case UV_EADDRNOTAVAIL:
    case UV_EADDRINUSE:
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_EAGAIN: return phase == Phase::Connect ? ErrorKind::ConnectFailed : ErrorKind::Other;
    default: return phase == Phase::Connect ? ErrorKind::ConnectFailed : ErrorKind::Other;
  }
}

std::string error_key(ErrorKind kind, int v) {
  switch (kind) {
    case ErrorKind::ConnectRefused: return "connect-refused";
    case ErrorKind::ConnectFailed: return "connect-failed";
    case ErrorKind::ProxyStatus: return "proxy-" + std::to_string(v);
    case ErrorKind::SocksReply: return "socks-" + std::to_string(v);
    case ErrorKind::UpstreamStatus: return "upstream-" + std::to_string(v);
    case ErrorKind::Timeout: return "timeout";
    case ErrorKind::ShortRead: return "short-read";
    case ErrorKind::Reset: return "reset";
    case ErrorKind::BadResponse: return "bad-response";
    case ErrorKind::ByteMismatch: return "byte-mismatch";
    case ErrorKind::TlsFailed: return "tls-failed";
    case ErrorKind::Other: return v ? std::string("other-") + uv_err_name(v) : "other";
  }
  return "other";
}

}  // namespace sluice::bench
