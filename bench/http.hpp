// Just enough HTTP/1.1 for the load generator and its upstream: an incremental response reader
// on llhttp (Content-Length, chunked, and close-delimited bodies; body bytes are counted, never
// kept) and a request-head parser for the upstream. The bench room does not link proxy/: it uses
// llhttp directly, with its own callbacks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <llhttp.h>

namespace sluice::bench {

constexpr size_t kMaxHeadBytes = 64 * 1024;

class ResponseReader {
 public:
  enum class State { Head, Body, Done, Error };

  // head_only: stop after the head (a CONNECT reply: a 2xx one has no body, and any bytes that
  // follow belong to the tunnel; a refusal is judged by its status alone).
  void reset(bool head_only = false);

  // Consumes bytes, returning how many; stops early at Done or Error so the caller can hand any
  // remainder on (the tunnelled response after a CONNECT reply).
  size_t feed(const char* data, size_t n);

  // The peer closed: completes a close-delimited body, anything else becomes an Error.
  void on_eof();

  State state() const { return state_; }
  bool done() const { return state_ == State::Done; }
  int status() const { return status_; }
  int64_t content_length() const { return content_length_; }  // -1 when absent
  bool chunked() const { return chunked_; }
  bool wants_close() const { return close_; }  // Connection: close, or HTTP/1.0
  uint64_t body_bytes() const { return body_bytes_; }
  bool started() const { return state_ != State::Head || head_bytes_ > 0; }  // any byte seen
  bool truncated() const { return truncated_; }  // the Error was an early EOF, not bad framing
  const std::string& error() const { return error_; }
  // The first bytes of the body (up to kBodyTextBytes), for replies that carry a small answer
  // such as /sink's byte count.
  const std::string& body_text() const { return body_text_; }
  static constexpr size_t kBodyTextBytes = 64;

 private:
  static const llhttp_settings_t& settings();
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t n);
  static int on_message_complete(llhttp_t* p);
  void fail(std::string why, bool truncated = false);

  llhttp_t parser_{};
  State state_ = State::Head;
  bool head_only_ = false;
  size_t head_bytes_ = 0;  // bytes of the current head, bounded by kMaxHeadBytes
  int status_ = 0;
  int64_t content_length_ = -1;
  bool chunked_ = false;
  bool close_ = false;
  uint64_t body_bytes_ = 0;
  bool truncated_ = false;
  std::string error_;
  std::string body_text_;
};

struct RequestHead {
  std::string method;
  std::string target;  // as sent: origin-form "/bytes?n=1", or absolute-form "http://h:p/..."
  std::string path;    // origin-form path without the query
  std::string query;   // after '?', without it
  int minor = 1;       // HTTP/1.<minor>
  int64_t content_length = -1;
  bool chunked = false;
  bool close = false;  // Connection: close, or HTTP/1.0 without keep-alive
};

// Parses a complete head (request line through the empty line). Returns nullopt on bad syntax.
std::optional<RequestHead> parse_request_head(std::string_view head);

// The value of NAME in a query string "a=1&b=2"; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

// Finds the end of a head ("\r\n\r\n") in buf, searching from `from`; returns the offset just
// past it, or npos.
size_t find_head_end(std::string_view buf, size_t from = 0);

// A read-only buffer of kPatternBytes filler bytes for request and response bodies.
constexpr size_t kPatternBytes = 256 * 1024;
const char* pattern_bytes();

// Strict unsigned decimal; nullopt on anything else (empty, sign, overflow).
std::optional<uint64_t> parse_u64(std::string_view s);

}  // namespace sluice::bench
