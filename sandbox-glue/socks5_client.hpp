// The client half of SOCKS5 that `sluice connect` speaks (RFC 1928 CONNECT,
// RFC 1929 username/password): request builders and reply readers, pure bytes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::glue::socks5 {

std::string greeting(bool offer_user_pass);  // no-auth, and username/password when we have credentials
std::string user_pass(std::string_view username, std::string_view password);
// Names go as a domain (socks5h: the proxy resolves them); IP literals as addresses.
// "" when the name is longer than SOCKS5 can carry (255 bytes).
std::string connect_request(std::string_view host, uint16_t port);

// The length of the whole CONNECT reply at the start of `in`: 0 while incomplete,
// -1 when the bytes are not a SOCKS5 reply.
long reply_length(std::string_view in);
// RFC 1928's words for a reply code.
const char* reply_text(uint8_t code);

}  // namespace sluice::glue::socks5
