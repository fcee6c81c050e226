// The name a redirected connection's first bytes claim (TLS SNI, HTTP Host): one row
// per shape, including the cut-short and look-alike ones.
#include <doctest/doctest.h>

#include <string>

#include "sandbox-glue/first_bytes.hpp"

using namespace sluice::glue;
using Claim = ClaimedName::State;

namespace {

std::string fb_u16(size_t n) { return {static_cast<char>(n >> 8), static_cast<char>(n & 0xff)}; }

// A ClientHello with the given extensions, as one handshake message (no record header).
std::string fb_hello(const std::string& extensions) {
  std::string body;
  body += "\x03\x03";
  body += std::string(32, 'r');                    // random
  body += '\0';                                    // session id
  body += fb_u16(2) + std::string("\x13\x01", 2);  // one cipher suite
  body += std::string("\x01\x00", 2);              // compression: null
  body += fb_u16(extensions.size()) + extensions;
  return std::string("\x01\x00", 2) + fb_u16(body.size()) + body;
}

std::string fb_sni(const std::string& name) {
  std::string list = std::string(1, '\0') + fb_u16(name.size()) + name;
  std::string data = fb_u16(list.size()) + list;
  return std::string("\x00\x00", 2) + fb_u16(data.size()) + data;
}

std::string fb_record(const std::string& payload) {
  return std::string("\x16\x03\x01", 3) + fb_u16(payload.size()) + payload;
}

}  // namespace

TEST_CASE("first bytes: TLS ClientHello SNI") {
  const std::string other_ext = std::string("\x00\x2b\x00\x03\x02\x03\x04", 7);  // supported_versions
  const std::string hello = fb_hello(other_ext + fb_sni("Evil.Example.COM."));
  auto c = claimed_name(fb_record(hello));
  CHECK(c.state == Claim::Found);
  CHECK(c.name == "evil.example.com");
  CHECK(std::string(c.via) == "sni");
  // Split over two records.
  auto split = claimed_name(fb_record(hello.substr(0, 20)) + fb_record(hello.substr(20)));
  CHECK(split.state == Claim::Found);
  CHECK(split.name == "evil.example.com");
  // Every cut short of the whole is "need more", never a wrong answer.
  const std::string whole = fb_record(hello);
  for (size_t n = 1; n < whole.size(); ++n) {
    CAPTURE(n);
    CHECK(claimed_name(whole.substr(0, n)).state == Claim::NeedMore);
  }
  CHECK(claimed_name(fb_record(fb_hello(other_ext))).state == Claim::None);           // no SNI
  CHECK(claimed_name(fb_record(fb_hello(fb_sni("10.0.0.1")))).state == Claim::None);  // a literal
  std::string server_hello = hello;
  server_hello[0] = 2;
  CHECK(claimed_name(fb_record(server_hello)).state == Claim::None);
  CHECK(claimed_name(std::string("\x16\x02\x00\x00\x05", 5)).state == Claim::None);  // not TLS 1.x
}

TEST_CASE("first bytes: HTTP Host") {
  struct Row {
    const char* bytes;
    Claim state;
    const char* name;
  };
  const Row rows[] = {
      {"GET / HTTP/1.1\r\nHost: Other.Test\r\n\r\n", Claim::Found, "other.test"},
      {"POST /x HTTP/1.1\r\nUser-Agent: a\r\nhost:other.test:8080 \r\n\r\n", Claim::Found, "other.test"},
      {"GET / HTTP/1.1\r\nHOST: other.test\r\n\r\n", Claim::Found, "other.test"},
      {"GET / HTTP/1.1\r\nHost: 10.1.2.3:80\r\n\r\n", Claim::None, ""},
      {"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", Claim::None, ""},
      {"GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", Claim::None, ""},
      {"GET / HTTP/1.1\r\nX-Host: other.test\r\n\r\n", Claim::None, ""},
      {"GET / HTTP/1.1\r\nHost: other.test\r\n", Claim::NeedMore, ""},
      {"GE", Claim::NeedMore, ""},
      {"SSH-2.0-OpenSSH_9.2\r\n", Claim::None, ""},
      {"raw bytes", Claim::None, ""},
      {"\x05\x01\x00", Claim::None, ""},
      // A method of 15 letters is the longest taken; a 16th decides at once, whatever follows
      // (found by fuzz_first_bytes: "SSPFFFFFFFOSHEAD F..." was None as 16 bytes, a request longer).
      {"ABCDEFGHIJKLMNO / HTTP/1.1\r\nHost: other.test\r\n\r\n", Claim::Found, "other.test"},
      {"ABCDEFGHIJKLMNOP", Claim::None, ""},
      {"ABCDEFGHIJKLMNOP / HTTP/1.1\r\nHost: other.test\r\n\r\n", Claim::None, ""},
      {"ABCDEFGHIJKLMNO", Claim::NeedMore, ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.bytes);
    auto c = claimed_name(r.bytes);
    CHECK(c.state == r.state);
    CHECK(c.name == r.name);
    if (c.state == Claim::Found) CHECK(std::string(c.via) == "host");
  }
  CHECK(claimed_name("").state == Claim::NeedMore);
  CHECK(claimed_name("GET / HTTP/1.1\r\n" + std::string(kMaxFirstBytes, 'a')).state == Claim::None);  // no end
}

TEST_CASE("first bytes: an HTTP request gets the readable refusal") {
  CHECK(looks_like_http_request("GET / HTTP/1.1\r\n"));
  CHECK(looks_like_http_request("OPTIONS *"));
  CHECK_FALSE(looks_like_http_request(""));
  CHECK_FALSE(looks_like_http_request("GET"));  // not yet a request line
  CHECK_FALSE(looks_like_http_request("get / HTTP/1.1\r\n"));
  CHECK_FALSE(looks_like_http_request("SSH-2.0-OpenSSH\r\n"));
  CHECK_FALSE(looks_like_http_request(std::string("\x16\x03\x01\x00\x05", 5)));
  CHECK_FALSE(looks_like_http_request(std::string(20, 'A') + " /"));
  CHECK(looks_like_http_request(std::string(15, 'A') + " /"));
  CHECK_FALSE(looks_like_http_request(std::string(16, 'A') + " /"));
}
