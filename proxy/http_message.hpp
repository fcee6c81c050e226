// What a proxy rebuilds rather than forwards raw: the request line and Host
// from a parsed absolute URL, header lists without hop-by-hop fields, and its
// own error responses.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http_parser.hpp"
#include "rules/result.hpp"

namespace sluice::proxy {

struct AbsoluteUrl {
  std::string host;  // raw host, brackets stripped (canonicalised by the caller)
  uint16_t port = 80;
  bool port_explicit = false;
  std::string path;  // origin-form: path plus "?query", never empty
};

// "http://host[:port][/path][?query][#frag]"; userinfo is dropped (the host after
// '@' is what is dialed and judged). Other schemes and origin-form are errors.
rules::Result<AbsoluteUrl> parse_absolute_url(std::string_view target);

// A request inside an inspected TLS tunnel: origin-form ("/path?q", the host is then
// empty: the tunnel's) or "https://host[:port]/path" (port 443 unless given).
rules::Result<AbsoluteUrl> parse_inspected_target(std::string_view target);

// Copies end-to-end headers: drops hop-by-hop fields (RFC 9110 7.6.1, plus
// Proxy-* and Keep-Alive), every field named in Connection, and framing fields
// (Content-Length, Transfer-Encoding) which the caller re-emits itself.
HeaderList end_to_end_headers(const HeaderList& in);

// Request head for the upstream: origin-form target, Host rebuilt from the URL.
// `upgrade` (the request's Upgrade value) keeps a protocol upgrade asked for.
std::string build_upstream_request(const HttpHead& req, const AbsoluteUrl& url, const std::string& host_header,
                                   std::string_view upgrade = {});

// Response head for the client; `chunked` re-frames the body, `close` adds Connection: close,
// `upgrade` (a 101's Upgrade value) passes the protocol switch on.
std::string build_client_response(const HttpHead& resp, bool chunked, bool close, std::string_view upgrade = {});

// sluice's own reply: status line, X-Sluice-Reason, Connection: close, text body.
// `extra_headers`: whole header lines ("Name: value\r\n"), e.g. Proxy-Authenticate for a 407.
// `close`: says Connection: close (sluice closes after it); false keeps the connection.
std::string error_response(int status, std::string_view reason_code, std::string_view body_line,
                           std::string_view extra_headers = {}, bool close = true);

const char* status_text(int status);

}  // namespace sluice::proxy
