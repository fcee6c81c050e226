// Listener credentials (`auth:` in a listener): one username and password that
// every client of the listener must present, as SOCKS5 username/password
// (RFC 1929) or HTTP Proxy-Authorization Basic. Pure: no sockets.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace sluice::rules {

struct Credentials {
  std::string username;  // 1..255 bytes, no ':' (Basic splits on the first colon)
  std::string password;  // 1..255 bytes
};

// Compares both fields in time that depends only on the lengths, never on where
// the first differing byte is, so a client cannot guess the password byte by byte.
bool credentials_match(const Credentials& want, std::string_view username, std::string_view password);

// The username and password of a `Proxy-Authorization: Basic BASE64` value
// ("Basic" is case-insensitive), or nullopt when it is not well-formed Basic.
struct BasicCredentials {
  std::string username, password;
};
std::optional<BasicCredentials> parse_basic_authorization(std::string_view header_value);
// The decoded "user:password" of such a value, unsplit (a stand-in may be either half), or nullopt.
std::optional<std::string> basic_payload(std::string_view header_value);

// Strict RFC 4648 base64 with padding; nullopt on any other byte or bad length.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

}  // namespace sluice::rules
