#include <doctest/doctest.h>

#include <string>

#include <unistd.h>
#include <uv.h>

#include "bench/errors.hpp"
#include "bench/http.hpp"
#include "bench/net.hpp"
#include "bench/procstat.hpp"

using namespace sluice::bench;

TEST_CASE("errors: libuv codes map to kinds by phase") {
  struct Row {
    int err;
    Phase phase;
    const char* key;
  };
  const Row rows[] = {
      {UV_ECONNREFUSED, Phase::Connect, "connect-refused"},
      {UV_ENOENT, Phase::Connect, "connect-refused"},  // unix socket path with nobody behind it
      {UV_ECONNRESET, Phase::Connect, "reset"},
      {UV_ECONNRESET, Phase::Io, "reset"},
      {UV_EPIPE, Phase::Io, "reset"},
      {UV_ECONNREFUSED, Phase::Io, "reset"},
      {UV_EOF, Phase::Io, "short-read"},
      {UV_ETIMEDOUT, Phase::Io, "timeout"},
      {UV_ETIMEDOUT, Phase::Connect, "connect-failed"},
      {UV_EADDRNOTAVAIL, Phase::Connect, "connect-failed"},
      {UV_EHOSTUNREACH, Phase::Io, "other-EHOSTUNREACH"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.key);
    ErrorKind k = classify_uv_error(r.err, r.phase);
    CHECK(error_key(k, r.err) == r.key);
  }
  CHECK(error_key(ErrorKind::ProxyStatus, 403) == "proxy-403");
  CHECK(error_key(ErrorKind::UpstreamStatus, 502) == "upstream-502");
  ErrorCounts a, b;
  a.add(ErrorKind::ProxyStatus, 403);
  a.add(ErrorKind::Timeout);
  b.add(ErrorKind::ProxyStatus, 403);
  a.merge(b);
  CHECK(a.total == 3);
  CHECK(a.get("proxy-403") == 2);
  CHECK(a.get("timeout") == 1);
  CHECK(a.get("reset") == 0);
}

namespace {

// Feeds a response one byte at a time; returns the bytes consumed.
size_t feed_bytewise(ResponseReader& r, const std::string& s) {
  size_t used = 0;
  for (char c : s) {
    if (r.state() == ResponseReader::State::Done || r.state() == ResponseReader::State::Error) break;
    used += r.feed(&c, 1);
  }
  return used;
}

}  // namespace

TEST_CASE("http: Content-Length response, whole and byte by byte") {
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
  ResponseReader a;
  CHECK(a.feed(resp.data(), resp.size()) == resp.size());
  CHECK(a.done());
  CHECK(a.status() == 200);
  CHECK(a.body_bytes() == 5);
  CHECK(a.body_text() == "hello");
  CHECK_FALSE(a.wants_close());
  ResponseReader b;
  CHECK(feed_bytewise(b, resp) == resp.size());
  CHECK(b.done());
  CHECK(b.body_bytes() == 5);
}

TEST_CASE("http: chunked body, trailers, extra bytes left over") {
  const std::string resp =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\nwiki\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\nEXTRA";
  ResponseReader r;
  size_t used = r.feed(resp.data(), resp.size());
  CHECK(r.done());
  CHECK(r.body_bytes() == 20);
  CHECK(resp.substr(used) == "EXTRA");
  ResponseReader b;
  feed_bytewise(b, resp);
  CHECK(b.done());
  CHECK(b.body_bytes() == 20);
}

TEST_CASE("http: close-delimited body ends at EOF; a short CL body is truncated") {
  ResponseReader r;
  std::string resp = "HTTP/1.0 200 OK\r\n\r\nabc";
  r.feed(resp.data(), resp.size());
  CHECK(r.state() == ResponseReader::State::Body);
  CHECK(r.wants_close());
  r.on_eof();
  CHECK(r.done());
  CHECK(r.body_bytes() == 3);

  ResponseReader s;
  resp = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  s.feed(resp.data(), resp.size());
  s.on_eof();
  CHECK(s.state() == ResponseReader::State::Error);
  CHECK(s.truncated());
}

TEST_CASE("http: a CONNECT reply stops after the head; tunnel bytes stay with the caller") {
  ResponseReader r;
  r.reset(true);
  std::string resp = "HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n";
  size_t used = r.feed(resp.data(), resp.size());
  CHECK(r.done());
  CHECK(r.status() == 200);
  CHECK(resp.substr(used) == "HTTP/1.1 200 OK\r\n");

  ResponseReader d;
  d.reset(true);
  resp = "HTTP/1.1 403 Forbidden\r\nX-Sluice-Reason: not-in-allowlist\r\nContent-Length: 20\r\n\r\n";
  d.feed(resp.data(), resp.size());
  CHECK(d.done());
  CHECK(d.status() == 403);
}

TEST_CASE("http: an interim 100 reply is skipped; a reader moved between reads goes on") {
  const std::string resp = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  ResponseReader r;
  r.reset();
  size_t half = resp.size() / 2;
  CHECK(r.feed(resp.data(), half) == half);
  ResponseReader moved = std::move(r);
  CHECK(moved.feed(resp.data() + half, resp.size() - half) == resp.size() - half);
  CHECK(moved.done());
  CHECK(moved.status() == 200);
  CHECK(moved.body_text() == "ok");
}

TEST_CASE("http: malformed responses are errors") {
  for (std::string bad : {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "garbage\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"}) {
    CAPTURE(bad);
    ResponseReader r;
    r.feed(bad.data(), bad.size());
    CHECK(r.state() == ResponseReader::State::Error);
  }
  ResponseReader big;
  std::string junk(kMaxHeadBytes + 10, 'x');
  big.feed(junk.data(), junk.size());
  CHECK(big.state() == ResponseReader::State::Error);
}

TEST_CASE("http: request heads and query parameters") {
  auto r = parse_request_head("GET /bytes?n=42&close=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(r);
  CHECK(r->method == "GET");
  CHECK(r->path == "/bytes");
  CHECK(query_param(r->query, "n") == "42");
  CHECK(query_param(r->query, "close") == "1");
  CHECK_FALSE(query_param(r->query, "m"));
  CHECK_FALSE(r->close);

  auto a = parse_request_head("GET http://127.0.0.1:9/bytes?n=1 HTTP/1.1\r\nConnection: close\r\n\r\n");
  REQUIRE(a);
  CHECK(a->path == "/bytes");
  CHECK(a->close);

  auto p = parse_request_head("POST /sink HTTP/1.0\r\nContent-Length: 7\r\n\r\n");
  REQUIRE(p);
  CHECK(p->content_length == 7);
  CHECK(p->close);  // HTTP/1.0 without keep-alive

  CHECK_FALSE(parse_request_head("GET /\r\n\r\n"));
  CHECK_FALSE(parse_request_head("GET / HTTP/2.0\r\n\r\n"));
  CHECK_FALSE(parse_u64("12a"));
  CHECK_FALSE(parse_u64(""));
  CHECK(parse_u64("18446744073709551615") == std::nullopt);  // 20 digits: refused, no overflow
}

TEST_CASE("net: only loopback endpoints (and the benchmarking range) are accepted") {
  Endpoint e;
  CHECK(parse_target("127.0.0.1:80", e).empty());
  CHECK(e.authority() == "127.0.0.1:80");
  CHECK(parse_target("127.9.8.7:65535", e).empty());
  CHECK(parse_target("[::1]:8080", e).empty());
  CHECK(e.authority() == "[::1]:8080");
  CHECK_FALSE(parse_target("10.0.0.1:80", e).empty());
  // 198.18.0.0/15: inside `sluice run --transparent`, the fake addresses of names.
  CHECK(parse_target("198.18.0.1:80", e).empty());
  CHECK(parse_target("198.19.255.254:80", e).empty());
  CHECK_FALSE(parse_target("198.17.255.255:80", e).empty());
  CHECK_FALSE(parse_target("198.20.0.0:80", e).empty());
  CHECK_FALSE(parse_target("[2001:db8::1]:80", e).empty());
  CHECK_FALSE(parse_target("example.com:80", e).empty());
  CHECK_FALSE(parse_target("127.0.0.1", e).empty());
  CHECK_FALSE(parse_target("127.0.0.1:0", e).empty());
  CHECK(parse_target("127.0.0.1:0", e, true).empty());
  CHECK(parse_proxy("http://127.0.0.1:3128/", e).empty());
  CHECK(e.describe() == "http://127.0.0.1:3128");
  CHECK(parse_proxy("unix:/run/sluice/x.sock", e).empty());
  CHECK(e.kind == Endpoint::Kind::Unix);
  CHECK(e.describe() == "unix:/run/sluice/x.sock");
  CHECK_FALSE(parse_proxy("http://192.168.1.1:3128", e).empty());
  // srt's proxy URLs: a per-session token as credentials, and "localhost".
  CHECK(parse_proxy("http://srt.abc%3D%3D:s3cret@localhost:3128", e).empty());
  CHECK(e.host == "127.0.0.1");
  CHECK(e.port == 3128);
  CHECK(e.auth == "srt.abc==:s3cret");
  CHECK(proxy_authorization(e) == "Proxy-Authorization: Basic c3J0LmFiYz09OnMzY3JldA==\r\n");
  CHECK(parse_proxy("http://127.0.0.1:3128", e).empty());
  CHECK(proxy_authorization(e).empty());
  CHECK_FALSE(parse_proxy("http://nocolon@127.0.0.1:3128", e).empty());
  CHECK_FALSE(parse_proxy("http://a:%zz@127.0.0.1:3128", e).empty());
  CHECK_FALSE(parse_proxy("http://localhost.evil:3128", e).empty());
}

TEST_CASE("procstat: CPU from a stat line whose comm holds spaces and parentheses") {
  // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  std::string line = "123 (we ird) (name) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1";
  CHECK(cpu_seconds_from_stat(line) == doctest::Approx(300.0 / static_cast<double>(sysconf(_SC_CLK_TCK))));
  CHECK(cpu_seconds_from_stat("garbage") < 0);
  CHECK(status_field_kib("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n", "VmRSS") == 1024);
  CHECK(status_field_kib("VmHWM:\t  2048 kB\n", "VmHWM") == 2048);
  CHECK(status_field_kib("VmHWM:\t  2048 kB\n", "VmRSS") == 0);
  auto self = sample_procs({static_cast<int>(getpid())});
  CHECK(self.ok);
  CHECK(self.rss_kib > 0);
  CHECK(self.hwm_kib >= self.rss_kib);
  CHECK_FALSE(sample_procs({}).ok);
}
