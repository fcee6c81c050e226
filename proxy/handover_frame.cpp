#include "proxy/handover_frame.hpp"

namespace sluice::proxy {

namespace {

void frame_put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t frame_get_be(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[at + static_cast<size_t>(i)]);
  return v;
}

bool frame_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

ChannelMessage frame_malformed(const char* why) {
  ChannelMessage m;
  m.status = ChannelMessage::Status::Malformed;
  m.error = why;
  return m;
}

}  // namespace

std::string plain_handover_message() { return "c"; }

std::string transparent_handover_message(const TransparentStart& t) {
  if (!frame_token(t.target) || t.target.size() > kMaxHandOverTarget || !frame_token(t.original_dst) ||
      t.original_dst.size() > kMaxHandOverOriginal || t.first.size() > kMaxHandOverFirstBytes)
    return "";
  std::string body;
  frame_put_be(body, t.target.size(), 2);
  body += t.target;
  frame_put_be(body, t.original_dst.size(), 2);
  body += t.original_dst;
  body += static_cast<char>(t.first_kind);
  frame_put_be(body, t.first.size(), 4);
  body += t.first;
  std::string out = "t";
  frame_put_be(out, body.size(), 4);
  return out + body;
}

ChannelMessage parse_channel_message(std::string_view in) {
  ChannelMessage m;
  if (in.empty()) return m;
  if (in[0] == 'c') {
    m.status = ChannelMessage::Status::Plain;
    m.consumed = 1;
    return m;
  }
  if (in[0] != 't') return frame_malformed("unknown message tag");
  if (in.size() < 5) return m;
  const uint64_t len = frame_get_be(in, 1, 4);
  if (len > kMaxHandOverBody) return frame_malformed("message too long");
  if (in.size() < 5 + len) return m;
  std::string_view body = in.substr(5, len);
  size_t at = 0;
  auto field = [&](int len_bytes, size_t max, std::string& out) {
    if (body.size() - at < static_cast<size_t>(len_bytes)) return false;
    const uint64_t n = frame_get_be(body, at, len_bytes);
    at += static_cast<size_t>(len_bytes);
    if (n > max || body.size() - at < n) return false;
    out.assign(body.substr(at, n));
    at += n;
    return true;
  };
  if (!field(2, kMaxHandOverTarget, m.start.target) || !frame_token(m.start.target))
    return frame_malformed("bad target");
  if (!field(2, kMaxHandOverOriginal, m.start.original_dst) || !frame_token(m.start.original_dst))
    return frame_malformed("bad original destination");
  if (at >= body.size()) return frame_malformed("no first-bytes kind");
  const auto kind = static_cast<uint8_t>(body[at++]);
  if (kind > static_cast<uint8_t>(FirstBytesKind::Http)) return frame_malformed("unknown first-bytes kind");
  m.start.first_kind = static_cast<FirstBytesKind>(kind);
  if (!field(4, kMaxHandOverFirstBytes, m.start.first)) return frame_malformed("bad first bytes");
  if (at != body.size()) return frame_malformed("bytes after the first bytes");
  m.status = ChannelMessage::Status::Transparent;
  m.consumed = 5 + len;
  return m;
}

}  // namespace sluice::proxy
