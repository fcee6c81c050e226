// SOCKS5 wire format (RFC 1928, RFC 1929 username/password): incremental parsers
// for what a client sends and builders for what sluice answers. Pure byte work,
// no sockets, so every malformed input is a table row in tests/proxy/test_socks5.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rules/ip.hpp"

namespace sluice::proxy::socks5 {

inline constexpr uint8_t kVersion = 0x05;
inline constexpr uint8_t kMethodNoAuth = 0x00;
inline constexpr uint8_t kMethodUserPass = 0x02;
inline constexpr uint8_t kMethodNone = 0xff;  // "no acceptable methods"

enum class Command : uint8_t { Connect = 0x01, Bind = 0x02, UdpAssociate = 0x03 };
enum class AddressType : uint8_t { Ipv4 = 0x01, Domain = 0x03, Ipv6 = 0x04 };

// Reply codes (RFC 1928 section 6).
enum class Reply : uint8_t {
  Succeeded = 0x00,
  GeneralFailure = 0x01,
  NotAllowed = 0x02,  // connection not allowed by ruleset
  NetworkUnreachable = 0x03,
  HostUnreachable = 0x04,
  ConnectionRefused = 0x05,
  TtlExpired = 0x06,
  CommandNotSupported = 0x07,
  AddressTypeNotSupported = 0x08,
};
const char* reply_text(Reply r);  // RFC 1928's words, for logs and `sluice connect`

// Every parser looks at a prefix of `in`: NeedMore until a whole message is there,
// then Done with `consumed` bytes, or Error (after which nothing more is parsed).
enum class Status { NeedMore, Done, Error };

struct Greeting {
  Status status = Status::NeedMore;
  size_t consumed = 0;
  std::vector<uint8_t> methods;
  std::string error;
};
Greeting parse_greeting(std::string_view in);

struct UserPass {
  Status status = Status::NeedMore;
  size_t consumed = 0;
  std::string username, password;
  std::string error;
};
UserPass parse_user_pass(std::string_view in);

struct Request {
  Status status = Status::NeedMore;
  size_t consumed = 0;
  uint8_t command = 0;  // as sent; Command values are the known ones
  AddressType type = AddressType::Ipv4;
  std::string host;    // domain name as sent, or the address in canonical text
  rules::IpAddr addr;  // Ipv4 / Ipv6
  uint16_t port = 0;
  // Error: the reply to send (GeneralFailure for a malformed request,
  // AddressTypeNotSupported for an unknown address type).
  Reply error_reply = Reply::GeneralFailure;
  std::string error;
};
Request parse_request(std::string_view in);

std::string method_reply(uint8_t method);  // 05 METHOD
std::string user_pass_reply(bool ok);      // 01 00 | 01 01
// 05 REP 00 ATYP BND.ADDR BND.PORT; `bound` null: 0.0.0.0:0.
std::string reply(Reply r, const rules::IpAddr* bound = nullptr, uint16_t port = 0);

}  // namespace sluice::proxy::socks5
