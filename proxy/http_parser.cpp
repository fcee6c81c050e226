#include "proxy/http_parser.hpp"

#include <strings.h>

#include <cctype>
#include <vector>

namespace sluice::proxy {

namespace {
HttpParser* self(llhttp_t* p) { return static_cast<HttpParser*>(p->data); }

// RFC 9110 token characters; llhttp 8 lets a space before the colon through.
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}
}  // namespace

const std::string* HttpHead::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return &v;
  }
  return nullptr;
}

HttpParser::HttpParser(Kind kind, Limits limits)
    : kind_(kind),
      max_head_bytes_(limits.max_head_bytes),
      max_headers_(limits.max_headers),
      max_target_bytes_(limits.max_target_bytes) {
  llhttp_init(&parser_, kind == Kind::Request ? HTTP_REQUEST : HTTP_RESPONSE, &settings());
  parser_.data = this;
}

const llhttp_settings_t& HttpParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t t;
    llhttp_settings_init(&t);
    t.on_message_begin = cb_message_begin;
    t.on_url = cb_url;
    t.on_status = cb_status;
    t.on_method = cb_method;
    t.on_method_complete = cb_method_complete;
    t.on_header_field = cb_header_field;
    t.on_header_value = cb_header_value;
    t.on_header_field_complete = cb_header_field_complete;
    t.on_header_value_complete = cb_header_value_complete;
    t.on_headers_complete = cb_headers_complete;
    t.on_body = cb_body;
    t.on_message_complete = cb_message_complete;
    return t;
  }();
  return s;
}

int HttpParser::cb_message_begin(llhttp_t* p) {
  auto* s = self(p);
  s->head_ = HttpHead{};
  s->head_bytes_ = 0;
  s->in_head_ = true;
  s->started_ = true;
  s->header_value_open_ = false;
  s->field_since_value_ = false;
  return 0;
}

// PRI is the HTTP/2 connection preface, not an HTTP/1.1 method: forwarded, it would reach
// an origin as the start of an h2 connection.
int HttpParser::cb_method_complete(llhttp_t* p) {
  if (p->method != HTTP_PRI) return 0;
  self(p)->callback_error_ = "PRI is the HTTP/2 preface, not a request method";
  return HPE_USER;
}

int HttpParser::cb_url(llhttp_t* p, const char* at, size_t n) {
  auto* s = self(p);
  s->head_.target.append(at, n);
  if (s->head_.target.size() > s->max_target_bytes_) {
    s->limit_status_ = 414;
    llhttp_set_error_reason(p, "request target longer than max_request_line_bytes");
    return HPE_USER;
  }
  return 0;
}

int HttpParser::cb_status(llhttp_t* p, const char* at, size_t n) {
  self(p)->head_.reason.append(at, n);
  return 0;
}

int HttpParser::cb_method(llhttp_t* p, const char* at, size_t n) {
  self(p)->head_.method.append(at, n);
  return 0;
}

int HttpParser::cb_header_field(llhttp_t* p, const char* at, size_t n) {
  auto* s = self(p);
  if (s->head_.headers.empty() || s->header_value_open_) {
    if (s->kind_ == Kind::Request && s->head_.headers.size() >= s->max_headers_) {
      s->limit_status_ = 431;
      llhttp_set_error_reason(p, "more header fields than max_headers");
      return HPE_USER;
    }
    s->head_.headers.emplace_back();
    s->header_value_open_ = false;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!is_tchar(static_cast<unsigned char>(at[i]))) {
      llhttp_set_error_reason(p, "invalid character in header name");
      return HPE_USER;
    }
  }
  s->head_.headers.back().first.append(at, n);
  s->field_since_value_ = true;
  return 0;
}

// llhttp 8 lets a line that starts with ':' through: an empty name whose value
// would otherwise be glued onto the previous header.
int HttpParser::cb_header_field_complete(llhttp_t* p) {
  auto* s = self(p);
  if (!s->field_since_value_ || s->head_.headers.empty() || s->head_.headers.back().first.empty()) {
    s->callback_error_ = "empty header name";
    return HPE_USER;
  }
  return 0;
}

int HttpParser::cb_header_value_complete(llhttp_t* p) {
  self(p)->field_since_value_ = false;
  return 0;
}

int HttpParser::cb_header_value(llhttp_t* p, const char* at, size_t n) {
  auto* s = self(p);
  if (!s->field_since_value_ || s->head_.headers.empty()) {
    llhttp_set_error_reason(p, "empty header name");
    return HPE_USER;
  }
  s->header_value_open_ = true;
  s->head_.headers.back().second.append(at, n);
  return 0;
}

int HttpParser::cb_headers_complete(llhttp_t* p) {
  auto* s = self(p);
  auto& h = s->head_;
  h.http_major = p->http_major;
  h.http_minor = p->http_minor;
  if (s->kind_ == Kind::Response) h.status = p->status_code;
  h.keep_alive = llhttp_should_keep_alive(p) != 0;
  h.chunked = (p->flags & F_CHUNKED) != 0;
  h.has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
  h.content_length = h.has_content_length ? p->content_length : 0;
  h.upgrade = p->upgrade != 0;
  // RFC 9110 15.2: a 1xx has no body. llhttp 8 would read one after a Content-Length,
  // and the next response would start somewhere else for sluice than for a client.
  if (s->kind_ == Kind::Response && h.status >= 100 && h.status < 200 && h.status != 101 &&
      (h.chunked || h.has_content_length || h.header("transfer-encoding") != nullptr)) {
    s->callback_error_ = "1xx response with a message body";
    return HPE_USER;
  }
  if (s->kind_ == Kind::Request) {
    if (const char* bad = check_request_transfer_coding(h, &s->callback_status_)) {
      s->callback_error_ = bad;
      return HPE_USER;
    }
  }
  s->in_head_ = false;
  // CONNECT runs on to HPE_PAUSED_UPGRADE; everything else stops here to be judged.
  if (s->kind_ == Kind::Request && p->method == HTTP_CONNECT) return 0;
  s->paused_for_head_ = true;
  return HPE_PAUSED;
}

int HttpParser::cb_body(llhttp_t* p, const char* at, size_t n) {
  auto* s = self(p);
  if (s->on_body) s->on_body(at, n);
  return 0;
}

int HttpParser::cb_message_complete(llhttp_t* p) {
  auto* s = self(p);
  s->started_ = false;
  // An upgrade (CONNECT) must reach HPE_PAUSED_UPGRADE, so do not pause here.
  if (p->upgrade) return 0;
  s->paused_for_done_ = true;
  return HPE_PAUSED;
}

// RFC 9112 6.1/6.3: a request's framing is `chunked` as its one final coding, or no
// Transfer-Encoding at all. sluice re-frames bodies itself, so it cannot carry another
// coding through: a final coding other than chunked is malformed (400), other codings
// before chunked are well-formed but unsupported (501). Either way nothing is forwarded.
const char* HttpParser::check_request_transfer_coding(const HttpHead& h, int* status) {
  std::vector<std::string> codings;
  for (const auto& [k, v] : h.headers) {
    if (k.size() != 17 || strncasecmp(k.data(), "transfer-encoding", 17) != 0) continue;
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      std::string c = v.substr(start, comma - start);
      const size_t b = c.find_first_not_of(" \t"), e = c.find_last_not_of(" \t");
      c = b == std::string::npos ? std::string() : c.substr(b, e - b + 1);
      for (char& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      codings.push_back(std::move(c));
      start = comma + 1;
    }
  }
  if (codings.empty()) return nullptr;
  *status = 400;
  for (const auto& c : codings)
    if (c.empty()) return "empty transfer coding";
  if (codings.back() != "chunked") return "request Transfer-Encoding must end with chunked";
  if (codings.size() == 1) return nullptr;
  for (size_t i = 0; i + 1 < codings.size(); ++i)
    if (codings[i] == "chunked") return "chunked applied more than once";
  *status = 501;
  return "transfer codings other than chunked are not supported";
}

bool HttpParser::body_until_eof() const { return llhttp_message_needs_eof(&parser_) != 0; }

void HttpParser::resume() {
  if (paused_for_head_) {
    paused_for_head_ = false;
    if (kind_ == Kind::Response) {
      // A response to HEAD, 1xx, 204 and 304 carry no body (RFC 9112 6.3). llhttp 8 needs
      // telling about HEAD, and would read a 204's or 304's Content-Length bytes as a body
      // that a client reads as the start of the next response.
      const int st = head_.status;
      if (head_response_ || st == 204 || st == 304 || (st >= 100 && st < 200)) parser_.flags |= F_SKIPBODY;
    }
    llhttp_resume(&parser_);
  } else if (paused_for_done_) {
    paused_for_done_ = false;
    prev_head_byte_ = 0;
    llhttp_resume(&parser_);
  }
}

void HttpParser::reset() {
  llhttp_reset(&parser_);
  head_ = HttpHead{};
  head_bytes_ = 0;
  in_head_ = started_ = header_value_open_ = field_since_value_ = false;
  paused_for_head_ = paused_for_done_ = false;
  prev_head_byte_ = 0;
  error_status_ = 0;
  limit_status_ = 0;
  error_message_.clear();
  callback_error_ = nullptr;
  callback_status_ = 400;
}

HttpParser::Result HttpParser::fail(int status, std::string message, size_t consumed) {
  error_status_ = status;
  error_message_ = std::move(message);
  return {Event::Error, consumed};
}

HttpParser::Result HttpParser::feed(const char* data, size_t len) {
  if (error_status_ != 0) return {Event::Error, 0};
  const bool counting_head = in_head_ || !started_;
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  size_t consumed = len;
  if (err != HPE_OK) {
    const char* pos = llhttp_get_error_pos(&parser_);
    if (pos != nullptr && pos >= data && pos <= data + len) consumed = static_cast<size_t>(pos - data);
  }
  // Head bytes count toward the limit until the head is complete.
  if (counting_head) {
    if (kind_ == Kind::Request) {
      if (const char* bad = scan_head_bytes(data, consumed)) return fail(400, bad, consumed);
    }
    head_bytes_ += consumed;
    if (head_bytes_ > max_head_bytes_) return fail(431, "request head larger than max_header_bytes", consumed);
  }
  switch (err) {
    case HPE_OK: return {Event::NeedMore, consumed};
    case HPE_PAUSED:
      if (paused_for_head_) return {Event::Head, consumed};
      return {Event::Done, consumed};
    case HPE_PAUSED_UPGRADE: return {Event::Upgrade, consumed};
    default:
      if (limit_status_ != 0) return fail(limit_status_, parser_.reason ? parser_.reason : "limit", consumed);
      if (callback_error_ != nullptr) return fail(callback_status_, callback_error_, consumed);
      return fail(400, std::string(llhttp_errno_name(err)) + ": " + (parser_.reason ? parser_.reason : "bad message"),
                  consumed);
  }
}

// llhttp 8 accepts obs-fold and bare LF line ends; RFC 9112 lets a recipient
// reject them, and a proxy must, so the two ends of a connection cannot
// disagree on where a header ends.
const char* HttpParser::scan_head_bytes(const char* d, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    char c = d[i];
    if (prev_head_byte_ == '\r' && c != '\n') return "bare CR in request head";
    if (c == '\n' && prev_head_byte_ != '\r') return "bare LF line ending in request head";
    if (prev_head_byte_ == '\n' && (c == ' ' || c == '\t')) return "obsolete line folding in request head";
    prev_head_byte_ = c;
  }
  return nullptr;
}

HttpParser::Result HttpParser::finish() {
  llhttp_errno_t err = llhttp_finish(&parser_);
  if (err == HPE_OK) return {Event::NeedMore, 0};
  if (err == HPE_PAUSED) return {paused_for_head_ ? Event::Head : Event::Done, 0};
  return fail(502, std::string(llhttp_errno_name(err)) + ": message cut short", 0);
}

}  // namespace sluice::proxy
