// The handshake with a parent proxy on a connected stream: HTTP CONNECT, or SOCKS5
// (RFC 1928, with RFC 1929 username/password when configured). It reads exactly the
// parent's reply and not one byte more (each read is sized to what the reply still
// lacks), so whatever the target sends first stays in the socket for the session.
// The caller's timer bounds it; the dialer owns it.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <uv.h>

#include "rules/ip.hpp"
#include "rules/upstream_proxy.hpp"

namespace sluice::proxy {

class ParentHandshake {
 public:
  enum class Result { Ok, Failed, AuthFailed };
  struct Outcome {
    Result result = Result::Failed;
    int status = 0;     // an HTTP parent's status code (0: none)
    std::string error;  // one line, never with credentials
  };
  using Done = std::function<void(Outcome)>;

  ParentHandshake() = default;
  ParentHandshake(const ParentHandshake&) = delete;
  ParentHandshake& operator=(const ParentHandshake&) = delete;

  // `authority`: "host:port" (HTTP CONNECT); `name`/`addr`: what a SOCKS5 parent is asked
  // for (an address for socks5, the name for socks5h). Sets the stream's data pointer.
  void start(uv_stream_t* stream, const rules::UpstreamProxy& parent, std::string authority, std::string name,
             std::optional<rules::IpAddr> addr, uint16_t port, Done done);
  // No callback after this; the caller closes the stream (or takes it, once Ok).
  void stop();

 private:
  enum class Step { Idle, HttpHead, SocksMethod, SocksAuth, SocksReplyHead, SocksReplyRest };
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  bool send(std::string bytes);  // false: failed and finished
  void expect(Step step, size_t bytes);
  void on_complete();
  void finish(Result r, std::string error, int status = 0);
  size_t http_head_want() const;

  uv_stream_t* stream_ = nullptr;
  const rules::UpstreamProxy* parent_ = nullptr;
  std::string request_;  // the SOCKS5 CONNECT, sent after the method (and auth) exchange
  Step step_ = Step::Idle;
  std::string buf_;
  size_t have_ = 0;
  size_t need_ = 0;
  Done done_;
};

}  // namespace sluice::proxy
