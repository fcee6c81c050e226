// The built-in upstream: an HTTP/1.1 keep-alive origin on one libuv loop, so benchmarks need
// nothing else. Routes:
//   GET /                 a small fixed body (kSmallBody)
//   GET /bytes?n=N        N bytes with Content-Length; `&close=1` closes the socket right
//                         after the last byte is handed to the kernel (the closing race that
//                         proxies must survive without dropping the tail)
//   POST /sink            reads and discards a Content-Length body; replies with its byte count
// Anything else is 404. Absolute-form targets are accepted (a proxy may forward them raw).
// With use_tls(), the same routes over TLS (HTTP/1.1; ALPN http/1.1 when the client offers it).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::bench {

constexpr std::string_view kSmallBody = "sluice bench upstream: hello from the far side of the proxy\n";
constexpr uint64_t kMaxBytesResponse = uint64_t{64} << 30;  // /bytes?n= cap: 64 GiB

struct UpstreamStats {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_sent{0};  // body bytes of /bytes responses
  std::atomic<uint64_t> sink_bytes{0};  // body bytes read by /sink
};

class Upstream {
 public:
  Upstream();
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Serve every connection over TLS with this PEM certificate (chain) and key (call before
  // listen). "" or an error.
  // TICKETS: TLS 1.3 session tickets sent after each full handshake (0: none, the default).
  std::string use_tls(const std::string& cert_file, const std::string& key_file, int tickets = 0);

  // Binds and listens on an IP literal; port 0 picks an ephemeral port. "" or an error.
  std::string listen(const std::string& host, int port);
  int port() const;

  // Serves on the calling thread until stop(), SIGINT/SIGTERM (when handle_signals), or
  // lifetime_s seconds (0: no limit).
  void run(bool handle_signals = false, double lifetime_s = 0);
  void start();  // run() on a thread of its own
  void stop();   // from any thread; joins the thread start() made

  const UpstreamStats& stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::bench
