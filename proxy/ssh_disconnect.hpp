// What sluice says, as if it were the server, to carry a denial reason to an ssh
// client in-band: an SSH-2.0 identification line, then one unencrypted binary
// packet (RFC 4253 section 6, before any key exchange) holding SSH_MSG_DISCONNECT
// with reason "host not allowed to connect" and the text. OpenSSH prints it:
//   Received disconnect from UNKNOWN port 65535:1: <text>
#pragma once
#include <string>
#include <string_view>

namespace sluice::proxy {

// `text` is cut to one line of at most 400 bytes (what OpenSSH prints of it).
std::string ssh_disconnect_banner(std::string_view text);

}  // namespace sluice::proxy
