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
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
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

void ResponseReader::reset(bool head_only) {
  *this = ResponseReader{};
  head_only_ = head_only;
}

void ResponseReader::count_body(const char* p, uint64_t n) {
  body_bytes_ += n;
  if (body_text_.size() < kBodyTextBytes)
    body_text_.append(p, static_cast<size_t>(std::min<uint64_t>(n, kBodyTextBytes - body_text_.size())));
}

void ResponseReader::fail(std::string why, bool truncated) {
  state_ = State::Error;
  error_ = std::move(why);
  truncated_ = truncated;
}

bool ResponseReader::parse_head() {
  std::string_view h = head_;
  size_t eol = h.find("\r\n");
  std::string_view line = h.substr(0, eol);
  // "HTTP/1.x SSS reason"
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    fail("bad status line");
    return false;
  }
  auto code = parse_u64(line.substr(9, 3));
  if (!code || *code < 100) {
    fail("bad status code");
    return false;
  }
  status_ = static_cast<int>(*code);
  Framing f = read_framing(h.substr(eol + 2));
  if (f.bad) {
    fail("bad header");
    return false;
  }
  content_length_ = f.content_length;
  chunked_ = f.chunked;
  close_ = f.conn_close || (line[7] == '0' && !f.conn_keep_alive);
  return true;
}

size_t ResponseReader::feed(const char* data, size_t n) {
  size_t used = 0;
  while (used < n && (state_ == State::Head || state_ == State::Body)) {
    if (state_ == State::Head) {
      size_t old = head_.size();
      size_t take = std::min(n - used, kMaxHeadBytes + 4 - old);
      head_.append(data + used, take);
      size_t end = find_head_end(head_, old >= 3 ? old - 3 : 0);
      if (end == std::string::npos) {
        used += take;
        if (head_.size() > kMaxHeadBytes) fail("head too large");
        continue;
      }
      used += end - old;
      head_.resize(end);
      if (!parse_head()) break;
      if (status_ >= 100 && status_ < 200 && status_ != 101) {  // interim reply: another head follows
        head_.clear();
        continue;
      }
      if (head_only_ || status_ == 204 || status_ == 304) {
        state_ = State::Done;
      } else if (chunked_) {
        state_ = State::Body;
        chunk_ = Chunk::Size;
      } else if (content_length_ >= 0) {
        remaining_ = static_cast<uint64_t>(content_length_);
        state_ = remaining_ ? State::Body : State::Done;
      } else {
        state_ = State::Body;  // close-delimited
      }
      continue;
    }
    // Body.
    if (chunked_) {
      used += feed_chunked(data + used, n - used);
    } else if (content_length_ >= 0) {
      uint64_t take = std::min<uint64_t>(remaining_, n - used);
      remaining_ -= take;
      count_body(data + used, take);
      used += take;
      if (remaining_ == 0) state_ = State::Done;
    } else {
      count_body(data + used, n - used);
      used = n;
    }
  }
  return used;
}

size_t ResponseReader::feed_chunked(const char* data, size_t n) {
  size_t used = 0;
  while (used < n && state_ == State::Body) {
    if (chunk_ == Chunk::Data) {
      uint64_t take = std::min<uint64_t>(remaining_, n - used);
      remaining_ -= take;
      count_body(data + used, take);
      used += take;
      if (remaining_ == 0) chunk_ = Chunk::DataEnd;
      continue;
    }
    // Size, DataEnd and Trailer are line-oriented.
    char c = data[used++];
    if (c != '\n') {
      if (line_.size() > 1024) return fail("chunk line too long"), used;
      line_.push_back(c);
      continue;
    }
    std::string_view line = line_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (chunk_ == Chunk::DataEnd) {
      if (!line.empty()) return fail("missing CRLF after chunk"), used;
      chunk_ = Chunk::Size;
    } else if (chunk_ == Chunk::Size) {
      line = line.substr(0, line.find(';'));
      line = trim(line);
      if (line.empty() || line.size() > 15) return fail("bad chunk size"), used;
      uint64_t size = 0;
      for (char h : line) {
        int d = std::isdigit(static_cast<unsigned char>(h)) ? h - '0'
                : (h >= 'a' && h <= 'f')                    ? h - 'a' + 10
                : (h >= 'A' && h <= 'F')                    ? h - 'A' + 10
                                                            : -1;
        if (d < 0) return fail("bad chunk size"), used;
        size = size * 16 + static_cast<uint64_t>(d);
      }
      remaining_ = size;
      chunk_ = size ? Chunk::Data : Chunk::Trailer;
    } else {  // Trailer: lines until an empty one
      if (line.empty()) state_ = State::Done;
    }
    line_.clear();
  }
  return used;
}

void ResponseReader::on_eof() {
  if (state_ == State::Done || state_ == State::Error) return;
  if (state_ == State::Body && !chunked_ && content_length_ < 0) {
    state_ = State::Done;
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
