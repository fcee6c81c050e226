// `sluice connect`'s side of SOCKS5 and the proxy addresses it accepts.
#include <doctest/doctest.h>

#include <string>

#include "sandbox-glue/connect_relay.hpp"
#include "sandbox-glue/socks5_client.hpp"

using namespace sluice::glue;

namespace {
std::string b(std::initializer_list<int> bytes) {
  std::string out;
  for (int x : bytes) out += static_cast<char>(x);
  return out;
}
}  // namespace

TEST_CASE("SOCKS5 client messages") {
  CHECK(socks5::greeting(false) == b({5, 1, 0}));
  CHECK(socks5::greeting(true) == b({5, 2, 0, 2}));
  CHECK(socks5::user_pass("ab", "xyz") == b({1, 2, 'a', 'b', 3, 'x', 'y', 'z'}));
  CHECK(socks5::connect_request("git.xy", 22) == b({5, 1, 0, 3, 6, 'g', 'i', 't', '.', 'x', 'y', 0, 22}));
  CHECK(socks5::connect_request("127.0.0.1", 8080) == b({5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90}));
  CHECK(socks5::connect_request("::1", 443) ==
        b({5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb}));
  CHECK(socks5::connect_request("[::1]", 443) == socks5::connect_request("::1", 443));
  CHECK(socks5::connect_request(std::string(256, 'a'), 1).empty());
}

TEST_CASE("SOCKS5 reply lengths") {
  CHECK(socks5::reply_length("") == 0);
  CHECK(socks5::reply_length(b({5, 0, 0, 1, 0, 0, 0})) == 0);
  CHECK(socks5::reply_length(b({5, 0, 0, 1, 0, 0, 0, 0, 0, 0})) == 10);
  CHECK(socks5::reply_length(b({5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 'S', 'S', 'H'})) == 10);
  CHECK(socks5::reply_length(b({5, 0, 0, 3, 2, 'a', 'b', 0, 1})) == 9);
  CHECK(socks5::reply_length(b({5, 0, 0, 4, 0})) == 0);
  CHECK(socks5::reply_length(b({5, 0, 0, 9, 0})) == -1);
  CHECK(socks5::reply_length("HTTP/1.1 400") == -1);
  CHECK(std::string(socks5::reply_text(2)) == "connection not allowed by ruleset");
}

TEST_CASE("proxy addresses") {
  struct Row {
    const char* text;
    ProxyAddress::Protocol protocol;
    const char* host;
    int port;
    const char* user;
    const char* pass;
  };
  using P = ProxyAddress::Protocol;
  const Row rows[] = {
      {"http://127.0.0.1:3128", P::Http, "127.0.0.1", 3128, "", ""},
      {"http://127.0.0.1:3128/", P::Http, "127.0.0.1", 3128, "", ""},
      {"socks5h://127.0.0.1:1080", P::Socks5, "127.0.0.1", 1080, "", ""},
      {"socks5://[::1]:1080", P::Socks5, "::1", 1080, "", ""},
      {"127.0.0.1:3128", P::Auto, "127.0.0.1", 3128, "", ""},
      {"socks5h://agent:s3%3Acret@127.0.0.1:1080", P::Socks5, "127.0.0.1", 1080, "agent", "s3:cret"},
      {"http://u:p@localhost:8080", P::Http, "localhost", 8080, "u", "p"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.text);
    ProxyAddress a;
    CHECK(parse_proxy_address(r.text, a) == "");
    CHECK(a.protocol == r.protocol);
    CHECK(a.host == r.host);
    CHECK(a.port == r.port);
    CHECK(a.username == r.user);
    CHECK(a.password == r.pass);
  }
  ProxyAddress u;
  CHECK(parse_proxy_address("unix:/run/sluice/proxy.sock", u) == "");
  CHECK(u.unix_socket);
  CHECK(u.protocol == P::Auto);
  // "::1:1080": an IPv6 address needs brackets, as everywhere in sluice (one splitter, rules/host.hpp).
  for (const char* bad : {"ftp://127.0.0.1:21", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "unix:", "::1:1080",
                          "socks5://[::1]1080", "http://:3128"}) {
    ProxyAddress a;
    CAPTURE(bad);
    CHECK(parse_proxy_address(bad, a) != "");
  }
  // A bad escape is an error, not a password taken literally; no error quotes the password.
  for (const char* bad : {"socks5h://agent:s3%zzcret@127.0.0.1:1080", "ftp://agent:s3cret@127.0.0.1:21",
                          "http://agent:s3cret@127.0.0.1"}) {
    ProxyAddress a;
    CAPTURE(bad);
    const std::string err = parse_proxy_address(bad, a);
    CHECK(err != "");
    CHECK(err.find("s3") == std::string::npos);
  }
}
