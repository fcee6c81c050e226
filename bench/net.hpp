// Addresses for the load generator. Benchmarks only ever talk to this machine: every TCP
// endpoint must be a loopback IP literal (127.0.0.0/8 or ::1), checked when it is parsed.
#pragma once
#include <string>
#include <string_view>

#include <netinet/in.h>
#include <sys/socket.h>

namespace sluice::bench {

struct Endpoint {
  enum class Kind { Tcp, Unix };
  Kind kind = Kind::Tcp;
  std::string host;  // Tcp: IP literal, without brackets
  int port = 0;
  std::string path;  // Unix
  std::string auth;  // proxy only: "user:password" from http://user:password@host:port, decoded
  sockaddr_storage addr{};

  // "127.0.0.1:8080" or "[::1]:8080": the CONNECT authority and the Host header.
  std::string authority() const;
  // How a report names it: "http://127.0.0.1:3128" or "unix:/run/x.sock".
  std::string describe() const;
};

// Fills addr from an IP literal and port. "" or an error.
std::string make_sockaddr(const std::string& host, int port, sockaddr_storage& addr);

bool is_loopback(const sockaddr_storage& addr);
// 198.18.0.0/15 (RFC 2544, for benchmarks): the fake range of `sluice run --transparent`.
bool is_benchmark_range(const sockaddr_storage& addr);

// "HOST:PORT" or "[V6]:PORT", loopback or 198.18.0.0/15 only. "" or an error. Port 0 ("any free port") only
// when allow_port_zero, for listening addresses.
std::string parse_target(std::string_view spec, Endpoint& out, bool allow_port_zero = false);

// "http://[USER:PASSWORD@]HOST:PORT[/]" (or socks5://, socks5h://), "HOST:PORT" or "unix:PATH",
// loopback only; HOST may be "localhost" (127.0.0.1, as srt's proxy URLs say). Credentials are percent-decoded and sent
// as Proxy-Authorization: Basic (SOCKS5 scenarios: username/password). "" or an error.
std::string parse_proxy(std::string_view spec, Endpoint& out);

// "Proxy-Authorization: Basic ...\r\n" for an endpoint with credentials, else "".
std::string proxy_authorization(const Endpoint& proxy);

}  // namespace sluice::bench
