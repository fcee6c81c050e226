// The llhttp wrapper: where it stops, what it reports, and what it refuses.
#include <doctest/doctest.h>

#include <string>

#include "proxy/http_parser.hpp"

using sluice::proxy::HttpParser;
using Event = HttpParser::Event;

namespace {
struct Fed {
  HttpParser::Result r;
  std::string body;
};
}  // namespace

TEST_CASE("request head stops the parser before the body") {
  HttpParser p(HttpParser::Kind::Request, 65536);
  std::string body;
  p.on_body = [&](const char* d, size_t n) { body.append(d, n); };
  std::string msg = "POST http://a.test/x?y=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello";
  auto r = p.feed(msg.data(), msg.size());
  CHECK(r.event == Event::Head);
  CHECK(p.head().method == "POST");
  CHECK(p.head().target == "http://a.test/x?y=1");
  CHECK(p.head().has_content_length);
  CHECK(p.head().content_length == 5);
  REQUIRE(p.head().headers.size() == 3);
  CHECK(*p.head().header("x-a") == "1");
  CHECK(body.empty());
  p.resume();
  auto r2 = p.feed(msg.data() + r.consumed, msg.size() - r.consumed);
  CHECK(r2.event == Event::Done);
  CHECK(body == "hello");
  CHECK(r.consumed + r2.consumed == msg.size());
}

TEST_CASE("CONNECT reports Upgrade and leaves the tunnel bytes unconsumed") {
  HttpParser p(HttpParser::Kind::Request, 65536);
  std::string msg = "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n\x16\x03\x01rest";
  auto r = p.feed(msg.data(), msg.size());
  CHECK(r.event == Event::Upgrade);
  CHECK(p.head().method == "CONNECT");
  CHECK(p.head().target == "a.test:443");
  CHECK(msg.substr(r.consumed) == "\x16\x03\x01rest");
}

TEST_CASE("a head split across many feeds is reassembled") {
  HttpParser p(HttpParser::Kind::Request, 65536);
  std::string msg = "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-Long: abcdefghij\r\n\r\n";
  HttpParser::Result r{Event::NeedMore, 0};
  size_t i = 0;
  for (; i < msg.size(); ++i) {
    r = p.feed(msg.data() + i, 1);
    if (r.event != Event::NeedMore) break;
  }
  CHECK(r.event == Event::Head);
  CHECK(i == msg.size() - 1);
  CHECK(*p.head().header("X-Long") == "abcdefghij");
}

TEST_CASE("chunked bodies are delivered de-chunked") {
  HttpParser p(HttpParser::Kind::Request, 65536);
  std::string body;
  p.on_body = [&](const char* d, size_t n) { body.append(d, n); };
  std::string msg =
      "POST http://a.test/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  auto r = p.feed(msg.data(), msg.size());
  REQUIRE(r.event == Event::Head);
  CHECK(p.head().chunked);
  p.resume();
  auto r2 = p.feed(msg.data() + r.consumed, msg.size() - r.consumed);
  CHECK(r2.event == Event::Done);
  CHECK(body == "abcde");
}

TEST_CASE("keep-alive: a second request parses after resume") {
  HttpParser p(HttpParser::Kind::Request, 65536);
  std::string msg = "GET http://a.test/1 HTTP/1.1\r\nHost: a\r\n\r\nGET http://b.test/2 HTTP/1.1\r\nHost: b\r\n\r\n";
  size_t off = 0;
  auto r = p.feed(msg.data(), msg.size());
  REQUIRE(r.event == Event::Head);
  off += r.consumed;
  p.resume();
  r = p.feed(msg.data() + off, msg.size() - off);
  REQUIRE(r.event == Event::Done);
  off += r.consumed;
  p.resume();
  r = p.feed(msg.data() + off, msg.size() - off);
  REQUIRE(r.event == Event::Head);
  CHECK(p.head().target == "http://b.test/2");
}

TEST_CASE("hostile and malformed requests are refused with a status") {
  struct Row {
    const char* name;
    std::string msg;
    int status;
  };
  const Row rows[] = {
      {"CL and TE together", "POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"duplicate CL", "POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
      {"bad CL", "POST http://a/ HTTP/1.1\r\nContent-Length: 3x\r\n\r\n", 400},
      {"obs-fold", "GET http://a/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
      {"obs-fold with tab", "GET http://a/ HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400},
      {"bare LF", "GET http://a/ HTTP/1.1\nX: a\n\n", 400},
      {"bare CR", "GET http://a/ HTTP/1.1\r\nX: a\rY: b\r\n\r\n", 400},
      {"space before colon", "GET http://a/ HTTP/1.1\r\nX : a\r\n\r\n", 400},
      {"empty header name first", "GET http://a/ HTTP/1.1\r\n: a\r\n\r\n", 400},
      {"empty header name later", "GET http://a/ HTTP/1.1\r\nX: a\r\n:b c\r\nY: d\r\n\r\n", 400},
      {"bad method", "G@T http://a/ HTTP/1.1\r\n\r\n", 400},
      {"PRI method", "PRI http://a/ HTTP/1.1\r\n\r\n", 400},
      {"bad version", "GET http://a/ HTTP/9.9\r\n\r\n", 400},
      {"NUL in header", std::string("GET http://a/ HTTP/1.1\r\nX: a\0b\r\n\r\n", 32), 400},
      {"oversized head", "GET http://a/ HTTP/1.1\r\nX: " + std::string(70000, 'a') + "\r\n\r\n", 431},
  };
  for (const auto& row : rows) {
    INFO(std::string(row.name));
    HttpParser p(HttpParser::Kind::Request, 65536);
    auto r = p.feed(row.msg.data(), row.msg.size());
    if (r.event == Event::Head) {
      p.resume();
      r = p.feed(row.msg.data() + r.consumed, row.msg.size() - r.consumed);
    }
    CHECK(r.event == Event::Error);
    CHECK(p.error_status() == row.status);
    CHECK(!p.error_message().empty());
  }
}

TEST_CASE("obs-fold split across feeds is still refused") {
  HttpParser p(HttpParser::Kind::Request, 65536);
  std::string a = "GET http://a/ HTTP/1.1\r\nX: a\r\n";
  std::string b = " b\r\n\r\n";
  auto r = p.feed(a.data(), a.size());
  CHECK(r.event == Event::NeedMore);
  r = p.feed(b.data(), b.size());
  CHECK(r.event == Event::Error);
  CHECK(p.error_status() == 400);
}

TEST_CASE("the head limit counts bytes across feeds") {
  HttpParser p(HttpParser::Kind::Request, 100);
  std::string start = "GET http://a/ HTTP/1.1\r\n";
  auto r = p.feed(start.data(), start.size());
  CHECK(r.event == Event::NeedMore);
  std::string more = "X: " + std::string(90, 'a') + "\r\n";
  r = p.feed(more.data(), more.size());
  CHECK(r.event == Event::Error);
  CHECK(p.error_status() == 431);
}

TEST_CASE("responses: HEAD has no body, EOF ends a close-delimited body") {
  {
    HttpParser p(HttpParser::Kind::Response, 65536);
    p.expect_head_response(true);
    std::string msg = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    auto r = p.feed(msg.data(), msg.size());
    REQUIRE(r.event == Event::Head);
    p.resume();
    r = p.feed(msg.data() + r.consumed, msg.size() - r.consumed);
    CHECK(r.event == Event::Done);
  }
  {
    HttpParser p(HttpParser::Kind::Response, 65536);
    std::string body;
    p.on_body = [&](const char* d, size_t n) { body.append(d, n); };
    std::string msg = "HTTP/1.0 200 OK\r\n\r\nall of it";
    auto r = p.feed(msg.data(), msg.size());
    REQUIRE(r.event == Event::Head);
    CHECK(p.body_until_eof());
    p.resume();
    r = p.feed(msg.data() + r.consumed, msg.size() - r.consumed);
    CHECK(r.event == Event::NeedMore);
    r = p.finish();
    CHECK(r.event == Event::Done);
    CHECK(body == "all of it");
  }
  {
    HttpParser p(HttpParser::Kind::Response, 65536);
    std::string msg = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    auto r = p.feed(msg.data(), msg.size());
    REQUIRE(r.event == Event::Head);
    CHECK(p.head().status == 100);
    size_t off = r.consumed;
    p.resume();
    r = p.feed(msg.data() + off, msg.size() - off);
    REQUIRE(r.event == Event::Done);
    off += r.consumed;
    p.resume();
    r = p.feed(msg.data() + off, msg.size() - off);
    REQUIRE(r.event == Event::Head);
    CHECK(p.head().status == 204);
  }
}

TEST_CASE("a response header with an empty name is refused, not glued onto the previous one") {
  HttpParser p(HttpParser::Kind::Response, 65536);
  std::string msg = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n: chunked\r\n\r\n";
  auto r = p.feed(msg.data(), msg.size());
  CHECK(r.event == Event::Error);
  INFO(p.error_message());
  CHECK(p.error_message().find("empty header name") != std::string::npos);
}

TEST_CASE("a 1xx response with a body is refused, so both ends agree where the next one starts") {
  for (std::string framing : {"Content-Length: 1\r\n", "Transfer-Encoding: chunked\r\n"}) {
    CAPTURE(framing);
    HttpParser p(HttpParser::Kind::Response, 65536);
    std::string msg = "HTTP/1.1 100 Continue\r\n" + framing + "\r\naHTTP/1.1 204 No Content\r\n\r\n";
    auto r = p.feed(msg.data(), msg.size());
    CHECK(r.event == Event::Error);
    CHECK(p.error_message().find("1xx") != std::string::npos);
  }
  HttpParser ok(HttpParser::Kind::Response, 65536);
  std::string msg = "HTTP/1.1 100 Continue\r\n\r\n";
  CHECK(ok.feed(msg.data(), msg.size()).event == Event::Head);
}

TEST_CASE("a 204 or 304 with Content-Length has no body: the next bytes are the next response") {
  for (const char* status : {"204 No Content", "304 Not Modified"}) {
    CAPTURE(status);
    HttpParser p(HttpParser::Kind::Response, 65536);
    std::string body;
    p.on_body = [&](const char* d, size_t n) { body.append(d, n); };
    std::string msg = std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\n";
    auto r = p.feed(msg.data(), msg.size());
    REQUIRE(r.event == Event::Head);
    p.resume();
    size_t off = r.consumed;
    r = p.feed(msg.data() + off, msg.size() - off);
    CHECK(r.event == Event::Done);
    CHECK(body.empty());
    CHECK(msg.substr(off + r.consumed) == "HTTP/1.1 200 OK\r\n");
  }
}

TEST_CASE("a request's Transfer-Encoding must be chunked, once, and alone") {
  struct Row {
    const char* te;
    int status;  // 0: accepted
  };
  const Row rows[] = {
      {"Transfer-Encoding: chunked\r\n", 0},
      {"Transfer-Encoding: CHUNKED \r\n", 0},
      {"Transfer-Encoding: identity\r\n", 400},
      {"Transfer-Encoding: x-foo\r\n", 400},
      {"Transfer-Encoding: chunked, gzip\r\n", 400},
      {"Transfer-Encoding: chunked, chunked\r\n", 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", 400},
      {"Transfer-Encoding: , chunked\r\n", 400},
      {"Transfer-Encoding: gzip, chunked\r\n", 501},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501},
  };
  for (const Row& row : rows) {
    CAPTURE(row.te);
    HttpParser p(HttpParser::Kind::Request, 65536);
    std::string msg = std::string("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\n") + row.te + "\r\n0\r\n\r\n";
    auto r = p.feed(msg.data(), msg.size());
    if (row.status == 0) {
      CHECK(r.event == Event::Head);
      CHECK(p.head().chunked);
    } else {
      CHECK(r.event == Event::Error);
      CHECK(p.error_status() == row.status);
    }
  }
}
