// `sluice connect HOST PORT`: a stdio relay through the proxy, for programs that
// take a command as their transport (ssh's ProxyCommand). It speaks SOCKS5 or
// HTTP CONNECT, whichever the proxy address asks for, or, for a bare address,
// whichever the listener offers: SOCKS5 first, CONNECT when the proxy does not
// answer the SOCKS5 greeting as SOCKS5.
#pragma once
#include <cstdint>
#include <string>

namespace sluice::glue {

struct ProxyAddress {
  enum class Protocol { Auto, Http, Socks5 };
  Protocol protocol = Protocol::Auto;
  bool unix_socket = false;
  std::string host;  // TCP proxy host (IP or name resolved by the OS)
  uint16_t port = 0;
  std::string path;                // unix socket
  std::string username, password;  // from USER:PASS@ in the URL, percent-decoded
};

// "http://[USER:PASS@]HOST:PORT" (CONNECT), "socks5://..." or "socks5h://..." (SOCKS5; the
// proxy resolves names either way), "HOST:PORT" or "unix:PATH" (either). "" or an error.
std::string parse_proxy_address(const std::string& text, ProxyAddress& out);

// Connects, opens the tunnel to HOST:PORT, then relays stdin/stdout until both
// directions end. Returns the exit status; a refusal prints the proxy's reason and returns 1.
int run_connect_relay(const ProxyAddress& proxy, const std::string& host, uint16_t port);

}  // namespace sluice::glue
