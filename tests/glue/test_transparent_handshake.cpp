// Transparent mode: the CONNECT the bridge sends for a redirected connection, the
// reading of the proxy's answer, and the reset a refused program sees.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox-glue/transparent_bridge.hpp"
#include "sandbox-glue/transparent_handshake.hpp"

using namespace sluice::glue;
using State = ConnectReply::State;

TEST_CASE("the CONNECT request names the target twice, like an explicit client") {
  CHECK(transparent_connect_request("example.com:443") ==
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  CHECK(transparent_connect_request("[2001:db8::1]:22") ==
        "CONNECT [2001:db8::1]:22 HTTP/1.1\r\nHost: [2001:db8::1]:22\r\n\r\n");
  CHECK(transparent_connect_request("example.com:443", "198.18.0.1:443") ==
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Sluice-Original-Dst: 198.18.0.1:443\r\n\r\n");
  CHECK(transparent_connect_request("example.com:443", "198.18.0.1:443", true) ==
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Sluice-Original-Dst: 198.18.0.1:443\r\n"
        "X-Sluice-First-Bytes: tls\r\n\r\n");
}

TEST_CASE("the DNS service's reply: an answer frame and a mapping frame, either may be empty") {
  const std::string two = stub_reply_frames("ANSWER", "a.test 198.18.0.1 fd73::1") + stub_reply_frames("", "");
  StubReply r = parse_stub_reply(two);
  REQUIRE(r.complete);
  CHECK(r.answer == "ANSWER");
  CHECK(r.mapping == "a.test 198.18.0.1 fd73::1");
  StubReply second = parse_stub_reply(std::string_view(two).substr(r.consumed));
  REQUIRE(second.complete);
  CHECK(second.answer.empty());
  CHECK(second.mapping.empty());
  CHECK(second.consumed == 4);
  // Every cut short of the whole is incomplete, never misread.
  const std::string one = stub_reply_frames("ANSWER", "m");
  for (size_t n = 0; n < one.size(); ++n) CHECK_FALSE(parse_stub_reply(std::string_view(one).substr(0, n)).complete);
}

TEST_CASE("the proxy's answer: 200 relays, anything else refuses, junk is malformed") {
  struct Row {
    std::string bytes;
    State state;
    int status;
    std::string reason;
    size_t header;
  };
  const Row rows[] = {
      {"HTTP/1.1 200 Connection established\r\n\r\n", State::Ok, 200, "Connection established", 39},
      {"HTTP/1.1 200 OK\r\n\r\nSSH-2.0-x", State::Ok, 200, "OK", 19},
      {"HTTP/1.0 200\r\nX: y\r\n\r\n", State::Ok, 200, "", 22},
      {"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n", State::Refused, 403, "Forbidden", 45},
      {"HTTP/1.1 502 Bad Gateway\r\n\r\n", State::Refused, 502, "Bad Gateway", 28},
      {"HTTP/1.1 200 OK\r\n", State::Incomplete, 0, "", 0},
      {"", State::Incomplete, 0, "", 0},
      {"SSH-2.0-OpenSSH\r\n\r\n", State::Malformed, 0, "", 19},
      {"HTTP/1.1 2x0 OK\r\n\r\n", State::Malformed, 0, "", 19},
      {"HTTP/1.1 2000 OK\r\n\r\n", State::Malformed, 0, "", 20},
  };
  for (const auto& r : rows) {
    CAPTURE(r.bytes);
    ConnectReply got = parse_connect_reply(r.bytes);
    CHECK(got.state == r.state);
    CHECK(got.status == r.status);
    CHECK(got.reason == r.reason);
    CHECK(got.header_bytes == r.header);
  }
}

TEST_CASE("an answer with no blank line within the bound is malformed, not waited for") {
  std::string long_header = "HTTP/1.1 200 OK\r\n" + std::string(kMaxConnectReply, 'a');
  CHECK(parse_connect_reply(long_header).state == State::Malformed);
  CHECK(parse_connect_reply(long_header.substr(0, kMaxConnectReply - 1)).state == State::Incomplete);
}

TEST_CASE("reset_connection: the peer sees a reset, not an orderly end") {
  int l = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(l, 1) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  int s = ::accept(l, nullptr, nullptr);
  REQUIRE(s >= 0);
  reset_connection(s);
  char buf[8];
  errno = 0;
  ssize_t n = ::recv(c, buf, sizeof buf, 0);
  CHECK(n == -1);
  CHECK(errno == ECONNRESET);
  ::close(c);
  ::close(l);
}
