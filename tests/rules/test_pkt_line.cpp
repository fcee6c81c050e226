// pkt-line framing and the receive-pack request parser (rules/pkt_line.hpp): one row per edge
// of the framing, then the request shapes git sends (v0/v1, SHA-256, push options, push
// certificates) and the malformed ones that must be refused (fail closed).
#include <doctest/doctest.h>

#include <string>

#include "rules/git_guard.hpp"
#include "rules/pkt_line.hpp"

using sluice::rules::parse_pkt_line;
using sluice::rules::parse_receive_pack;
using sluice::rules::pkt_line;
using sluice::rules::PktKind;
using sluice::rules::PktLineReader;
using sluice::rules::PktParse;
using sluice::rules::ReceivePackParser;

namespace {

struct PktRow {
  std::string in;
  PktParse::Status status;
  PktKind kind;
  const char* payload;
  size_t size;
};

const std::string kPktZero40(40, '0');
const std::string kPktA40(40, 'a');
const std::string kPktB40(40, 'b');
const std::string kPktA64(64, 'a');
const std::string kPktB64(64, 'b');

std::string pkt_cmd(const std::string& old_oid, const std::string& new_oid, const std::string& ref) {
  return old_oid + " " + new_oid + " " + ref;
}

std::string pkt_first(const std::string& cmd, const std::string& caps) {
  return pkt_line(cmd + std::string(1, '\0') + caps + "\n");
}

}  // namespace

TEST_CASE("pkt-line framing: lengths, special packets, errors") {
  const std::string big(65516, 'x');
  const PktRow rows[] = {
      {"", PktParse::Status::NeedMore, PktKind::Data, "", 0},
      {"00", PktParse::Status::NeedMore, PktKind::Data, "", 0},
      {"0000", PktParse::Status::Packet, PktKind::Flush, "", 4},
      {"0001", PktParse::Status::Packet, PktKind::Delim, "", 4},
      {"0002", PktParse::Status::Packet, PktKind::ResponseEnd, "", 4},
      {"0003", PktParse::Status::Error, PktKind::Data, "", 0},
      {"0004", PktParse::Status::Packet, PktKind::Data, "", 4},
      {"0006a\n0000", PktParse::Status::Packet, PktKind::Data, "a\n", 6},
      {"0009hello", PktParse::Status::Packet, PktKind::Data, "hello", 9},
      {"000Ahello!", PktParse::Status::Packet, PktKind::Data, "hello!", 10},  // upper-case hex, as git reads it
      {"0009hell", PktParse::Status::NeedMore, PktKind::Data, "", 0},
      {"fff0" + big, PktParse::Status::Packet, PktKind::Data, nullptr, 65520},
      {"fff1" + big + "x", PktParse::Status::Error, PktKind::Data, "", 0},
      {"ffff", PktParse::Status::Error, PktKind::Data, "", 0},
      {"00g4", PktParse::Status::Error, PktKind::Data, "", 0},
      {" 004", PktParse::Status::Error, PktKind::Data, "", 0},
      {"-004", PktParse::Status::Error, PktKind::Data, "", 0},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in.substr(0, 12));
    PktParse p = parse_pkt_line(r.in);
    CHECK(p.status == r.status);
    if (r.status == PktParse::Status::Error) CHECK_FALSE(p.error.empty());
    if (r.status != PktParse::Status::Packet) continue;
    CHECK(p.kind == r.kind);
    CHECK(p.size == r.size);
    if (r.payload) CHECK(p.payload == r.payload);
  }
}

TEST_CASE("pkt-line reader: fed a byte at a time, it hands out whole packets") {
  const std::string stream = "0009hello0000000aworld!0001";
  PktLineReader reader;
  std::string got;
  for (char c : stream) {
    reader.feed(std::string_view(&c, 1));
    for (PktParse p = reader.next(); p.status == PktParse::Status::Packet; p = reader.next())
      got += p.kind == PktKind::Data ? "[" + std::string(p.payload) + "]" : p.kind == PktKind::Flush ? "F" : "D";
  }
  CHECK(got == "[hello]F[world!]D");
  CHECK(reader.consumed() == stream.size());
  CHECK(reader.buffered() == 0);
}

TEST_CASE("pkt_line writes the 4-digit header") {
  CHECK(pkt_line("unpack ok\n") == "000eunpack ok\n");
  CHECK(pkt_line("") == "0004");
}

TEST_CASE("receive-pack: a v0/v1 push as git sends it") {
  const std::string body = pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/agent/x"),
                                     "report-status side-band-64k quiet object-format=sha1 agent=git/2.39.5") +
                           pkt_line(pkt_cmd(kPktZero40, kPktB40, "refs/heads/agent/y")) + "0000";
  const std::string pack = "PACK\x00\x00\x00\x02rest";
  auto r = parse_receive_pack(body + pack);
  REQUIRE(r.state == ReceivePackParser::State::Done);
  CHECK(r.request.pack_offset == body.size());
  REQUIRE(r.request.commands.size() == 2);
  CHECK(r.request.commands[0].old_oid == kPktA40);
  CHECK(r.request.commands[0].new_oid == kPktB40);
  CHECK(r.request.commands[0].ref == "refs/heads/agent/x");
  CHECK_FALSE(r.request.commands[0].is_create());
  CHECK(r.request.commands[1].is_create());
  CHECK(r.request.side_band_64k());
  CHECK(r.request.report_status());
  CHECK(r.request.has_capability("agent"));
  CHECK(r.request.capability_value("agent") == "git/2.39.5");
  CHECK_FALSE(r.request.has_capability("push-options"));
  CHECK(r.request.oid_hex_len == 40);
  CHECK(r.request.push_options.empty());
  CHECK_FALSE(r.request.push_cert);
}

TEST_CASE("receive-pack: fed in pieces of every size, the same result") {
  const std::string body = pkt_first(pkt_cmd(kPktA40, kPktZero40, "refs/heads/old"), "report-status") + "0000";
  for (size_t step = 1; step <= body.size(); ++step) {
    CAPTURE(step);
    ReceivePackParser parser;
    for (size_t at = 0; at < body.size(); at += step) {
      CHECK(parser.state() == ReceivePackParser::State::NeedMore);
      parser.feed(std::string_view(body).substr(at, step));
    }
    REQUIRE(parser.state() == ReceivePackParser::State::Done);
    CHECK(parser.request().commands.size() == 1);
    CHECK(parser.request().commands[0].is_delete());
    CHECK(parser.request().pack_offset == body.size());
  }
}

TEST_CASE("receive-pack: SHA-256 object ids") {
  auto r = parse_receive_pack(
      pkt_first(pkt_cmd(kPktA64, kPktB64, "refs/heads/main"), "report-status object-format=sha256") + "0000");
  REQUIRE(r.state == ReceivePackParser::State::Done);
  CHECK(r.request.oid_hex_len == 64);
  CHECK(r.request.commands[0].new_oid == kPktB64);
  // A 64-digit id without object-format=sha256, or 40 digits with it: refused.
  CHECK(parse_receive_pack(pkt_first(pkt_cmd(kPktA64, kPktB64, "refs/heads/main"), "report-status") + "0000").state ==
        ReceivePackParser::State::Error);
  CHECK(parse_receive_pack(pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/main"), "object-format=sha256") + "0000")
            .state == ReceivePackParser::State::Error);
  CHECK(
      parse_receive_pack(pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/main"), "object-format=md5") + "0000").state ==
      ReceivePackParser::State::Error);
}

TEST_CASE("receive-pack: push options up to their flush, then the pack") {
  const std::string body = pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/agent/x"), "report-status push-options") +
                           "0000" + pkt_line("ci.skip\n") + pkt_line("merge_request.create") + "0000";
  auto r = parse_receive_pack(body + "PACK");
  REQUIRE(r.state == ReceivePackParser::State::Done);
  CHECK(r.request.push_options == std::vector<std::string>{"ci.skip", "merge_request.create"});
  CHECK(r.request.pack_offset == body.size());
  // The options' flush is needed: without it the body is truncated.
  CHECK(parse_receive_pack(body.substr(0, body.size() - 4)).state == ReceivePackParser::State::Error);
}

TEST_CASE("receive-pack: a capability on a later line counts, as git reads it") {
  const std::string body = pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/a"), "report-status") +
                           pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/b"), "push-options") + "0000" +
                           pkt_line("opt") + "0000";
  auto r = parse_receive_pack(body);
  REQUIRE(r.state == ReceivePackParser::State::Done);
  CHECK(r.request.push_options == std::vector<std::string>{"opt"});
  CHECK(r.request.commands.size() == 2);
}

TEST_CASE("receive-pack: a push certificate carries the commands") {
  const std::string body =
      pkt_first("push-cert", "report-status side-band-64k") + pkt_line("certificate version 0.1\n") +
      pkt_line("pusher A U Thor <a@example.com> 1 +0000\n") + pkt_line("pushee https://example.com/o/r.git\n") +
      pkt_line("nonce 1-abc\n") + pkt_line("\n") + pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/main") + "\n") +
      pkt_line(pkt_cmd(kPktZero40, kPktB40, "refs/tags/v1") + "\n") + pkt_line("-----BEGIN PGP SIGNATURE-----\n") +
      pkt_line("abc\n") + pkt_line("-----END PGP SIGNATURE-----\n") + pkt_line("push-cert-end\n") + "0000";
  auto r = parse_receive_pack(body);
  INFO(r.error);
  REQUIRE(r.state == ReceivePackParser::State::Done);
  CHECK(r.request.push_cert);
  REQUIRE(r.request.commands.size() == 2);
  CHECK(r.request.commands[0].ref == "refs/heads/main");
  CHECK(r.request.commands[1].ref == "refs/tags/v1");
  CHECK(r.request.side_band_64k());
  CHECK(r.request.pack_offset == body.size());
}

TEST_CASE("receive-pack: malformed, truncated and hostile bodies are errors") {
  const std::string ok_first = pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/x"), "report-status");
  const std::string cert_head = pkt_first("push-cert", "report-status") + pkt_line("certificate version 0.1\n");
  const std::string rows[] = {
      "",                                                                         // empty body
      ok_first,                                                                   // no flush
      ok_first.substr(0, 20),                                                     // cut inside a packet
      ok_first + "0001",                                                          // delim in v0
      ok_first + "0002",                                                          // response-end
      ok_first + "0003",                                                          // bad length
      "0004" + std::string("0000"),                                               // an empty packet as a command
      pkt_line("garbage") + "0000",                                               // not a command
      pkt_line(pkt_cmd(kPktA40, kPktB40, "")) + "0000",                           // empty ref
      pkt_line(pkt_cmd(kPktA40, kPktB40, "HEAD")) + "0000",                       // not under refs/
      pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/a/../main")) + "0000",       // ".."
      pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/a b")) + "0000",             // space in ref
      pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/x\n") + "\n") + "0000",      // LF inside the ref
      pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/x.lock")) + "0000",          // .lock
      pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/x/")) + "0000",              // trailing /
      pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/x@{1}")) + "0000",           // @{
      pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/.x")) + "0000",              // component starting with .
      pkt_line(pkt_cmd(std::string(40, 'A'), kPktB40, "refs/heads/x")) + "0000",  // upper-case id
      pkt_line(pkt_cmd(std::string(39, 'a'), kPktB40, "refs/heads/x")) + "0000",  // short id
      pkt_line(kPktA40 + "  " + kPktB40 + " refs/heads/x") + "0000",              // two spaces
      pkt_line(pkt_cmd(kPktZero40, kPktZero40, "refs/heads/x")) + "0000",         // zero to zero
      ok_first + pkt_line(pkt_cmd(kPktA64, kPktB64, "refs/heads/y")) + "0000",    // mixed id lengths
      ok_first + pkt_line("ERR stop") + "0000",                                   // ERR packet
      pkt_line("shallow 123") + ok_first + "0000",                                // bad shallow
      cert_head + "0000",                                                         // cert without end
      cert_head + pkt_line("ERR x\n") + pkt_line("\n") + pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/x") + "\n") +
          pkt_line("push-cert-end\n") + "0000",          // ERR inside the cert
      cert_head + pkt_line("push-cert-end\n") + "0000",  // cert without blank line
      cert_head + pkt_line("\n") + pkt_line("bogus\n") + pkt_line("push-cert-end\n") + "0000",
      ok_first + cert_head + pkt_line("\n") + pkt_line("push-cert-end\n") + "0000",  // commands and a cert
      cert_head + pkt_line("\n") + pkt_line("push-cert-end\n") + ok_first + "0000",  // commands after the cert
      pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/x"), "push-options") + "0000" + pkt_line("o") + "0001",
  };
  for (const auto& body : rows) {
    CAPTURE(body);
    auto r = parse_receive_pack(body);
    CHECK(r.state == ReceivePackParser::State::Error);
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("receive-pack: shallow lines, an empty command list, the size cap") {
  auto r = parse_receive_pack(pkt_line("shallow " + kPktA40) +
                              pkt_first(pkt_cmd(kPktA40, kPktB40, "refs/heads/x"), "report-status") + "0000");
  REQUIRE(r.state == ReceivePackParser::State::Done);
  CHECK(r.request.shallow == std::vector<std::string>{kPktA40});
  // No commands: receive-pack reads nothing more; there is nothing to judge.
  auto empty = parse_receive_pack("0000PACK");
  REQUIRE(empty.state == ReceivePackParser::State::Done);
  CHECK(empty.request.commands.empty());
  CHECK(empty.request.pack_offset == 4);
  // More command bytes than the cap: refused before the end is seen.
  std::string many;
  for (int i = 0; i < 40; ++i) many += pkt_line(pkt_cmd(kPktA40, kPktB40, "refs/heads/b" + std::to_string(i)));
  auto capped = parse_receive_pack(many + "0000", 1000);
  CHECK(capped.state == ReceivePackParser::State::Error);
  CHECK(capped.error.find("larger than 1000") != std::string::npos);
}

TEST_CASE("valid_ref_name follows git's check_refname_format") {
  using sluice::rules::valid_ref_name;
  CHECK(valid_ref_name("refs/heads/main"));
  CHECK(valid_ref_name("refs/heads/agent/feature-1"));
  CHECK(valid_ref_name("refs/tags/v1.0"));
  for (const char* bad : {"refs/", "refs", "heads/main", "refs/heads/a..b", "refs/heads/a.", "refs/heads/a//b",
                          "refs/heads/a~1", "refs/heads/a^", "refs/heads/a:b", "refs/heads/a?", "refs/heads/a*",
                          "refs/heads/a[", "refs/heads/a\\b", "refs/heads/.hidden", "refs/heads/x.lock"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_ref_name(bad));
  }
}
