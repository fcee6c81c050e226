#include "sandbox-glue/first_bytes.hpp"

#include <cctype>
#include <cstdint>

#include "rules/host.hpp"

namespace sluice::glue {

namespace {

// The longest method token taken for an HTTP request (the registered ones are shorter).
constexpr size_t kMaxMethod = 15;

ClaimedName claimed_none() {
  ClaimedName c;
  c.state = ClaimedName::State::None;
  return c;
}

ClaimedName claimed_found(std::string_view raw, const char* via) {
  auto host = rules::canonicalize_host(raw);
  if (!host.ok() || host->kind == rules::HostKind::Ip) return claimed_none();
  ClaimedName c;
  c.state = ClaimedName::State::Found;
  c.name = host->text;
  c.via = via;
  return c;
}

size_t first_bytes_u16(std::string_view s, size_t at) {
  return (static_cast<size_t>(static_cast<uint8_t>(s[at])) << 8) | static_cast<uint8_t>(s[at + 1]);
}

// The ClientHello body (after the 4-byte handshake header) -> its server_name.
ClaimedName sni_of(std::string_view h) {
  size_t at = 2 + 32;  // client_version, random
  if (h.size() < at + 1) return claimed_none();
  at += 1 + static_cast<uint8_t>(h[at]);  // session_id
  if (h.size() < at + 2) return claimed_none();
  at += 2 + first_bytes_u16(h, at);  // cipher_suites
  if (h.size() < at + 1) return claimed_none();
  at += 1 + static_cast<uint8_t>(h[at]);  // compression_methods
  if (h.size() < at + 2) return claimed_none();
  size_t end = at + 2 + first_bytes_u16(h, at);
  at += 2;
  if (end > h.size()) return claimed_none();
  while (at + 4 <= end) {
    size_t type = first_bytes_u16(h, at), len = first_bytes_u16(h, at + 2);
    at += 4;
    if (at + len > end) return claimed_none();
    if (type == 0) {  // server_name: list length, then (type 0: host_name, length, name)
      std::string_view ext = h.substr(at, len);
      if (ext.size() < 5 || ext[2] != 0) return claimed_none();
      size_t n = first_bytes_u16(ext, 3);
      if (5 + n > ext.size()) return claimed_none();
      return claimed_found(ext.substr(5, n), "sni");
    }
    at += len;
  }
  return claimed_none();
}

ClaimedName from_tls(std::string_view b) {
  // A handshake record (22), TLS 1.x, holding a ClientHello (1). The hello may span records;
  // it is gathered from consecutive handshake records.
  std::string hello;
  size_t at = 0;
  while (at + 5 <= b.size()) {
    if (b[at] != 22 || b[at + 1] != 3) return claimed_none();
    size_t len = first_bytes_u16(b, at + 3);
    if (at + 5 + len > b.size()) break;
    hello.append(b.substr(at + 5, len));
    at += 5 + len;
    if (hello.size() >= 4) {
      if (hello[0] != 1) return claimed_none();
      size_t body = (static_cast<size_t>(static_cast<uint8_t>(hello[1])) << 16) |
                    (static_cast<size_t>(static_cast<uint8_t>(hello[2])) << 8) | static_cast<uint8_t>(hello[3]);
      if (body + 4 > kMaxFirstBytes) return claimed_none();
      if (hello.size() >= body + 4) return sni_of(std::string_view(hello).substr(4, body));
    }
  }
  if (b.size() >= kMaxFirstBytes) return claimed_none();
  return {};
}

ClaimedName from_http(std::string_view b) {
  // "METHOD SP": an upper-case token of at most kMaxMethod letters, then a space. The limit is
  // checked before the space, so the verdict does not depend on how the bytes arrive.
  size_t sp = 0;
  while (sp < b.size() && sp <= kMaxMethod && std::isupper(static_cast<unsigned char>(b[sp]))) ++sp;
  if (sp > kMaxMethod) return claimed_none();
  if (sp == b.size()) return ClaimedName{};
  if (sp == 0 || b[sp] != ' ') return claimed_none();
  size_t head_end = b.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return b.size() >= kMaxFirstBytes ? claimed_none() : ClaimedName{};
  std::string_view head = b.substr(0, head_end + 2);
  size_t line = head.find("\r\n");
  while (line != std::string_view::npos && line + 2 < head.size()) {
    size_t start = line + 2, stop = head.find("\r\n", start);
    std::string_view l = head.substr(start, stop - start);
    if (l.size() > 5 && (l[0] == 'H' || l[0] == 'h') && (l.substr(1, 4) == "ost:" || l.substr(1, 4) == "OST:")) {
      std::string_view v = l.substr(5);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      // Host: name[:port] or [v6]:port
      if (!v.empty() && v.front() == '[') return claimed_none();
      if (size_t colon = v.rfind(':'); colon != std::string_view::npos) v = v.substr(0, colon);
      return claimed_found(v, "host");
    }
    line = stop;
  }
  return claimed_none();
}

}  // namespace

bool looks_like_http_request(std::string_view b) {
  size_t sp = 0;
  while (sp < b.size() && sp <= kMaxMethod && std::isupper(static_cast<unsigned char>(b[sp]))) ++sp;
  return sp > 0 && sp <= kMaxMethod && sp < b.size() && b[sp] == ' ';
}

ClaimedName claimed_name(std::string_view bytes) {
  if (bytes.empty()) return {};
  if (bytes.size() > kMaxFirstBytes) bytes = bytes.substr(0, kMaxFirstBytes);
  if (bytes[0] == 22) return from_tls(bytes);
  return from_http(bytes);
}

}  // namespace sluice::glue
