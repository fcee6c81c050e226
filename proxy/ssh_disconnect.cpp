#include "proxy/ssh_disconnect.hpp"

#include <cstdint>

namespace sluice::proxy {

namespace {

constexpr uint8_t kMsgDisconnect = 1;
constexpr uint32_t kHostNotAllowedToConnect = 1;
constexpr size_t kBlock = 8;  // the cipher block size before key exchange ("none")

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>(v >> shift & 0xff);
}

void put_string(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

}  // namespace

std::string ssh_disconnect_banner(std::string_view text) {
  std::string line;
  for (char c : text.substr(0, 400)) {
    if (c == '\r' || c == '\n') break;
    line += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  std::string payload;
  payload += static_cast<char>(kMsgDisconnect);
  put_u32(payload, kHostNotAllowedToConnect);
  put_string(payload, line);
  put_string(payload, "");  // language tag
  // packet_length (4) + padding_length (1) + payload + padding: a multiple of 8, padding >= 4.
  size_t padding = kBlock - (5 + payload.size()) % kBlock;
  if (padding < 4) padding += kBlock;
  std::string out = "SSH-2.0-sluice\r\n";
  put_u32(out, static_cast<uint32_t>(1 + payload.size() + padding));
  out += static_cast<char>(padding);
  out += payload;
  out.append(padding, '\0');  // no secrecy before key exchange: zero padding is as good as random
  return out;
}

}  // namespace sluice::proxy
