// What sluice rebuilds: URLs, the upstream request head, hop-by-hop filtering.
#include <doctest/doctest.h>

#include "proxy/http_message.hpp"

using namespace sluice::proxy;

TEST_CASE("absolute URLs: table") {
  struct Row {
    const char* in;
    bool ok;
    const char* host;
    uint16_t port;
    const char* path;
  };
  const Row rows[] = {
      {"http://a.test/x", true, "a.test", 80, "/x"},
      {"HTTP://A.test:8080", true, "A.test", 8080, "/"},
      {"http://a.test?q=1", true, "a.test", 80, "/?q=1"},
      {"http://a.test/p#frag", true, "a.test", 80, "/p"},
      {"http://user:pw@evil.test/", true, "evil.test", 80, "/"},
      {"http://allowed.test@evil.test:81/", true, "evil.test", 81, "/"},
      {"http://[::1]:8080/v6", true, "::1", 8080, "/v6"},
      {"http://[::1]/v6", true, "::1", 80, "/v6"},
      {"/origin/form", false, "", 0, ""},
      {"https://a.test/", false, "", 0, ""},
      {"ftp://a.test/", false, "", 0, ""},
      {"http:///nohost", false, "", 0, ""},
      {"http://a.test:0/", false, "", 0, ""},
      {"http://a.test:65536/", false, "", 0, ""},
      {"http://a.test:80x/", false, "", 0, ""},
      {"http://[::1/", false, "", 0, ""},
      // A bare IPv6 host read two ways would be a bypass: one splitter refuses it everywhere.
      {"http://::1:8080/v6", false, "", 0, ""},
      {"http://[::1]8080/", false, "", 0, ""},
      {"http://a.test/a\tb", false, "", 0, ""},
      {"http://a.test/\x91\x8b", false, "", 0, ""},
      {"http://a.test/a\x7f", false, "", 0, ""},
      {"http://a.test/%20ok%C3%A9", true, "a.test", 80, "/%20ok%C3%A9"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.in);
    auto u = parse_absolute_url(row.in);
    REQUIRE(u.ok() == row.ok);
    if (!row.ok) {
      CHECK(!u.error().empty());
      continue;
    }
    CHECK(u->host == row.host);
    CHECK(u->port == row.port);
    CHECK(u->path == row.path);
  }
}

TEST_CASE("a request target inside an inspected tunnel: origin-form or https://, port 443 by default") {
  struct Row {
    const char* in;
    bool ok;
    const char* host;
    uint16_t port;
    bool explicit_port;
    const char* path;
  };
  const Row rows[] = {
      {"/a/b?c", true, "", 443, false, "/a/b?c"},
      {"/a#frag", true, "", 443, false, "/a"},
      {"https://A.test/x", true, "A.test", 443, false, "/x"},
      {"HTTPS://a.test:8443", true, "a.test", 8443, true, "/"},
      {"https://[::1]:9/v6", true, "::1", 9, true, "/v6"},
      {"http://a.test/x", false, "", 0, false, ""},  // plain http:// inside TLS: not this tunnel's scheme
      {"a.test/x", false, "", 0, false, ""},
      {"*", false, "", 0, false, ""},
      {"/a b", false, "", 0, false, ""},
      {"/a\x7f", false, "", 0, false, ""},
      {"https:///x", false, "", 0, false, ""},
  };
  for (const auto& row : rows) {
    CAPTURE(row.in);
    auto u = sluice::proxy::parse_inspected_target(row.in);
    REQUIRE(u.ok() == row.ok);
    if (!row.ok) continue;
    CHECK(u->host == row.host);
    CHECK(u->port == row.port);
    CHECK(u->port_explicit == row.explicit_port);
    CHECK(u->path == row.path);
  }
}

TEST_CASE("upstream request: origin-form, Host from URL, hop-by-hop and Proxy-* gone") {
  HttpHead req;
  req.method = "GET";
  req.target = "http://a.test:8080/x";
  req.headers = {{"Host", "evil.test"},
                 {"Proxy-Authorization", "Basic xx"},
                 {"Proxy-Connection", "keep-alive"},
                 {"Connection", "keep-alive, X-Secret"},
                 {"X-Secret", "1"},
                 {"Keep-Alive", "timeout=5"},
                 {"TE", "trailers"},
                 {"Accept", "*/*"}};
  auto url = parse_absolute_url(req.target);
  REQUIRE(url.ok());
  std::string head = build_upstream_request(req, url.value(), "a.test:8080");
  CHECK(head == "GET /x HTTP/1.1\r\nHost: a.test:8080\r\nAccept: */*\r\n\r\n");
}

TEST_CASE("upstream request re-emits framing it parsed") {
  HttpHead req;
  req.method = "POST";
  req.chunked = true;
  req.headers = {{"Transfer-Encoding", "chunked"}, {"Content-Type", "x"}};
  AbsoluteUrl url;
  url.host = "a";
  url.path = "/";
  CHECK(build_upstream_request(req, url, "a") ==
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Type: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  req.chunked = false;
  req.has_content_length = true;
  req.content_length = 12;
  req.headers = {{"Content-Length", "12"}};
  CHECK(build_upstream_request(req, url, "a") == "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
}

TEST_CASE("client response keeps end-to-end headers and adds the framing chosen") {
  HttpHead resp;
  resp.status = 200;
  resp.reason = "OK";
  resp.headers = {{"Content-Type", "text/plain"}, {"Connection", "close"}, {"Transfer-Encoding", "chunked"}};
  resp.chunked = true;
  CHECK(build_client_response(resp, true, false) ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
  CHECK(build_client_response(resp, false, true) ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
}

TEST_CASE("error responses carry the reason header and a one-line body") {
  std::string r = error_response(403, "not-in-allowlist", "sluice: x is not allowed");
  CHECK(r.rfind("HTTP/1.1 403 Forbidden\r\n", 0) == 0);
  CHECK(r.find("X-Sluice-Reason: not-in-allowlist\r\n") != std::string::npos);
  CHECK(r.find("Connection: close\r\n") != std::string::npos);
  CHECK(r.find("Content-Length: 25\r\n") != std::string::npos);
  CHECK(r.substr(r.size() - 25) == "sluice: x is not allowed\n");
}
