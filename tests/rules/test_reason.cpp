// The reason table against itself and against the reference the users read
// (docs/decision-log.md): a reason the code gives but the docs omit, or one the docs
// name that the code never gives, fails here.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "rules/reason.hpp"

using sluice::rules::Reason;
using sluice::rules::reason_info;

namespace {

std::string read_docs(const char* name) {
  std::ifstream in(std::string(SLUICE_DOCS_DIR) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The table row of docs/decision-log.md whose first cell starts with `first_cell`.
std::string row(const std::string& doc, const std::string& first_cell) {
  size_t at = doc.find("\n| " + first_cell);
  REQUIRE(at != std::string::npos);
  size_t end = doc.find('\n', at + 1);
  return doc.substr(at + 1, end - at - 1);
}

// The hyphenated codes in backticks: `not-in-allowlist`, `dns-failed`, ...
std::set<std::string> codes(const std::string& text) {
  // A hand scan, not std::regex: GCC 12's <regex> trips -Wmaybe-uninitialized at -O2.
  std::set<std::string> out;
  size_t at = 0;
  while ((at = text.find('`', at)) != std::string::npos) {
    const size_t end = text.find('`', at + 1);
    if (end == std::string::npos) break;
    const std::string word = text.substr(at + 1, end - at - 1);
    bool ok = !word.empty() && word.front() != '-' && word.back() != '-' && word.find("--") == std::string::npos &&
              word.find('-') != std::string::npos;
    for (char c : word) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    if (ok) out.insert(word);
    at = end + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("reason table: texts are unique, round-trip, and each refusal has an answer") {
  std::set<std::string> seen;
  for (size_t i = 1; i < sluice::rules::kReasonCount; ++i) {
    const auto r = static_cast<Reason>(i);
    const auto info = reason_info(r);
    CAPTURE(std::string(info.text));
    CHECK(!info.text.empty());
    CHECK(seen.insert(std::string(info.text)).second);
    REQUIRE(sluice::rules::reason_from_string(info.text).has_value());
    CHECK(*sluice::rules::reason_from_string(info.text) == r);
    // A failure is always an answer to someone: an HTTP status, a SOCKS reply, a SOCKS
    // handshake's own reply (the greeting/auth reasons, with neither), or the end of a TLS
    // handshake that failed (an inspected tunnel's client side).
    if (!info.verdict && info.http_status == 0 && info.socks_reply == 0) {
      CHECK((r == Reason::BadGreeting || r == Reason::NoAcceptableMethod || r == Reason::BadAuth ||
             r == Reason::Socks4Unsupported || r == Reason::ClientTlsFailed || r == Reason::NotTls));
    }
  }
  CHECK_FALSE(sluice::rules::reason_from_string("no-such-reason").has_value());
  CHECK(reason_info(Reason::NotInAllowlist).http_status == 403);
  CHECK(reason_info(Reason::UnsupportedTransferCoding).http_status == 501);
  CHECK(reason_info(Reason::CommandNotSupported).socks_reply == 0x07);
}

TEST_CASE("reason table and docs/decision-log.md list the same reasons") {
  const std::string doc = read_docs("decision-log.md");
  REQUIRE(!doc.empty());
  const auto documented_verdicts = codes(row(doc, "`verdict`, `reason`"));
  const auto documented_errors = codes(row(doc, "`error`"));
  for (size_t i = 1; i < sluice::rules::kReasonCount; ++i) {
    const auto info = reason_info(static_cast<Reason>(i));
    const std::string text(info.text);
    CAPTURE(text);
    if (info.verdict)
      CHECK(documented_verdicts.count(text) == 1);
    else
      CHECK(documented_errors.count(text) == 1);
  }
  for (const auto& text : documented_verdicts) {
    CAPTURE(text);
    auto r = sluice::rules::reason_from_string(text);
    REQUIRE(r.has_value());
    CHECK(reason_info(*r).verdict);
  }
  for (const auto& text : documented_errors) {
    CAPTURE(text);
    CHECK(sluice::rules::reason_from_string(text).has_value());
  }
}
