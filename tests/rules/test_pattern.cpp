// Allow/deny list entries: what parses to what, and what is refused with which reason.
#include <doctest/doctest.h>

#include <string>

#include "rules/pattern.hpp"

using namespace sluice::rules;

TEST_CASE("parse_pattern: table") {
  using K = HostPattern::Kind;
  struct Row {
    const char* in;
    bool ok;
    K kind;
    const char* what;  // name (Exact, Subdomains), CIDR text (Cidr), or an error substring
    int port;          // 0: any port
  };
  const Row rows[] = {
      {"github.com", true, K::Exact, "github.com", 0},
      {"GitHub.COM.", true, K::Exact, "github.com", 0},
      {"*.github.com", true, K::Subdomains, "github.com", 0},
      {"*.GitHub.com.", true, K::Subdomains, "github.com", 0},
      {"*.com", true, K::Subdomains, "com", 0},
      {"api.example.com:443", true, K::Exact, "api.example.com", 443},
      {"*.github.com:443", true, K::Subdomains, "github.com", 443},
      {"localhost:1", true, K::Exact, "localhost", 1},
      {"x.test:65535", true, K::Exact, "x.test", 65535},
      {"10.1.2.0/24", true, K::Cidr, "10.1.2.0/24", 0},
      {"10.1.2.0/24:443", true, K::Cidr, "10.1.2.0/24", 443},
      {"1.2.3.4", true, K::Cidr, "1.2.3.4/32", 0},
      {"1.2.3.4.", true, K::Cidr, "1.2.3.4/32", 0},
      {"1.2.3.4:80", true, K::Cidr, "1.2.3.4/32", 80},
      {"2001:db8::1", true, K::Cidr, "2001:db8::1/128", 0},
      {"2001:DB8::/32", true, K::Cidr, "2001:db8::/32", 0},
      {"[2001:db8::1]", true, K::Cidr, "2001:db8::1/128", 0},
      {"[2001:db8::1]:443", true, K::Cidr, "2001:db8::1/128", 443},
      {"[2001:db8::/32]:443", true, K::Cidr, "2001:db8::/32", 443},
      {"::ffff:10.0.0.0/104", true, K::Cidr, "::ffff:10.0.0.0/104", 0},
      {"2001:db8::1:443", true, K::Cidr, "2001:db8::1:443/128", 0},  // no brackets: all address
      {"", false, K::Exact, "bad pattern \"\": empty", 0},
      {"*", false, K::Exact, "'*' is only allowed as a whole first label", 0},
      {"*.", false, K::Exact, "'*.' needs a domain after it", 0},
      {"*..", false, K::Exact, "'*.' needs a domain after it", 0},
      {"**.x", false, K::Exact, "'*' is only allowed", 0},
      {"*.*.x", false, K::Exact, "'*' is only allowed", 0},
      {"a.*.b", false, K::Exact, "bad pattern \"a.*.b\": '*' is only allowed", 0},
      {"x*.y", false, K::Exact, "'*' is only allowed", 0},
      {"*x.y", false, K::Exact, "'*' is only allowed", 0},
      {"*.x:443:1", false, K::Exact, "not a valid IPv6 address", 0},
      {"github.com:", false, K::Exact, "port must be a number from 1 to 65535", 0},
      {"github.com:0", false, K::Exact, "port must be", 0},
      {"github.com:65536", false, K::Exact, "port must be", 0},
      {"github.com:https", false, K::Exact, "port must be", 0},
      {":443", false, K::Exact, "empty host", 0},
      {"[]:443", false, K::Exact, "empty host", 0},
      {"[::1]:0", false, K::Exact, "port must be", 0},
      {"[::1]x", false, K::Exact, "expected :port after ]", 0},
      {"[::1", false, K::Exact, "unclosed [", 0},
      {"[1.2.3.4]:80", false, K::Exact, "brackets are for IPv6 addresses", 0},
      {"[example.com]", false, K::Exact, "brackets are for IPv6 addresses", 0},
      {"[1:2]", false, K::Exact, "not a valid IPv6 address", 0},
      {"10.0.0.1/8", false, K::Exact, "not a CIDR block", 0},
      {"10.0.0.0/33", false, K::Exact, "prefix must be 0..32", 0},
      {"2001:db8::1/32", false, K::Exact, "no bits set below it", 0},
      {"10.0.0.0/", false, K::Exact, "not a CIDR block", 0},
      {"example.com/24", false, K::Exact, "not an IP address before '/'", 0},
      {"ex ample.com", false, K::Exact, "bad pattern \"ex ample.com\": space not allowed", 0},
      {"a..b", false, K::Exact, "empty label", 0},
      {"*.1.2.3.4", false, K::Exact, "'*.' takes a domain name, not an IP address", 0},
      {"127.1", false, K::Exact, "non-standard spelling", 0},
      {"2130706433", false, K::Exact, "non-standard spelling", 0},
      {"0x7f.1", false, K::Exact, "non-standard spelling", 0},
      {"01.2.3.4", false, K::Exact, "non-standard spelling", 0},
      {"a\tb", false, K::Exact, "\"a\\x09b\": control character", 0},
  };
  for (const auto& row : rows) {
    CAPTURE(row.in);
    auto p = parse_pattern(row.in);
    REQUIRE(p.ok() == row.ok);
    if (!row.ok) {
      CHECK(p.error().find(row.what) != std::string::npos);
      continue;
    }
    CHECK(p->kind == row.kind);
    CHECK(p->source == row.in);
    if (row.kind == K::Cidr)
      CHECK(p->cidr.to_string() == row.what);
    else
      CHECK(p->name == row.what);
    CHECK(p->port.has_value() == (row.port != 0));
    if (row.port) CHECK(*p->port == row.port);
  }
}
