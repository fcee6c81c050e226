// The DNS codec of the transparent jail's resolver: one row per well-formed and
// malformed query, the exact bytes of every answer, and the TCP length framing.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/dns_message.hpp"

using namespace sluice::proxy::dns;
using sluice::rules::IpAddr;

namespace {

std::string b(std::initializer_list<int> bytes) {
  std::string out;
  for (int x : bytes) out += static_cast<char>(x);
  return out;
}

std::string u16(int v) { return b({(v >> 8) & 0xff, v & 0xff}); }

// Labels as given (no escaping), then the root label.
std::string wire_name(std::initializer_list<std::string> labels) {
  std::string out;
  for (const auto& l : labels) {
    out += static_cast<char>(l.size());
    out += l;
  }
  out += '\0';
  return out;
}

std::string header(int id, int flags, int qd, int an = 0, int ns = 0, int ar = 0) {
  return u16(id) + u16(flags) + u16(qd) + u16(an) + u16(ns) + u16(ar);
}

// A stub's query: id 0x1234, RD set, one question.
std::string query(const std::string& name_wire, int qtype, int qclass = 1) {
  return header(0x1234, 0x0100, 1) + name_wire + u16(qtype) + u16(qclass);
}

}  // namespace

TEST_CASE("dns: queries a stub resolver sends are parsed") {
  struct Row {
    std::string msg;
    std::string name;
    uint16_t qtype;
  };
  const std::string opt = b({0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0});  // EDNS OPT, 1232 bytes
  const Row rows[] = {
      {query(wire_name({"allowed", "test"}), type::A), "allowed.test", type::A},
      {query(wire_name({"AlLoWeD", "TEST"}), type::AAAA), "allowed.test", type::AAAA},  // 0x20 case
      {query(wire_name({}), type::A), "", type::A},                                     // the root
      {query(wire_name({"x"}), type::TXT), "x", type::TXT},
      {query(wire_name({"_srv", "_tcp", "a-b"}), type::Any), "_srv._tcp.a-b", type::Any},
      {header(0x1234, 0x0100, 1, 0, 0, 1) + wire_name({"e", "test"}) + u16(1) + u16(1) + opt, "e.test", type::A},
      {query(wire_name({std::string(63, 'a')}), type::A), std::string(63, 'a'), type::A},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    auto p = parse_query(r.msg);
    REQUIRE_MESSAGE(p.ok, p.reason);
    CHECK(p.query.id == 0x1234);
    CHECK(p.query.recursion_desired);
    CHECK(p.query.name == r.name);
    CHECK(p.query.qtype == r.qtype);
    CHECK(p.query.qclass == kClassIn);
  }
}

TEST_CASE("dns: the question is kept as sent, case included") {
  const std::string name = wire_name({"MiXeD", "Test"});
  auto p = parse_query(query(name, type::A));
  REQUIRE(p.ok);
  CHECK(p.query.question == name + u16(1) + u16(1));
}

TEST_CASE("dns: malformed or unsupported queries are refused with the right rcode") {
  // A name of 127 one-byte labels is 255 wire bytes (the limit); one more label is over.
  std::string max_name, long_name;
  for (int i = 0; i < 127; ++i) max_name += b({1, 'a'});
  long_name = max_name + b({1, 'a'});
  max_name += '\0';
  long_name += '\0';
  REQUIRE(max_name.size() == 255);
  REQUIRE(parse_query(query(max_name, type::A)).ok);

  struct Row {
    const char* what;
    std::string msg;
    Rcode rcode;
  };
  const auto name = wire_name({"a", "test"});
  const Row rows[] = {
      {"empty", "", Rcode::FormErr},
      {"short header", b({0x12, 0x34, 1, 0, 0, 1}), Rcode::FormErr},
      {"header only", header(1, 0x0100, 1), Rcode::FormErr},
      {"response", header(1, 0x8100, 1) + name + u16(1) + u16(1), Rcode::FormErr},
      {"opcode IQUERY", header(1, 0x0900, 1) + name + u16(1) + u16(1), Rcode::NotImp},
      {"opcode UPDATE", header(1, 0x2800, 1) + name + u16(1) + u16(1), Rcode::NotImp},
      {"truncated flag", header(1, 0x0300, 1) + name + u16(1) + u16(1), Rcode::FormErr},
      {"no question", header(1, 0x0100, 0), Rcode::FormErr},
      {"two questions", header(1, 0x0100, 2) + name + u16(1) + u16(1) + name + u16(1) + u16(1), Rcode::FormErr},
      {"answer record", header(1, 0x0100, 1, 1) + name + u16(1) + u16(1), Rcode::FormErr},
      {"authority record", header(1, 0x0100, 1, 0, 1) + name + u16(1) + u16(1), Rcode::FormErr},
      {"compression pointer", header(1, 0x0100, 1) + b({1, 'a', 0xc0, 12}) + u16(1) + u16(1), Rcode::FormErr},
      {"pointer to itself", header(1, 0x0100, 1) + b({0xc0, 12}) + u16(1) + u16(1), Rcode::FormErr},
      {"extended label type", header(1, 0x0100, 1) + b({0x41, 'a', 0}) + u16(1) + u16(1), Rcode::FormErr},
      {"label past the end", header(1, 0x0100, 1) + b({5, 'a', 'b'}), Rcode::FormErr},
      {"no root label", header(1, 0x0100, 1) + b({1, 'a'}), Rcode::FormErr},
      {"no type", header(1, 0x0100, 1) + name, Rcode::FormErr},
      {"half a class", header(1, 0x0100, 1) + name + u16(1) + b({0}), Rcode::FormErr},
      {"name over 255 bytes", query(long_name, type::A), Rcode::FormErr},
      {"dot inside a label", query(wire_name({"a.b", "test"}), type::A), Rcode::Refused},
      {"NUL in a label", query(wire_name({std::string("a\0b", 3)}), type::A), Rcode::Refused},
      {"space in a label", query(wire_name({"a b"}), type::A), Rcode::Refused},
      {"high byte in a label", query(wire_name({"\xc3\xa9"}), type::A), Rcode::Refused},
      {"class CH", query(name, type::TXT, 3), Rcode::NotImp},
      {"class ANY", query(name, type::A, 255), Rcode::NotImp},
      {"over the size bound", query(name, type::A) + std::string(kMaxQueryBytes, '\0'), Rcode::FormErr},
  };
  for (const auto& r : rows) {
    CAPTURE(r.what);
    auto p = parse_query(r.msg);
    CHECK_FALSE(p.ok);
    CHECK(p.error == r.rcode);
    CHECK_FALSE(p.reason.empty());
  }
}

TEST_CASE("dns: an A answer carries the IPv4 addresses only, with the TTL") {
  auto p = parse_query(query(wire_name({"Allowed", "test"}), type::A));
  REQUIRE(p.ok);
  const std::vector<IpAddr> addrs = {*IpAddr::parse("198.18.0.5"), *IpAddr::parse("fd00::5"),
                                     *IpAddr::parse("198.18.0.6")};
  const std::string got = answer_addresses(p.query, addrs, 5);
  const std::string want = header(0x1234, 0x8180, 1, 2) + p.query.question + b({0xc0, 12}) + u16(1) + u16(1) +
                           b({0, 0, 0, 5}) + u16(4) + b({198, 18, 0, 5}) + b({0xc0, 12}) + u16(1) + u16(1) +
                           b({0, 0, 0, 5}) + u16(4) + b({198, 18, 0, 6});
  CHECK(got == want);
}

TEST_CASE("dns: an AAAA answer carries the IPv6 addresses only") {
  auto p = parse_query(query(wire_name({"a", "test"}), type::AAAA));
  REQUIRE(p.ok);
  const std::vector<IpAddr> addrs = {*IpAddr::parse("198.18.0.5"), *IpAddr::parse("fd00::5")};
  const std::string got = answer_addresses(p.query, addrs, 300);
  const std::string want = header(0x1234, 0x8180, 1, 1) + p.query.question + b({0xc0, 12}) + u16(28) + u16(1) +
                           b({0, 0, 1, 44}) + u16(16) + b({0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5});
  CHECK(got == want);
}

TEST_CASE("dns: other types and families get an empty NOERROR answer") {
  const std::vector<IpAddr> v4 = {*IpAddr::parse("198.18.0.5")};
  for (uint16_t t : {type::TXT, type::Null, type::Any, type::MX, type::CNAME}) {
    CAPTURE(t);
    auto p = parse_query(query(wire_name({"a", "test"}), t));
    REQUIRE(p.ok);
    CHECK(answer_addresses(p.query, v4, 5) == header(0x1234, 0x8180, 1, 0) + p.query.question);
  }
  auto p = parse_query(query(wire_name({"a", "test"}), type::AAAA));
  REQUIRE(p.ok);
  CHECK(answer_addresses(p.query, v4, 5) == header(0x1234, 0x8180, 1, 0) + p.query.question);
}

TEST_CASE("dns: an answer holds at most kMaxAnswerAddresses records") {
  auto p = parse_query(query(wire_name({"a"}), type::A));
  REQUIRE(p.ok);
  std::vector<IpAddr> many;
  for (uint32_t i = 0; i < 20; ++i) many.push_back(IpAddr::v4(0xc6120000 + i));
  const std::string got = answer_addresses(p.query, many, 5);
  CHECK(got.substr(6, 2) == u16(kMaxAnswerAddresses));
  CHECK(got.size() == kHeaderBytes + p.query.question.size() + kMaxAnswerAddresses * 16);
}

TEST_CASE("dns: rcode answers echo id, RD and the question") {
  auto p = parse_query(header(0xbeef, 0x0000, 1) + wire_name({"d", "test"}) + u16(1) + u16(1));
  REQUIRE(p.ok);
  CHECK_FALSE(p.query.recursion_desired);
  CHECK(answer_rcode(p.query, Rcode::NxDomain) == header(0xbeef, 0x8083, 1) + p.query.question);
  CHECK(answer_rcode(p.query, Rcode::Refused) == header(0xbeef, 0x8085, 1) + p.query.question);
  CHECK(answer_rcode(p.query, Rcode::ServFail) == header(0xbeef, 0x8082, 1) + p.query.question);
  CHECK(std::string(rcode_text(Rcode::NxDomain)) == "NXDOMAIN");
  CHECK(std::string(rcode_text(Rcode::Refused)) == "REFUSED");
}

TEST_CASE("dns: error replies to unparsable queries; silence for responses and scraps") {
  const std::string bad = header(0x4242, 0x0100, 2) + wire_name({"a"}) + u16(1) + u16(1);
  auto p = parse_query(bad);
  REQUIRE_FALSE(p.ok);
  auto r = error_reply(bad, p.error);
  REQUIRE(r.has_value());
  CHECK(*r == header(0x4242, 0x8181, 0));
  auto notimp = error_reply(header(7, 0x2800, 1), Rcode::NotImp);  // opcode echoed
  REQUIRE(notimp.has_value());
  CHECK(*notimp == header(7, 0xa884, 0));
  CHECK_FALSE(error_reply(b({1, 2, 3}), Rcode::FormErr).has_value());
  CHECK_FALSE(error_reply(header(7, 0x8180, 1), Rcode::FormErr).has_value());
}

TEST_CASE("dns: TCP length framing") {
  const std::string msg = query(wire_name({"a"}), type::A);
  const std::string framed = tcp_frame(msg);
  CHECK(framed == u16(static_cast<int>(msg.size())) + msg);
  for (size_t cut = 0; cut < framed.size(); ++cut) {
    CAPTURE(cut);
    CHECK(parse_tcp_frame(framed.substr(0, cut)).status == FrameStatus::NeedMore);
  }
  const std::string stream = framed + "next";  // the message is a view into it
  auto f = parse_tcp_frame(stream);
  REQUIRE(f.status == FrameStatus::Done);
  CHECK(f.consumed == framed.size());
  CHECK(f.message == msg);

  CHECK(parse_tcp_frame(u16(0)).status == FrameStatus::Error);
  CHECK(parse_tcp_frame(u16(kMaxQueryBytes + 1)).status == FrameStatus::Error);
  CHECK(parse_tcp_frame(u16(kMaxQueryBytes)).status == FrameStatus::NeedMore);
  CHECK(parse_tcp_frame(u16(600) + "x", 512).status == FrameStatus::Error);
  CHECK_FALSE(parse_tcp_frame(u16(0)).error.empty());
}
