// Canonical hosts and CONNECT authorities: one table per concern.
#include <doctest/doctest.h>

#include <string>

#include "rules/host.hpp"

using namespace sluice::rules;

TEST_CASE("canonicalize_host: table") {
  const std::string label63(63, 'a');
  const std::string label64(64, 'a');
  // 4 labels of 63 plus 3 dots = 255; trim to exactly 253 and 254.
  const std::string long_name = label63 + "." + label63 + "." + label63 + "." + label63;
  const std::string name253 = long_name.substr(0, 253);
  const std::string name254 = long_name.substr(0, 254);
  struct Row {
    std::string in;
    bool ok;
    HostKind kind;
    std::string text;  // canonical text, or a substring of the error
  };
  const Row rows[] = {
      {"example.com", true, HostKind::Name, "example.com"},
      {"Example.COM.", true, HostKind::Name, "example.com"},
      {"a_b-c.example", true, HostKind::Name, "a_b-c.example"},
      {"localhost", true, HostKind::Name, "localhost"},
      {"1example.com", true, HostKind::Name, "1example.com"},
      {"123.example", true, HostKind::Name, "123.example"},
      {"xn--bcher-kva.de", true, HostKind::Name, "xn--bcher-kva.de"},
      {label63 + ".test", true, HostKind::Name, label63 + ".test"},
      {name253, true, HostKind::Name, name253},
      {name253 + ".", true, HostKind::Name, name253},
      {"127.0.0.1", true, HostKind::Ip, "127.0.0.1"},
      {"1.2.3.4.", true, HostKind::Ip, "1.2.3.4"},
      {"::1", true, HostKind::Ip, "::1"},
      {"[::1]", true, HostKind::Ip, "::1"},
      {"[2001:DB8:0::1]", true, HostKind::Ip, "2001:db8::1"},
      {"[::FFFF:127.0.0.1]", true, HostKind::Ip, "::ffff:127.0.0.1"},
      {"", false, HostKind::Name, "bad host \"\": empty"},
      {".", false, HostKind::Name, "empty"},
      {"ex ample.com", false, HostKind::Name, "bad host \"ex ample.com\": space not allowed"},
      {"a..b", false, HostKind::Name, "empty label"},
      {".a", false, HostKind::Name, "empty label"},
      {"a..", false, HostKind::Name, "empty label"},
      {label64 + ".test", false, HostKind::Name, "label longer than 63 bytes"},
      {name254, false, HostKind::Name, "longer than 253 bytes"},
      {std::string("a\x01z.test"), false, HostKind::Name, "bad host \"a\\x01z.test\": control character not allowed"},
      {std::string("a\r\nb"), false, HostKind::Name, "\"a\\x0d\\x0ab\""},
      // IDNs are compared in punycode: UTF-8 input becomes its xn-- form, case-folded.
      {"b\xc3\xbc"
       "cher.de",
       true, HostKind::Name, "xn--bcher-kva.de"},
      {"B\xc3\x9c"
       "CHER.de.",
       true, HostKind::Name, "xn--bcher-kva.de"},
      {"\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95", true, HostKind::Name, "xn--fsqu00a.xn--0zwm56d"},
      {"\xff\xfe.de", false, HostKind::Name, "invalid internationalised name"},
      {"a\xe2\x80\x8b"
       "b.de",
       true, HostKind::Name, "ab.de"},  // UTS #46 drops a zero-width space, as browsers do
      {"a/b.test", false, HostKind::Name, "character '/' not allowed"},
      {"a*b.test", false, HostKind::Name, "character '*' not allowed"},
      {"user@evil.test", false, HostKind::Name, "character '@' not allowed"},
      {"[1.2.3.4]", false, HostKind::Name, "brackets are for IPv6 addresses"},
      {"[example.com]", false, HostKind::Name, "not a valid IPv6 address"},
      {"[]", false, HostKind::Name, "not a valid IPv6 address"},
      {"[::1", false, HostKind::Name, "not a valid IPv6 address"},
      {"example.com]", false, HostKind::Name, "unbalanced brackets"},
      {"fe80::1%eth0", false, HostKind::Name, "not a valid IPv6 address"},
      {"example.com:443", false, HostKind::Name, "not a valid IPv6 address"},
      // Lenient IPv4 spellings become the address they spell (as inet_aton reads them) ...
      {"127.1", true, HostKind::Ip, "127.0.0.1"},
      {"2130706433", true, HostKind::Ip, "127.0.0.1"},
      {"0x7f.1", true, HostKind::Ip, "127.0.0.1"},
      {"0x7f000001", true, HostKind::Ip, "127.0.0.1"},
      {"0X7F.0.0.1", true, HostKind::Ip, "127.0.0.1"},
      {"017700000001", true, HostKind::Ip, "127.0.0.1"},
      {"0x7f.0x0.0.01", true, HostKind::Ip, "127.0.0.1"},
      {"0177.1.", true, HostKind::Ip, "127.0.0.1"},
      {"01.2.3.4", true, HostKind::Ip, "1.2.3.4"},
      {"169.254.43518", true, HostKind::Ip, "169.254.169.254"},
      {"0xa9fea9fe", true, HostKind::Ip, "169.254.169.254"},
      {"0", true, HostKind::Ip, "0.0.0.0"},
      // ... and numeric-looking names that spell no address are refused, never matched as names.
      {"1.2.3.256", false, HostKind::Name, "non-standard spelling"},
      {"4294967296", false, HostKind::Name, "non-standard spelling"},
      {"08.1", false, HostKind::Name, "non-standard spelling"},
      {"0x.1", false, HostKind::Name, "non-standard spelling"},
      {"1.2.3.4.5", false, HostKind::Name, "non-standard spelling"},
      {"256.1", false, HostKind::Name, "non-standard spelling"},
      {"example.123", false, HostKind::Name, "non-standard spelling"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.in);
    auto h = canonicalize_host(row.in);
    REQUIRE(h.ok() == row.ok);
    if (row.ok) {
      CHECK(h->kind == row.kind);
      CHECK(h->text == row.text);
      if (row.kind == HostKind::Ip) CHECK(h->addr == *IpAddr::parse(row.text));
    } else {
      CHECK(h.error().find(row.text) != std::string::npos);
      CHECK(h.error().find('\n') == std::string::npos);
      for (unsigned char c : h.error()) CHECK(c >= 0x20);
    }
  }
}

TEST_CASE("split_host_port: table") {
  struct Row {
    const char* in;
    bool ok;
    const char* host;  // or a substring of the error
    uint16_t port;
  };
  const Row rows[] = {
      {"example.com:443", true, "example.com", 443},
      {"Example.COM.:80", true, "Example.COM.", 80},  // still raw: canonicalize_host comes next
      {"1.2.3.4:80", true, "1.2.3.4", 80},
      {"[::1]:443", true, "::1", 443},
      {"[2001:db8::1]:8443", true, "2001:db8::1", 8443},
      {"example.com:1", true, "example.com", 1},
      {"example.com:65535", true, "example.com", 65535},
      {"a b:80", true, "a b", 80},  // canonicalize_host refuses it, with its reason
      {"example.com", false, "missing :port", 0},
      {"example.com:", false, "bad port", 0},
      {"example.com:0", false, "bad port", 0},
      {"example.com:65536", false, "bad port", 0},
      {"example.com:123456", false, "bad port", 0},
      {"example.com:80x", false, "bad port", 0},
      {"example.com:+80", false, "bad port", 0},
      {"example.com:-1", false, "bad port", 0},
      {"example.com: 80", false, "bad port", 0},
      {":443", false, "empty host", 0},
      {"[]:443", false, "empty host", 0},
      {"::1:443", false, "IPv6 address needs brackets", 0},
      {"[::1]", false, "missing :port", 0},
      {"[::1]443", false, "junk after ]", 0},
      {"[::1:443", false, "unclosed [", 0},
      {"[example.com]:443", false, "IPv6 address only", 0},
      {"[1.2.3.4]:443", false, "IPv6 address only", 0},
      {"", false, "missing :port", 0},
  };
  for (const auto& row : rows) {
    CAPTURE(row.in);
    auto hp = split_host_port(row.in);
    REQUIRE(hp.ok() == row.ok);
    if (row.ok) {
      CHECK(hp->host == row.host);
      CHECK(hp->port == row.port);
    } else {
      CHECK(hp.error().find(row.host) != std::string::npos);
    }
  }
}
