#include "bench/http.hpp"

#include <algorithm>
#include <cctype>

namespace sluice::bench {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// True when the comma-separated list holds TOKEN (case-insensitive).
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// The framing headers shared by requests and responses.
struct Framing {
  int64_t content_length = -1;
  bool chunked = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool bad = false;
};

// Walks the header lines of a head (everything after the first line).
Framing read_framing(std::string_view lines) {
  Framing f;
  while (!lines.empty()) {
    size_t eol = lines.find('\n');
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      f.bad = true;
      continue;
    }
    std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      auto n = parse_u64(value);
      if (!n || (f.content_length >= 0 && static_cast<uint64_t>(f.content_length) != *n) ||
          *n > static_cast<uint64_t>(INT64_MAX))
        f.bad = true;
      else
        f.content_length = static_cast<int64_t>(*n);
    } else if (iequals(name, "transfer-encoding")) {
      f.chunked = has_token(value, "chunked");
    } else if (iequals(name, "connection") || iequals(name, "proxy-connection")) {
      if (has_token(value, "close")) f.conn_close = true;
      if (has_token(value, "keep-alive")) f.conn_keep_alive = true;
    }
  }
  return f;
}

}  // namespace

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

const char* pattern_bytes() {
  static const std::string buf = [] {
    std::string b(kPatternBytes, '\0');
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>('a' + i % 26);
    return b;
  }();
  return buf.data();
}

size_t find_head_end(std::string_view buf, size_t from) {
  size_t pos = buf.find("\r\n\r\n", from);
  return pos == std::string_view::npos ? pos : pos + 4;
}

const llhttp_settings_t& ResponseReader::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t t;
    llhttp_settings_init(&t);
    t.on_headers_complete = &ResponseReader::on_headers_complete;
    t.on_body = &ResponseReader::on_body;
    t.on_message_complete = &ResponseReader::on_message_complete;
    return t;
  }();
  return s;
}

void ResponseReader::reset(bool head_only) {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings());
  state_ = State::Head;
  head_only_ = head_only;
  head_bytes_ = 0;
  status_ = 0;
  content_length_ = -1;
  chunked_ = close_ = truncated_ = false;
  body_bytes_ = 0;
  error_.clear();
  body_text_.clear();
}

void ResponseReader::fail(std::string why, bool truncated) {
  state_ = State::Error;
  error_ = std::move(why);
  truncated_ = truncated;
}

int ResponseReader::on_headers_complete(llhttp_t* p) {
  auto* r = static_cast<ResponseReader*>(p->data);
  r->status_ = p->status_code;
  if (r->status_ < 100) {
    r->fail("bad status code");
    return -1;
  }
  r->content_length_ = (p->flags & F_CONTENT_LENGTH) ? static_cast<int64_t>(p->content_length) : -1;
  r->chunked_ = (p->flags & F_CHUNKED) != 0;
  r->close_ = (p->flags & F_CONNECTION_CLOSE) || (p->http_minor == 0 && !(p->flags & F_CONNECTION_KEEP_ALIVE));
  if (r->status_ < 200 && r->status_ != 101) return 0;  // interim reply: another head follows
  r->state_ = State::Body;
  if (r->head_only_) {
    r->state_ = State::Done;
    return HPE_PAUSED;  // the bytes after the head are the caller's (the tunnel)
  }
  return 0;
}

int ResponseReader::on_body(llhttp_t* p, const char* at, size_t n) {
  auto* r = static_cast<ResponseReader*>(p->data);
  r->body_bytes_ += n;
  if (r->body_text_.size() < kBodyTextBytes)
    r->body_text_.append(at, std::min(n, kBodyTextBytes - r->body_text_.size()));
  return 0;
}

int ResponseReader::on_message_complete(llhttp_t* p) {
  auto* r = static_cast<ResponseReader*>(p->data);
  if (r->state_ == State::Head) {  // an interim reply ended
    r->head_bytes_ = 0;
    return 0;
  }
  r->state_ = State::Done;
  return HPE_PAUSED;  // what follows is the next response's, or the caller's
}

size_t ResponseReader::feed(const char* data, size_t n) {
  if (state_ == State::Done || state_ == State::Error || n == 0) return 0;
  if (parser_.settings == nullptr) reset(head_only_);  // never reset: a fresh reader
  parser_.data = this;                                 // the reader may have moved since the last call
  const bool in_head = state_ == State::Head;
  llhttp_errno_t err = llhttp_execute(&parser_, data, n);
  size_t used = n;
  if (err != HPE_OK) {
    const char* pos = llhttp_get_error_pos(&parser_);
    if (pos != nullptr && pos >= data && pos <= data + n) used = static_cast<size_t>(pos - data);
  }
  if (err == HPE_PAUSED_UPGRADE) {
    state_ = State::Done;
  } else if (err != HPE_OK && err != HPE_PAUSED && state_ != State::Error) {
    fail(std::string(llhttp_errno_name(err)) + ": " + (parser_.reason ? parser_.reason : "bad response"));
  }
  if (in_head && state_ == State::Head) {
    head_bytes_ += used;
    if (head_bytes_ > kMaxHeadBytes) fail("head too large");
  }
  return used;
}

void ResponseReader::on_eof() {
  if (state_ == State::Done || state_ == State::Error) return;
  if (state_ == State::Body && !chunked_ && content_length_ < 0) {
    state_ = State::Done;  // a close-delimited body ends here
    return;
  }
  fail(state_ == State::Head ? "EOF in head" : "EOF in body", true);
}

std::optional<RequestHead> parse_request_head(std::string_view h) {
  RequestHead r;
  size_t eol = h.find("\r\n");
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view line = h.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return std::nullopt;
  std::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || !std::isdigit(static_cast<unsigned char>(version[7])))
    return std::nullopt;
  r.minor = version[7] - '0';
  r.method = std::string(line.substr(0, sp1));
  r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  if (r.method.empty() || r.target.empty()) return std::nullopt;
  std::string_view t = r.target;
  if (t.rfind("http://", 0) == 0) {  // absolute-form: keep the path
    size_t slash = t.find('/', 7);
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
  }
  size_t q = t.find('?');
  r.path = std::string(t.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(t.substr(q + 1));
  Framing f = read_framing(h.substr(eol + 2));
  if (f.bad) return std::nullopt;
  r.content_length = f.content_length;
  r.chunked = f.chunked;
  r.close = f.conn_close || (r.minor == 0 && !f.conn_keep_alive);
  return r;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) == name) return std::string(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace sluice::bench
