// The pkt-line reader and receive-pack parser (rules/pkt_line.hpp) and the git guard's
// answer (rules/git_guard.hpp) on any bytes:
// - a packet never claims more bytes than it was given, nor more than 65520;
// - the parser's result does not depend on how the body is cut into reads;
// - a Done request holds only well-formed commands (lower-case ids of one length, valid refs),
//   its pack offset lies within the body, and written back out it parses to the same request;
// - a judgment has one verdict per command, and the refusal body is well-formed pkt-lines (in
//   side-band-64k when asked) with one ng line per command;
// - classifying the bytes as a request target never yields a git service without a repository.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rules/git_guard.hpp"
#include "rules/pkt_line.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using sluice::fuzz::escaped;
namespace r = sluice::rules;

namespace {

bool fuzz_pkt_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool same_request(const r::ReceivePackRequest& a, const r::ReceivePackRequest& b) {
  if (a.commands.size() != b.commands.size()) return false;
  for (size_t i = 0; i < a.commands.size(); ++i)
    if (a.commands[i].old_oid != b.commands[i].old_oid || a.commands[i].new_oid != b.commands[i].new_oid ||
        a.commands[i].ref != b.commands[i].ref)
      return false;
  return a.capabilities == b.capabilities && a.push_options == b.push_options && a.shallow == b.shallow &&
         a.push_cert == b.push_cert && a.oid_hex_len == b.oid_hex_len;
}

// The request written the way git's send-pack writes it (capabilities on the first command).
std::string fuzz_pkt_encode(const r::ReceivePackRequest& q) {
  std::string out;
  for (const auto& s : q.shallow) out += r::pkt_line("shallow " + s);
  std::string caps;
  for (const auto& c : q.capabilities) caps += (caps.empty() ? "" : " ") + c;
  for (size_t i = 0; i < q.commands.size(); ++i) {
    std::string line = q.commands[i].old_oid + " " + q.commands[i].new_oid + " " + q.commands[i].ref;
    if (i == 0 && !q.capabilities.empty()) line += std::string(1, '\0') + caps;
    out += r::pkt_line(line + "\n");
  }
  out += "0000";
  if (!q.commands.empty() && q.has_capability("push-options")) {
    for (const auto& o : q.push_options) out += r::pkt_line(o + "\n");
    out += "0000";
  }
  return out;
}

// The pkt-lines of `body` up to its flush: their payloads, or nothing if malformed.
bool fuzz_pkt_split(std::string_view body, std::vector<std::string>* payloads, size_t* used) {
  size_t at = 0;
  for (;;) {
    auto p = r::parse_pkt_line(body.substr(at));
    if (p.status != r::PktParse::Status::Packet) return false;
    at += p.size;
    if (p.kind == r::PktKind::Flush) break;
    if (p.kind != r::PktKind::Data) return false;
    payloads->emplace_back(p.payload);
  }
  *used = at;
  return true;
}

void check_response(const r::ReceivePackRequest& q, const r::PushJudgment& j, const std::string& why) {
  auto res = r::push_refusal_response(q, j);
  if (!q.report_status()) {
    FUZZ_CHECK(res.status == 403 && !res.body.empty(), why);
    return;
  }
  FUZZ_CHECK(res.status == 200 && res.content_type == r::kReceivePackResultType, why);
  std::string report = res.body;
  if (q.side_band_64k()) {
    std::vector<std::string> packets;
    size_t used = 0;
    FUZZ_CHECK(fuzz_pkt_split(res.body, &packets, &used) && used == res.body.size(), why);
    report.clear();
    for (const auto& p : packets) {
      FUZZ_CHECK(!p.empty() && p[0] == '\x01', why);
      report += p.substr(1);
    }
  }
  std::vector<std::string> lines;
  size_t used = 0;
  FUZZ_CHECK(fuzz_pkt_split(report, &lines, &used) && used == report.size(), why);
  FUZZ_CHECK(!lines.empty() && lines[0] == "unpack ok\n", why);
  FUZZ_CHECK(lines.size() == q.commands.size() + 1, why);
  for (size_t i = 1; i < lines.size(); ++i) {
    FUZZ_CHECK(lines[i].substr(0, 3) == "ng " && lines[i].back() == '\n', why);
    FUZZ_CHECK(lines[i].find('\n') == lines[i].size() - 1, why);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string why = "in=\"" + escaped(in) + "\"";

  auto p = r::parse_pkt_line(in);
  if (p.status == r::PktParse::Status::Packet) {
    FUZZ_CHECK(p.size >= 4 && p.size <= in.size() && p.size <= r::kPktLineMax, why);
    if (p.kind == r::PktKind::Data) FUZZ_CHECK(p.payload == in.substr(4, p.size - 4), why);
  } else if (p.status == r::PktParse::Status::Error) {
    FUZZ_CHECK(!p.error.empty(), why);
  } else {
    FUZZ_CHECK(in.size() < r::kPktLineMax, why);
  }

  auto whole = r::parse_receive_pack(in, 4096);
  // The same body in reads of a size the first byte picks.
  const size_t step = size == 0 ? 1 : static_cast<size_t>(data[0] % 17) + 1;
  r::ReceivePackParser parser(4096);
  for (size_t at = 0; at < in.size(); at += step) parser.feed(in.substr(at, step));
  parser.finish();
  FUZZ_CHECK(parser.state() == whole.state, why);
  FUZZ_CHECK(parser.error() == whole.error, why + " error=" + whole.error + " pieces=" + parser.error());
  if (whole.state == r::ReceivePackParser::State::Error) {
    FUZZ_CHECK(!whole.error.empty(), why);
  } else {
    const auto& q = whole.request;
    FUZZ_CHECK(same_request(q, parser.request()) && q.pack_offset == parser.request().pack_offset, why);
    FUZZ_CHECK(q.pack_offset <= in.size(), why);
    FUZZ_CHECK(q.oid_hex_len == 40 || q.oid_hex_len == 64, why);
    for (const auto& c : q.commands) {
      FUZZ_CHECK(c.old_oid.size() == q.oid_hex_len && c.new_oid.size() == q.oid_hex_len, why);
      FUZZ_CHECK(fuzz_pkt_lower_hex(c.old_oid) && fuzz_pkt_lower_hex(c.new_oid), why);
      FUZZ_CHECK(r::valid_ref_name(c.ref), why);
      FUZZ_CHECK(!(c.is_create() && c.is_delete()), why);
    }
    if (!q.push_cert) {
      auto again = r::parse_receive_pack(fuzz_pkt_encode(q), 1 << 20);
      FUZZ_CHECK(again.state == r::ReceivePackParser::State::Done && same_request(again.request, q),
                 why + " again=" + again.error);
    }
    auto strict = r::make_git_rule("git.test", {"o/r"}, {"refs/heads/agent/*"});
    auto permissive = r::make_git_rule("git.test", {"o/**"}, {"refs/**"});
    FUZZ_CHECK(strict.ok() && permissive.ok(), why);
    permissive->tags = permissive->deletes = permissive->push_options = permissive->push_cert = true;
    for (const r::GitRule* rule : {&strict.value(), &permissive.value()}) {
      auto j = r::judge_push(*rule, q);
      FUZZ_CHECK(j.refs.size() == q.commands.size(), why);
      for (const auto& v : j.refs) FUZZ_CHECK(v.allowed == j.allowed && (v.allowed == v.reason.empty()), why);
      FUZZ_CHECK(j.allowed == j.reason.empty(), why);
      check_response(q, j, why);
    }
    FUZZ_CHECK(r::judge_push(permissive.value(), q).allowed, why);
  }

  // The bytes as a request target.
  for (const char* method : {"GET", "POST"}) {
    auto g = r::classify_git_request(method, in, {{"Git-Protocol", std::string(in.substr(0, 32))}});
    if (g.service == r::GitService::None) continue;
    if (g.service == r::GitService::Unreadable) {
      FUZZ_CHECK(!g.error.empty(), why);
      continue;
    }
    FUZZ_CHECK(!g.repo.empty() && g.repo.front() != '/' && g.repo.back() != '/', why + " repo=" + escaped(g.repo));
    FUZZ_CHECK(g.repo.find("//") == std::string::npos, why);
  }
  return 0;
}
