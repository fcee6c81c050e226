// llhttp behind a feed() that stops at the two points a proxy must act on:
// after a message head (to judge it) and after a message end (to sequence
// keep-alive exchanges). Strict: no lenient flags are ever set.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <llhttp.h>

namespace sluice::proxy {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpHead {
  // Request
  std::string method;
  std::string target;  // request-target as sent
  // Response
  int status = 0;
  std::string reason;
  int http_major = 1;
  int http_minor = 1;
  HeaderList headers;
  bool keep_alive = true;
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool upgrade = false;  // CONNECT, or an Upgrade the parser switched on

  const std::string* header(std::string_view name) const;  // case-insensitive, first
};

class HttpParser {
 public:
  enum class Kind { Request, Response };
  enum class Event {
    NeedMore,  // everything consumed, message not at a stopping point
    Head,      // a head is complete: head() is valid; call resume() then feed the rest
    Done,      // a message ended; call resume() before feeding the next one
    Upgrade,   // CONNECT or upgrade: the bytes after `consumed` are not HTTP
    Error,     // error_status()/error_message() say why; the connection must close
  };
  struct Result {
    Event event;
    size_t consumed;
  };

  // Limits on a head; the request line and header count apply to requests.
  struct Limits {
    size_t max_head_bytes = 65536;
    size_t max_headers = 100;
    size_t max_target_bytes = 8192;
  };
  HttpParser(Kind kind, size_t max_head_bytes) : HttpParser(kind, Limits{max_head_bytes, 100, 8192}) {}
  HttpParser(Kind kind, Limits limits);
  ~HttpParser() = default;
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  // Body bytes (de-chunked) are passed to `on_body` during feed().
  std::function<void(const char*, size_t)> on_body;

  Result feed(const char* data, size_t len);
  // Call at EOF from the peer: a response delimited by close ends here.
  Result finish();
  void resume();
  // Back to the start state, as for a new connection.
  void reset();
  // For responses: the next response answers a HEAD request (no body).
  void expect_head_response(bool v) { head_response_ = v; }

  const HttpHead& head() const { return head_; }
  HttpHead& head() { return head_; }
  bool message_started() const { return started_; }
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }
  // True when the message body runs until the connection closes.
  bool body_until_eof() const;

 private:
  static int cb_message_begin(llhttp_t*);
  static int cb_url(llhttp_t*, const char*, size_t);
  static int cb_status(llhttp_t*, const char*, size_t);
  static int cb_method(llhttp_t*, const char*, size_t);
  static int cb_method_complete(llhttp_t*);
  static int cb_header_field(llhttp_t*, const char*, size_t);
  static int cb_header_value(llhttp_t*, const char*, size_t);
  static int cb_header_field_complete(llhttp_t*);
  static int cb_header_value_complete(llhttp_t*);
  static int cb_headers_complete(llhttp_t*);
  static int cb_body(llhttp_t*, const char*, size_t);
  static int cb_message_complete(llhttp_t*);
  Result fail(int status, std::string message, size_t consumed);
  const char* scan_head_bytes(const char* d, size_t n);
  static const char* check_request_transfer_coding(const HttpHead& h, int* status);

  // The callbacks are the same for every parser: one table for the process (llhttp keeps a
  // pointer to it), not a copy in each of the two parsers a session holds.
  static const llhttp_settings_t& settings();

  llhttp_t parser_{};
  Kind kind_;
  size_t max_head_bytes_;
  size_t max_headers_;
  size_t max_target_bytes_;
  size_t head_bytes_ = 0;
  bool in_head_ = false;
  bool started_ = false;
  bool header_value_open_ = false;
  bool field_since_value_ = false;        // a header name began since the last value ended
  int callback_status_ = 400;             // the status that goes with callback_error_
  const char* callback_error_ = nullptr;  // llhttp replaces the reason of *_complete callbacks
  bool head_response_ = false;
  bool paused_for_head_ = false;
  bool paused_for_done_ = false;
  char prev_head_byte_ = 0;
  int error_status_ = 0;
  int limit_status_ = 0;  // set by a callback that stopped the parser on a limit
  std::string error_message_;
  HttpHead head_;
};

}  // namespace sluice::proxy
