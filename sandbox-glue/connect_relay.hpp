// `sluice connect HOST PORT`: a stdio relay through the proxy's CONNECT, for
// programs that take a command as their transport (ssh's ProxyCommand).
#pragma once
#include <cstdint>
#include <string>

namespace sluice::glue {

struct ProxyAddress {
  bool unix_socket = false;
  std::string host;  // TCP proxy host (IP or name resolved by the OS)
  uint16_t port = 0;
  std::string path;  // unix socket
};

// "http://127.0.0.1:3128", "127.0.0.1:3128", "unix:/path". "" or an error.
std::string parse_proxy_address(const std::string& text, ProxyAddress& out);

// Connects, sends CONNECT HOST:PORT, and on 200 relays stdin/stdout until both
// directions end. Returns the exit status; a refusal prints the proxy's reason.
int run_connect_relay(const ProxyAddress& proxy, const std::string& host, uint16_t port);

}  // namespace sluice::glue
