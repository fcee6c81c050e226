// Transparent mode's resolver, the deciding half: fake addresses for names the policy
// could allow, NXDOMAIN and a `dns-denied` line for the others, REFUSED under a flood
// of other query types or a full map, each refusal kind logged once per window.
#include <doctest/doctest.h>

#include <string>

#include "proxy/dns_answer.hpp"
#include "rules/pattern.hpp"

using namespace sluice::proxy;
using namespace sluice::rules;
namespace dns = sluice::proxy::dns;

namespace {

std::string u16(int v) { return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)}; }

std::string query(const std::string& dotted, int qtype, int id = 0x0101) {
  std::string out = u16(id) + u16(0x0100) + u16(1) + u16(0) + u16(0) + u16(0);
  size_t start = 0;
  while (start < dotted.size()) {
    size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    out += static_cast<char>(dot - start);
    out += dotted.substr(start, dot - start);
    start = dot + 1;
  }
  out += '\0';
  return out + u16(qtype) + u16(1);
}

Policy policy() {
  Policy p;
  p.name = "jail";
  p.allow.add(parse_pattern("allowed.test").value());
  p.allow.add(parse_pattern("*.ok.test").value());
  p.deny.add(parse_pattern("denied.test").value());
  return p;
}

uint16_t ancount(const std::string& reply) {
  return static_cast<uint16_t>((static_cast<uint8_t>(reply[6]) << 8) | static_cast<uint8_t>(reply[7]));
}
int rcode(const std::string& reply) { return static_cast<uint8_t>(reply[3]) & 0x0f; }
// The rdata of the only answer record: its last `n` bytes.
std::string rdata(const std::string& reply, size_t n) { return reply.substr(reply.size() - n); }

}  // namespace

TEST_CASE("dns answer: allowed names get stable fake addresses, both families") {
  DnsAnswerer a(TransparentConfig{}, "sb1");
  const Policy p = policy();
  auto r1 = a.answer(p, query("allowed.test", dns::type::A), 0);
  REQUIRE(r1.reply);
  CHECK(r1.rcode == dns::Rcode::NoError);
  CHECK(ancount(*r1.reply) == 1);
  CHECK(rdata(*r1.reply, 4) == std::string("\xc6\x12\x00\x01", 4));  // 198.18.0.1
  CHECK(r1.log.empty());

  auto r2 = a.answer(p, query("x.OK.test", dns::type::A), 0);
  REQUIRE(r2.reply);
  CHECK(rdata(*r2.reply, 4) == std::string("\xc6\x12\x00\x02", 4));
  auto r3 = a.answer(p, query("allowed.test", dns::type::AAAA), 0);
  REQUIRE(r3.reply);
  CHECK(ancount(*r3.reply) == 1);
  CHECK(rdata(*r3.reply, 16) == std::string("\xfd\x73\x6c\x75\x69\x63\x65\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16));
  CHECK(a.map().size() == 2);
  CHECK(*a.map().name_of(*IpAddr::parse("198.18.0.2")) == "x.ok.test");
}

TEST_CASE("dns answer: denied and unlisted names do not exist, logged dns-denied") {
  DnsAnswerer a(TransparentConfig{}, "sb1");
  const Policy p = policy();
  struct Row {
    std::string name;
    int qtype;
    const char* reason;
  };
  const Row rows[] = {
      {"denied.test", dns::type::A, "\"reason\":\"denied-by-rule\""},
      {"denied.test", dns::type::TXT, "\"reason\":\"denied-by-rule\""},
      {"other.test", dns::type::AAAA, "\"reason\":\"not-in-allowlist\""},
      {"127.0.0.1", dns::type::A, "\"reason\":\"not-a-name\""},
      {"", dns::type::A, "\"reason\":\"bad-name\""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    auto out = a.answer(p, query(r.name, r.qtype), 0);
    REQUIRE(out.reply);
    CHECK(out.rcode == dns::Rcode::NxDomain);
    CHECK(rcode(*out.reply) == 3);
    CHECK(ancount(*out.reply) == 0);
    REQUIRE(out.log.size() == 1);
    CHECK(out.log[0].find("\"event\":\"dns-denied\"") != std::string::npos);
    CHECK(out.log[0].find("\"sandbox\":\"sb1\"") != std::string::npos);
    CHECK(out.log[0].find("\"policy\":\"jail\"") != std::string::npos);
    CHECK(out.log[0].find(r.reason) != std::string::npos);
  }
  CHECK(a.map().size() == 0);  // nothing mapped for a name that does not exist
}

TEST_CASE("dns answer: other types for allowed names are answered empty") {
  DnsAnswerer a(TransparentConfig{}, "");
  auto out = a.answer(policy(), query("allowed.test", dns::type::MX), 0);
  REQUIRE(out.reply);
  CHECK(out.rcode == dns::Rcode::NoError);
  CHECK(ancount(*out.reply) == 0);
  CHECK(a.map().size() == 0);
}

TEST_CASE("dns answer: a flood of TXT queries is refused once the bucket is empty, logged once per window") {
  DnsFloodLimit limit;
  limit.per_second = 1;
  limit.burst = 3;
  limit.log_window_ms = 10000;
  DnsAnswerer a(TransparentConfig{}, "sb", limit);
  const Policy p = policy();
  for (int i = 0; i < 3; ++i) {
    auto ok = a.answer(p, query("allowed.test", dns::type::TXT), 0);
    CHECK(ok.rcode == dns::Rcode::NoError);
  }
  auto first = a.answer(p, query("allowed.test", dns::type::TXT), 0);
  REQUIRE(first.reply);
  CHECK(first.rcode == dns::Rcode::Refused);
  CHECK(rcode(*first.reply) == 5);
  REQUIRE(first.log.size() == 1);
  CHECK(first.log[0].find("\"event\":\"dns-flood\"") != std::string::npos);
  CHECK(first.log[0].find("\"unlogged_since_last\":0}") != std::string::npos);
  for (int i = 0; i < 5; ++i) {
    auto more = a.answer(p, query("x.test", dns::type::Null), 100);
    CHECK(more.rcode == dns::Rcode::Refused);
    CHECK(more.log.empty());
  }
  // Address queries never draw from the bucket.
  CHECK(a.answer(p, query("allowed.test", dns::type::A), 100).rcode == dns::Rcode::NoError);
  // Malformed ones do, and are not answered while it is empty.
  auto junk = a.answer(p, std::string(12, '\0'), 200);
  CHECK_FALSE(junk.reply);
  // Two seconds later two tokens are back.
  CHECK(a.answer(p, query("allowed.test", dns::type::TXT), 2200).rcode == dns::Rcode::NoError);
  CHECK(a.answer(p, query("allowed.test", dns::type::TXT), 2200).rcode == dns::Rcode::NoError);
  CHECK(a.answer(p, query("allowed.test", dns::type::TXT), 2200).rcode == dns::Rcode::Refused);
  // After the window, the next refusal is logged with how many were not.
  auto later = a.answer(p, query("allowed.test", dns::type::Any), 10100);
  CHECK(later.rcode == dns::Rcode::NoError);  // ~8 tokens refilled since 2200
  DnsAnswerer b(TransparentConfig{}, "sb", limit);
  for (int i = 0; i < 3; ++i) b.answer(p, query("allowed.test", dns::type::TXT), 0);
  CHECK(b.answer(p, query("allowed.test", dns::type::TXT), 0).log.size() == 1);
  CHECK(b.answer(p, query("allowed.test", dns::type::TXT), 0).log.empty());
  CHECK(b.answer(p, query("allowed.test", dns::type::TXT), 0).log.empty());
  auto next_window = b.answer(p, query("allowed.test", dns::type::TXT), 10000);
  // 10 s refilled the bucket (burst 3): allowed again, so drain it first.
  CHECK(next_window.rcode == dns::Rcode::NoError);
  b.answer(p, query("allowed.test", dns::type::TXT), 10000);
  b.answer(p, query("allowed.test", dns::type::TXT), 10000);
  auto logged = b.answer(p, query("allowed.test", dns::type::TXT), 10000);
  CHECK(logged.rcode == dns::Rcode::Refused);
  REQUIRE(logged.log.size() == 1);
  CHECK(logged.log[0].find("\"unlogged_since_last\":2}") != std::string::npos);
}

TEST_CASE("dns answer: a full map refuses new names and keeps answering known ones") {
  TransparentConfig cfg;
  cfg.max_names = 2;
  Policy p;
  p.name = "open";
  p.default_action = Action::Allow;
  DnsAnswerer a(cfg, "sb");
  CHECK(a.answer(p, query("one.test", dns::type::A), 0).rcode == dns::Rcode::NoError);
  CHECK(a.answer(p, query("two.test", dns::type::A), 0).rcode == dns::Rcode::NoError);
  auto full = a.answer(p, query("three.test", dns::type::A), 0);
  REQUIRE(full.reply);
  CHECK(full.rcode == dns::Rcode::Refused);
  REQUIRE(full.log.size() == 1);
  CHECK(full.log[0].find("\"event\":\"dns-map-full\"") != std::string::npos);
  CHECK(full.log[0].find("\"max_names\":2") != std::string::npos);
  CHECK(a.answer(p, query("four.test", dns::type::A), 1).log.empty());  // same window
  auto known = a.answer(p, query("one.test", dns::type::A), 2);
  REQUIRE(known.reply);
  CHECK(rdata(*known.reply, 4) == std::string("\xc6\x12\x00\x01", 4));
}

TEST_CASE("dns answer: malformed queries get the codec's error, responses get silence") {
  DnsAnswerer a(TransparentConfig{}, "sb");
  std::string two = query("a.test", dns::type::A);
  two[5] = 2;  // two questions
  auto out = a.answer(policy(), two, 0);
  REQUIRE(out.reply);
  CHECK(out.rcode == dns::Rcode::FormErr);
  CHECK(rcode(*out.reply) == 1);
  std::string response = query("a.test", dns::type::A);
  response[2] = static_cast<char>(0x81);
  CHECK_FALSE(a.answer(policy(), response, 0).reply);
}
