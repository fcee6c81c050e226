#include "bench/net.hpp"

#include <cstdint>
#include <cstring>
#include <optional>

#include <arpa/inet.h>

#include "bench/http.hpp"
#include "rules/host.hpp"
#include "rules/percent.hpp"

namespace sluice::bench {

std::string Endpoint::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string Endpoint::describe() const { return kind == Kind::Unix ? "unix:" + path : "http://" + authority(); }

std::string make_sockaddr(const std::string& host, int port, sockaddr_storage& addr) {
  addr = {};
  if (port < 0 || port > 65535) return "port out of range: " + std::to_string(port);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    return "";
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return "";
  }
  return "not an IP address: '" + host + "'";
}

bool is_loopback(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr.s_addr);
    return (a >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&a);
  }
  return false;
}

// RFC 2544's benchmarking range, never routed on the Internet. Inside `sluice run
// --transparent` it is where the jail's DNS stub puts names (the default fake range), and every
// connection to it is captured by the jail's rules and handed to sluice.
bool is_benchmark_range(const sockaddr_storage& addr) {
  if (addr.ss_family != AF_INET) return false;
  uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr.s_addr);
  return (a >> 17) == (0xc6120000u >> 17);  // 198.18.0.0/15
}

std::string parse_target(std::string_view spec, Endpoint& out, bool allow_port_zero) {
  out = Endpoint{};
  auto split = rules::split_authority(spec, false);  // the one host:port splitter (rules/host.hpp)
  if (!split || !split->has_port) return "expected HOST:PORT or [V6]:PORT, got '" + std::string(spec) + "'";
  std::string_view host = split->host, port = split->port;
  auto p = parse_u64(port);
  if (!p || (*p == 0 && !allow_port_zero) || *p > 65535) return "bad port in '" + std::string(spec) + "'";
  out.host = std::string(host);
  out.port = static_cast<int>(*p);
  if (std::string err = make_sockaddr(out.host, out.port, out.addr); !err.empty()) return err;
  if (!is_loopback(out.addr) && !is_benchmark_range(out.addr))
    return "'" + std::string(spec) +
           "' is not a loopback address: benchmarks only talk to 127.0.0.0/8, ::1 or 198.18.0.0/15";
  return "";
}

std::string parse_proxy(std::string_view spec, Endpoint& out) {
  if (spec.rfind("unix:", 0) == 0) {
    out = Endpoint{};
    out.kind = Endpoint::Kind::Unix;
    out.path = std::string(spec.substr(5));
    if (out.path.empty()) return "unix: needs a path";
    return "";
  }
  for (std::string_view scheme : {"http://", "socks5://", "socks5h://"})
    if (spec.rfind(scheme, 0) == 0) spec.remove_prefix(scheme.size());
  while (!spec.empty() && spec.back() == '/') spec.remove_suffix(1);
  std::string auth;
  if (size_t at = spec.rfind('@'); at != std::string_view::npos) {
    auto decoded = rules::percent_decode(spec.substr(0, at));
    if (!decoded) return "bad percent-encoding in the proxy credentials";
    auth = std::move(*decoded);
    if (auth.find(':') == std::string::npos) return "proxy credentials must be USER:PASSWORD";
    spec.remove_prefix(at + 1);
  }
  std::string host_port(spec);
  if (host_port.rfind("localhost:", 0) == 0) host_port = "127.0.0.1" + host_port.substr(9);
  std::string err = parse_target(host_port, out);
  out.auth = std::move(auth);
  return err;
}

std::string proxy_authorization(const Endpoint& proxy) {
  if (proxy.auth.empty()) return "";
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string& in = proxy.auth;
  std::string b64;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
    b64 += k[(v >> 18) & 63];
    b64 += k[(v >> 12) & 63];
    b64 += i + 1 < in.size() ? k[(v >> 6) & 63] : '=';
    b64 += i + 2 < in.size() ? k[v & 63] : '=';
  }
  return "Proxy-Authorization: Basic " + b64 + "\r\n";
}

}  // namespace sluice::bench
