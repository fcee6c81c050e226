#include "proxy/socks5.hpp"

namespace sluice::proxy::socks5 {

namespace {
uint8_t byte(std::string_view in, size_t i) { return static_cast<uint8_t>(in[i]); }
}  // namespace

const char* reply_text(Reply r) {
  switch (r) {
    case Reply::Succeeded: return "succeeded";
    case Reply::GeneralFailure: return "general SOCKS server failure";
    case Reply::NotAllowed: return "connection not allowed by ruleset";
    case Reply::NetworkUnreachable: return "network unreachable";
    case Reply::HostUnreachable: return "host unreachable";
    case Reply::ConnectionRefused: return "connection refused";
    case Reply::TtlExpired: return "TTL expired";
    case Reply::CommandNotSupported: return "command not supported";
    case Reply::AddressTypeNotSupported: return "address type not supported";
  }
  return "unknown reply";
}

// VER NMETHODS METHODS...
Greeting parse_greeting(std::string_view in) {
  Greeting g;
  if (in.size() < 2) return g;
  if (byte(in, 0) != kVersion) {
    g.status = Status::Error;
    g.error = "not SOCKS5";
    return g;
  }
  size_t n = byte(in, 1);
  if (n == 0) {
    g.status = Status::Error;
    g.error = "greeting offers no method";
    return g;
  }
  if (in.size() < 2 + n) return g;
  for (size_t i = 0; i < n; ++i) g.methods.push_back(byte(in, 2 + i));
  g.consumed = 2 + n;
  g.status = Status::Done;
  return g;
}

// VER(01) ULEN UNAME PLEN PASSWD
UserPass parse_user_pass(std::string_view in) {
  UserPass u;
  auto fail = [&](const char* why) {
    u.status = Status::Error;
    u.error = why;
    return u;
  };
  if (in.empty()) return u;
  if (byte(in, 0) != 0x01) return fail("bad username/password version");
  if (in.size() < 2) return u;
  size_t ulen = byte(in, 1);
  if (ulen == 0) return fail("empty username");
  if (in.size() < 2 + ulen + 1) return u;
  size_t plen = byte(in, 2 + ulen);
  if (plen == 0) return fail("empty password");
  if (in.size() < 3 + ulen + plen) return u;
  u.username = std::string(in.substr(2, ulen));
  u.password = std::string(in.substr(3 + ulen, plen));
  u.consumed = 3 + ulen + plen;
  u.status = Status::Done;
  return u;
}

// VER CMD RSV ATYP DST.ADDR DST.PORT
Request parse_request(std::string_view in) {
  Request r;
  auto fail = [&](Reply reply, const char* why) {
    r.status = Status::Error;
    r.error_reply = reply;
    r.error = why;
    return r;
  };
  if (in.empty()) return r;
  if (byte(in, 0) != kVersion) return fail(Reply::GeneralFailure, "request is not SOCKS5");
  if (in.size() < 2) return r;
  r.command = byte(in, 1);
  if (in.size() < 3) return r;
  if (byte(in, 2) != 0x00) return fail(Reply::GeneralFailure, "reserved byte is not zero");
  if (in.size() < 4) return r;
  size_t addr_len = 0, at = 4;
  switch (byte(in, 3)) {
    case 0x01:
      r.type = AddressType::Ipv4;
      addr_len = 4;
      break;
    case 0x04:
      r.type = AddressType::Ipv6;
      addr_len = 16;
      break;
    case 0x03:
      r.type = AddressType::Domain;
      if (in.size() < 5) return r;
      addr_len = byte(in, 4);
      at = 5;
      if (addr_len == 0) return fail(Reply::GeneralFailure, "empty domain name");
      break;
    default: return fail(Reply::AddressTypeNotSupported, "unknown address type");
  }
  if (in.size() < at + addr_len + 2) return r;
  if (r.type == AddressType::Domain) {
    r.host = std::string(in.substr(at, addr_len));
  } else {
    r.addr.v6 = r.type == AddressType::Ipv6;
    for (size_t i = 0; i < addr_len; ++i) r.addr.bytes[i] = byte(in, at + i);
    r.host = r.addr.to_string();
  }
  r.port = static_cast<uint16_t>(byte(in, at + addr_len) << 8 | byte(in, at + addr_len + 1));
  r.consumed = at + addr_len + 2;
  // Port 0 is meaningless only for CONNECT; BIND and UDP ASSOCIATE requests usually carry
  // 0.0.0.0:0, and they must reach the session to be answered "command not supported".
  if (r.port == 0 && r.command == static_cast<uint8_t>(Command::Connect)) return fail(Reply::GeneralFailure, "port 0");
  r.status = Status::Done;
  return r;
}

std::string method_reply(uint8_t method) { return {static_cast<char>(kVersion), static_cast<char>(method)}; }

std::string user_pass_reply(bool ok) { return {0x01, static_cast<char>(ok ? 0x00 : 0x01)}; }

std::string reply(Reply code, const rules::IpAddr* bound, uint16_t port) {
  std::string out = {static_cast<char>(kVersion), static_cast<char>(code), 0x00};
  rules::IpAddr zero;
  const rules::IpAddr& a = bound ? *bound : zero;
  out += static_cast<char>(a.v6 ? 0x04 : 0x01);
  for (int i = 0; i < (a.v6 ? 16 : 4); ++i) out += static_cast<char>(a.bytes[static_cast<size_t>(i)]);
  out += static_cast<char>(port >> 8);
  out += static_cast<char>(port & 0xff);
  return out;
}

}  // namespace sluice::proxy::socks5
