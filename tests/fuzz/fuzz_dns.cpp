// The DNS codec as the transparent jail's resolver drives it: a TCP frame, then the
// query inside it, then sluice's answer. Invariants: framing never reads past its
// input and every proper prefix of a frame needs more; an accepted query has a
// bounded, printable, lower-case name that survives a round trip through the wire
// format; every answer echoes the id and the question and fits in 512 bytes; an
// error reply is a bare header with the same id, and never an answer to an answer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/dns_message.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace sluice::proxy::dns;
using sluice::fuzz::escaped;

namespace {

std::string wire_name(std::string_view dotted) {
  std::string out;
  while (!dotted.empty()) {
    size_t dot = dotted.find('.');
    std::string_view label = dotted.substr(0, dot);
    out += static_cast<char>(label.size());
    out += label;
    dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
  }
  out += '\0';
  return out;
}

void check_answer(const std::string& answer, const Query& q, const std::string& why) {
  FUZZ_CHECK(answer.size() >= kHeaderBytes + q.question.size(), why);
  FUZZ_CHECK(answer.size() <= 512, why);
  FUZZ_CHECK(static_cast<uint8_t>(answer[0]) == (q.id >> 8) && static_cast<uint8_t>(answer[1]) == (q.id & 0xff), why);
  FUZZ_CHECK(static_cast<uint8_t>(answer[2]) & 0x80, why);  // QR: a response
  FUZZ_CHECK(answer.compare(kHeaderBytes, q.question.size(), q.question) == 0, why);
  // A response is never taken for a query.
  FUZZ_CHECK(!parse_query(answer).ok, why);
}

void check_query(std::string_view msg) {
  const std::string why = "msg=\"" + escaped(msg) + "\"";
  auto p = parse_query(msg);
  if (!p.ok) {
    FUZZ_CHECK(!p.reason.empty(), why);
    auto reply = error_reply(msg, p.error);
    if (reply) {
      FUZZ_CHECK(reply->size() == kHeaderBytes, why);
      FUZZ_CHECK(reply->compare(0, 2, msg.substr(0, 2)) == 0, why);
      FUZZ_CHECK((static_cast<uint8_t>(msg[2]) & 0x80) == 0, why);
    }
    return;
  }
  const Query& q = p.query;
  FUZZ_CHECK(q.name.size() <= 253, why);
  FUZZ_CHECK(q.qclass == kClassIn, why);
  for (unsigned char c : q.name) FUZZ_CHECK(c > 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z'), why);
  FUZZ_CHECK(
      q.name.empty() || (q.name.front() != '.' && q.name.back() != '.' && q.name.find("..") == std::string::npos), why);
  FUZZ_CHECK(msg.substr(kHeaderBytes, q.question.size()) == q.question, why);

  // Round trip: the parsed name, written back as a query, parses to the same name.
  std::string again(msg.substr(0, kHeaderBytes));
  again += wire_name(q.name);
  again += q.question.substr(q.question.size() - 4);
  auto p2 = parse_query(again);
  FUZZ_CHECK(p2.ok && p2.query.name == q.name && p2.query.qtype == q.qtype, why);

  std::vector<sluice::rules::IpAddr> addrs;
  for (uint32_t i = 0; i < 12; ++i) addrs.push_back(sluice::rules::IpAddr::v4(0xc6120000 + i));
  auto v6 = *sluice::rules::IpAddr::parse("fd00::1");
  for (int i = 0; i < 12; ++i) addrs.push_back(v6);
  check_answer(answer_addresses(q, addrs, 5), q, why);
  check_answer(answer_rcode(q, Rcode::NxDomain), q, why);
  check_answer(answer_rcode(q, Rcode::Refused), q, why);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  check_query(in);  // as a UDP datagram

  auto f = parse_tcp_frame(in);  // as a TCP stream
  const std::string why = "stream=\"" + escaped(in) + "\"";
  if (f.status != FrameStatus::Done) return 0;
  FUZZ_CHECK(f.consumed <= in.size() && f.consumed == 2 + f.message.size(), why);
  for (size_t cut = 0; cut < f.consumed; ++cut)
    FUZZ_CHECK(parse_tcp_frame(in.substr(0, cut)).status == FrameStatus::NeedMore, why + " cut=" + std::to_string(cut));
  FUZZ_CHECK(tcp_frame(f.message) == in.substr(0, f.consumed), why);
  check_query(f.message);
  return 0;
}
