// Host matching: one set of entries, one table of (host, port, expected entry) rows.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rules/host_set.hpp"

using namespace sluice::rules;

namespace {

HostSet make_set(const std::vector<std::string>& entries) {
  HostSet set;
  for (const auto& e : entries) {
    auto p = parse_pattern(e);
    REQUIRE_MESSAGE(p.ok(), e);
    set.add(std::move(p.value()));
  }
  return set;
}

// The source of the matching entry, or "-" for no match.
std::string match(const HostSet& set, const std::string& host, uint16_t port) {
  auto h = canonicalize_host(host);
  REQUIRE_MESSAGE(h.ok(), host);
  const HostPattern* p = set.match(h.value(), port);
  return p ? p->source : "-";
}

}  // namespace

TEST_CASE("HostSet::match: table") {
  const HostSet set = make_set({
      "github.com",
      "*.github.com",
      "api.example.com:443",
      "*.example.com:443",
      "Trailing.Dot.test.",
      "*.a.test",
      "*.deep.a.test",
      "exact.a.test",
      "p.test",
      "p.test:443",
      "*.q.test",
      "*.q.test:22",
      "10.1.0.0/16:22",
      "10.1.2.0/24",
      "1.2.3.4:80",
      "0.0.0.0/0:9",
      "2001:db8::/32",
      "2001:db8:1::/48",
      "[2001:db8::1]:443",
      "::1",
  });
  struct Row {
    const char* host;
    uint16_t port;
    const char* want;  // source of the entry, "-" for none
  };
  const Row rows[] = {
      // Exact names; case and one trailing dot do not matter.
      {"github.com", 443, "github.com"},
      {"GitHub.COM.", 80, "github.com"},
      {"trailing.dot.test", 1, "Trailing.Dot.test."},
      {"notgithub.com", 443, "-"},
      {"github.com.evil.test", 443, "-"},
      {"github.co", 443, "-"},
      // "*.x" is strictly subdomains, at any depth.
      {"a.github.com", 443, "*.github.com"},
      {"a.b.github.com", 443, "*.github.com"},
      {"A.GitHub.Com.", 443, "*.github.com"},
      {"agithub.com", 443, "-"},
      // Ports: an entry with a port matches that port only.
      {"api.example.com", 443, "api.example.com:443"},
      {"api.example.com", 80, "-"},
      {"x.example.com", 443, "*.example.com:443"},
      {"x.example.com", 8443, "-"},
      {"example.com", 443, "-"},
      // Most specific wins: exact over subdomains, longer suffix over shorter.
      {"exact.a.test", 1, "exact.a.test"},
      {"x.exact.a.test", 1, "*.a.test"},
      {"deep.a.test", 1, "*.a.test"},
      {"b.deep.a.test", 1, "*.deep.a.test"},
      {"c.b.deep.a.test", 1, "*.deep.a.test"},
      {"a.test", 1, "-"},
      // Same host: the port-specific entry first, whatever the order written.
      {"p.test", 443, "p.test:443"},
      {"p.test", 80, "p.test"},
      {"x.q.test", 22, "*.q.test:22"},
      {"x.q.test", 23, "*.q.test"},
      // IPv4 CIDRs: longest prefix first, then port-specific.
      {"10.1.2.3", 22, "10.1.2.0/24"},
      {"10.1.2.3", 80, "10.1.2.0/24"},
      {"10.1.3.3", 22, "10.1.0.0/16:22"},
      {"10.1.3.3", 80, "-"},
      {"1.2.3.4", 80, "1.2.3.4:80"},
      {"1.2.3.4", 81, "-"},
      {"1.2.3.5", 80, "-"},
      {"8.8.8.8", 9, "0.0.0.0/0:9"},
      // IPv6, bracketed or not.
      {"2001:db8::1", 443, "[2001:db8::1]:443"},
      {"[2001:db8::1]", 443, "[2001:db8::1]:443"},
      {"[2001:db8::1]", 80, "2001:db8::/32"},
      {"2001:db8:1::5", 80, "2001:db8:1::/48"},
      {"2001:db8:2::5", 80, "2001:db8::/32"},
      {"2001:db9::", 80, "-"},
      {"[::1]", 80, "::1"},
      {"::2", 80, "-"},
      // IPv4-mapped IPv6 reaches the IPv4 host, so IPv4 entries apply.
      {"[::ffff:10.1.2.3]", 80, "10.1.2.0/24"},
      {"::ffff:1.2.3.4", 80, "1.2.3.4:80"},
      {"::ffff:8.8.8.8", 9, "0.0.0.0/0:9"},
      // The families never mix otherwise, and names never match CIDRs.
      {"::ffff:8.8.8.8", 10, "-"},
      {"::8.8.8.8", 9, "-"},
      {"10.1.2.3.example", 80, "-"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    CAPTURE(row.port);
    CHECK(match(set, row.host, row.port) == row.want);
  }
  CHECK(set.size() == 20);
  CHECK_FALSE(set.empty());
  CHECK(set.patterns().front()->source == "github.com");
}

TEST_CASE("HostSet: empty, moved, and stable pattern pointers") {
  HostSet empty;
  CHECK(empty.empty());
  CHECK(match(empty, "github.com", 443) == "-");
  CHECK(match(empty, "1.2.3.4", 443) == "-");

  HostSet a = make_set({"one.test"});
  const HostPattern* first = a.patterns().front().get();
  for (int i = 0; i < 1000; ++i) a.add(parse_pattern("h" + std::to_string(i) + ".test").value());
  auto h = canonicalize_host("one.test").value();
  CHECK(a.match(h, 1) == first);  // pointers survive growth

  HostSet b = std::move(a);
  CHECK(b.match(h, 1) == first);
  CHECK(b.size() == 1001);
  a = make_set({"two.test"});  // a moved-from set can be assigned and used again
  CHECK(match(a, "two.test", 1) == "two.test");
}

TEST_CASE("HostSet: 100,000 entries") {
  HostSet set;
  for (int i = 0; i < 60000; ++i) set.add(parse_pattern("host" + std::to_string(i) + ".block.test").value());
  for (int i = 0; i < 20000; ++i) set.add(parse_pattern("*.zone" + std::to_string(i) + ".test").value());
  for (int i = 0; i < 10000; ++i)
    set.add(parse_pattern("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24").value());
  for (int i = 0; i < 10000; ++i) set.add(parse_pattern("[2001:db8:" + std::to_string(i) + "::/48]:443").value());
  REQUIRE(set.size() == 100000);
  struct Row {
    const char* host;
    uint16_t port;
    const char* want;
  };
  const Row rows[] = {
      {"host0.block.test", 443, "host0.block.test"},
      {"HOST59999.block.test.", 443, "host59999.block.test"},
      {"host60000.block.test", 443, "-"},
      {"x.host1.block.test", 443, "-"},
      {"a.b.zone19999.test", 443, "*.zone19999.test"},
      {"zone19999.test", 443, "-"},
      {"a.zone20000.test", 443, "-"},
      {"10.39.15.200", 80, "10.39.15.0/24"},
      {"10.39.16.1", 80, "-"},
      {"2001:db8:9999::1", 443, "[2001:db8:9999::/48]:443"},
      {"2001:db8:9999::1", 80, "-"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.host);
    CHECK(match(set, row.host, row.port) == row.want);
  }
}
