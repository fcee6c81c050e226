#include "sandbox-glue/socks5_client.hpp"

#include "rules/ip.hpp"

namespace sluice::glue::socks5 {

std::string greeting(bool offer_user_pass) {
  if (offer_user_pass) return {0x05, 0x02, 0x00, 0x02};
  return {0x05, 0x01, 0x00};
}

std::string user_pass(std::string_view username, std::string_view password) {
  std::string out = {0x01, static_cast<char>(username.size() & 0xff)};
  out += username.substr(0, 255);
  out += static_cast<char>(password.size() & 0xff);
  out += password.substr(0, 255);
  return out;
}

std::string connect_request(std::string_view host, uint16_t port) {
  std::string out = {0x05, 0x01, 0x00};
  std::string_view bare = host;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  if (auto ip = rules::IpAddr::parse(bare)) {
    out += static_cast<char>(ip->v6 ? 0x04 : 0x01);
    for (int i = 0; i < (ip->v6 ? 16 : 4); ++i) out += static_cast<char>(ip->bytes[static_cast<size_t>(i)]);
  } else {
    if (host.empty() || host.size() > 255) return "";
    out += 0x03;
    out += static_cast<char>(host.size());
    out += host;
  }
  out += static_cast<char>(port >> 8);
  out += static_cast<char>(port & 0xff);
  return out;
}

long reply_length(std::string_view in) {
  if (in.empty()) return 0;
  if (static_cast<uint8_t>(in[0]) != 0x05) return -1;
  if (in.size() < 5) return 0;
  long len = 0;
  switch (static_cast<uint8_t>(in[3])) {
    case 0x01: len = 4 + 4 + 2; break;
    case 0x04: len = 4 + 16 + 2; break;
    case 0x03: len = 4 + 1 + static_cast<uint8_t>(in[4]) + 2; break;
    default: return -1;
  }
  return static_cast<long>(in.size()) >= len ? len : 0;
}

const char* reply_text(uint8_t code) {
  switch (code) {
    case 0x00: return "succeeded";
    case 0x01: return "general SOCKS server failure";
    case 0x02: return "connection not allowed by ruleset";
    case 0x03: return "network unreachable";
    case 0x04: return "host unreachable";
    case 0x05: return "connection refused";
    case 0x06: return "TTL expired";
    case 0x07: return "command not supported";
    case 0x08: return "address type not supported";
    default: return "unknown reply";
  }
}

}  // namespace sluice::glue::socks5
