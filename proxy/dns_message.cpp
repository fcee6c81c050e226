#include "proxy/dns_message.hpp"

namespace sluice::proxy::dns {

namespace {

uint16_t u16_at(std::string_view s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) | static_cast<uint8_t>(s[at + 1]));
}

void put_u16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

void put_u32(std::string& out, uint32_t v) {
  put_u16(out, static_cast<uint16_t>(v >> 16));
  put_u16(out, static_cast<uint16_t>(v & 0xffff));
}

// Header flag bits (RFC 1035 4.1.1): byte 2 is QR OPCODE(4) AA TC RD, byte 3 RA Z AD CD RCODE(4).
constexpr uint8_t kQr = 0x80;
constexpr uint8_t kOpcodeMask = 0x78;
constexpr uint8_t kTc = 0x02;
constexpr uint8_t kRd = 0x01;
constexpr uint8_t kRa = 0x80;

std::string header(uint16_t id, uint8_t flags2, Rcode r, uint16_t qd, uint16_t an) {
  std::string out;
  out.reserve(kHeaderBytes);
  put_u16(out, id);
  out += static_cast<char>(flags2);
  out += static_cast<char>(kRa | static_cast<uint8_t>(r));
  put_u16(out, qd);
  put_u16(out, an);
  put_u16(out, 0);
  put_u16(out, 0);
  return out;
}

ParsedQuery refuse(Rcode r, std::string reason) {
  ParsedQuery p;
  p.error = r;
  p.reason = std::move(reason);
  return p;
}

}  // namespace

const char* rcode_text(Rcode r) {
  switch (r) {
    case Rcode::NoError: return "NOERROR";
    case Rcode::FormErr: return "FORMERR";
    case Rcode::ServFail: return "SERVFAIL";
    case Rcode::NxDomain: return "NXDOMAIN";
    case Rcode::NotImp: return "NOTIMP";
    case Rcode::Refused: return "REFUSED";
  }
  return "?";
}

ParsedQuery parse_query(std::string_view msg) {
  if (msg.size() < kHeaderBytes) return refuse(Rcode::FormErr, "shorter than a DNS header");
  if (msg.size() > kMaxQueryBytes)
    return refuse(Rcode::FormErr, "query longer than " + std::to_string(kMaxQueryBytes) + " bytes");
  const auto flags2 = static_cast<uint8_t>(msg[2]);
  if (flags2 & kQr) return refuse(Rcode::FormErr, "a response, not a query");
  if ((flags2 & kOpcodeMask) != 0) return refuse(Rcode::NotImp, "opcode other than QUERY");
  if (flags2 & kTc) return refuse(Rcode::FormErr, "truncated query");
  if (u16_at(msg, 4) != 1) return refuse(Rcode::FormErr, "question count other than 1");
  if (u16_at(msg, 6) != 0 || u16_at(msg, 8) != 0)
    return refuse(Rcode::FormErr, "query carries answer or authority records");

  ParsedQuery p;
  Query& q = p.query;
  q.id = u16_at(msg, 0);
  q.recursion_desired = (flags2 & kRd) != 0;
  size_t pos = kHeaderBytes;
  for (;;) {
    if (pos >= msg.size()) return refuse(Rcode::FormErr, "question name runs past the message");
    const auto len = static_cast<uint8_t>(msg[pos]);
    // The question is the first name in a message, so nothing before it to point
    // at: a compression pointer there is malformed (and a loop risk), refused.
    if ((len & 0xc0) == 0xc0) return refuse(Rcode::FormErr, "compression pointer in the question name");
    if (len & 0xc0) return refuse(Rcode::FormErr, "unknown label type in the question name");
    // Wire length so far, counting the root label still to come after a non-empty one.
    const size_t wire = pos - kHeaderBytes + 1 + len + (len != 0 ? 1 : 0);
    if (wire > kMaxNameWireBytes) return refuse(Rcode::FormErr, "question name longer than 255 bytes");
    if (len == 0) {
      ++pos;
      break;
    }
    if (pos + 1 + len > msg.size()) return refuse(Rcode::FormErr, "question label runs past the message");
    if (!q.name.empty()) q.name += '.';
    for (size_t i = pos + 1; i <= pos + len; ++i) {
      auto c = static_cast<unsigned char>(msg[i]);
      if (c <= 0x20 || c >= 0x7f || c == '.')
        return refuse(Rcode::Refused, "question name has a byte other than printable ASCII");
      if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
      q.name += static_cast<char>(c);
    }
    pos += 1 + len;
  }
  if (pos + 4 > msg.size()) return refuse(Rcode::FormErr, "question type or class missing");
  q.qtype = u16_at(msg, pos);
  q.qclass = u16_at(msg, pos + 2);
  pos += 4;
  if (q.qclass != kClassIn) return refuse(Rcode::NotImp, "question class other than IN");
  q.question.assign(msg.substr(kHeaderBytes, pos - kHeaderBytes));
  // Anything after the question (an EDNS OPT record) is ignored: the answer is
  // small enough for plain DNS, so none of its options matter.
  p.ok = true;
  return p;
}

std::string answer_addresses(const Query& q, const std::vector<rules::IpAddr>& addrs, uint32_t ttl) {
  const bool want_v6 = q.qtype == type::AAAA;
  const bool want_addr = q.qtype == type::A || want_v6;
  std::string records;
  uint16_t count = 0;
  if (want_addr) {
    for (const auto& a : addrs) {
      if (a.v6 != want_v6) continue;
      if (count == kMaxAnswerAddresses) break;
      put_u16(records, 0xc000 | kHeaderBytes);  // the name: a pointer to the question's
      put_u16(records, q.qtype);
      put_u16(records, kClassIn);
      put_u32(records, ttl);
      const size_t n = a.v6 ? 16 : 4;
      put_u16(records, static_cast<uint16_t>(n));
      records.append(reinterpret_cast<const char*>(a.bytes.data()), n);
      ++count;
    }
  }
  std::string out = header(q.id, kQr | (q.recursion_desired ? kRd : 0), Rcode::NoError, 1, count);
  out += q.question;
  out += records;
  return out;
}

std::string answer_rcode(const Query& q, Rcode r) {
  std::string out = header(q.id, kQr | (q.recursion_desired ? kRd : 0), r, 1, 0);
  out += q.question;
  return out;
}

std::optional<std::string> error_reply(std::string_view msg, Rcode r) {
  if (msg.size() < kHeaderBytes) return std::nullopt;
  const auto flags2 = static_cast<uint8_t>(msg[2]);
  if (flags2 & kQr) return std::nullopt;
  return header(u16_at(msg, 0), static_cast<uint8_t>(kQr | (flags2 & (kOpcodeMask | kRd))), r, 0, 0);
}

Frame parse_tcp_frame(std::string_view in, size_t max_message) {
  Frame f;
  if (in.size() < 2) return f;
  const size_t len = u16_at(in, 0);
  if (len == 0 || len > max_message) {
    f.status = FrameStatus::Error;
    f.error =
        "DNS-over-TCP frame of " + std::to_string(len) + " bytes (1.." + std::to_string(max_message) + " accepted)";
    return f;
  }
  if (in.size() < 2 + len) return f;
  f.status = FrameStatus::Done;
  f.consumed = 2 + len;
  f.message = in.substr(2, len);
  return f;
}

std::string tcp_frame(std::string_view msg) {
  std::string out;
  out.reserve(2 + msg.size());
  put_u16(out, static_cast<uint16_t>(msg.size()));
  out += msg;
  return out;
}

}  // namespace sluice::proxy::dns
