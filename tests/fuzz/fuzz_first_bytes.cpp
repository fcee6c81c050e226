// Transparent mode's first-bytes reader (sandbox-glue/first_bytes.hpp): the name a
// TLS ClientHello's SNI or an HTTP request's Host claims. Invariants, beyond not crashing:
// - a found name is canonical (what canonicalize_host makes of it, never an IP literal),
//   comes `via` "sni" or "host", and is in the bytes (lower-cased; an IDN in punycode
//   aside): nothing is invented;
// - a decision is final: once a prefix of the bytes is decided (Found or None), every
//   longer input decides the same, so how the bytes arrive cannot change the verdict;
//   and NeedMore only below kMaxFirstBytes (the bridge never waits on a full buffer);
// - bytes past kMaxFirstBytes are never read;
// - looks_like_http_request, once true for a prefix, stays true.
// The first input byte 0xFF selects a round trip instead: the rest becomes the SNI of a
// well-formed ClientHello, which must be found exactly when canonicalize_host accepts it
// as a name.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rules/host.hpp"
#include "sandbox-glue/first_bytes.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using sluice::fuzz::escaped;
using sluice::glue::claimed_name;
using sluice::glue::ClaimedName;
using sluice::glue::kMaxFirstBytes;
using sluice::glue::looks_like_http_request;

namespace {

using State = ClaimedName::State;

bool same(const ClaimedName& a, const ClaimedName& b) {
  return a.state == b.state && a.name == b.name && std::string_view(a.via) == b.via;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

void put16(std::string& s, size_t v) {
  s += static_cast<char>((v >> 8) & 0xff);
  s += static_cast<char>(v & 0xff);
}

// A minimal well-formed TLS 1.2 ClientHello record carrying `sni`.
std::string client_hello(std::string_view sni) {
  std::string ext;
  put16(ext, 0);  // server_name
  put16(ext, sni.size() + 5);
  put16(ext, sni.size() + 3);  // server_name_list
  ext += '\0';                 // host_name
  put16(ext, sni.size());
  ext += sni;
  std::string body = "\x03\x03" + std::string(32, 'r');
  body += '\0';  // session_id
  put16(body, 2);
  body += "\x13\x01";
  body += "\x01";
  body += '\0';  // compression: null
  put16(body, ext.size());
  body += ext;
  std::string hs = "\x01";
  hs += '\0';
  put16(hs, body.size());
  hs += body;
  std::string rec = "\x16\x03\x01";
  put16(rec, hs.size());
  return rec + hs;
}

// The payloads of the complete TLS records at the start of `in`, joined (a ClientHello may
// span records, and so may the name in it).
std::string record_payloads(std::string_view in) {
  std::string out;
  size_t at = 0;
  while (at + 5 <= in.size()) {
    size_t len = (static_cast<size_t>(static_cast<uint8_t>(in[at + 3])) << 8) | static_cast<uint8_t>(in[at + 4]);
    if (at + 5 + len > in.size()) break;
    out.append(in.substr(at + 5, len));
    at += 5 + len;
  }
  return out;
}

void check_found(const ClaimedName& c, std::string_view in) {
  const std::string why = "input=\"" + escaped(in) + "\" name=\"" + escaped(c.name) + "\"";
  FUZZ_CHECK(std::string_view(c.via) == "sni" || std::string_view(c.via) == "host", why);
  sluice::fuzz::check_canonical_name(c.name, in);
  auto again = sluice::rules::canonicalize_host(c.name);
  FUZZ_CHECK(again.ok() && again->kind == sluice::rules::HostKind::Name && again->text == c.name, why);
  in = in.substr(0, kMaxFirstBytes);
  const std::string where = std::string_view(c.via) == "sni" ? record_payloads(in) : std::string(in);
  // An IDN is found in its punycode form (xn--), which is not in the bytes as such.
  if (c.name.find("xn--") == std::string::npos) FUZZ_CHECK(lower(where).find(c.name) != std::string::npos, why);
  if (std::string_view(c.via) == "sni") FUZZ_CHECK(in[0] == 22, why);
  if (std::string_view(c.via) == "host") FUZZ_CHECK(looks_like_http_request(in), why);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (!in.empty() && static_cast<uint8_t>(in[0]) == 0xFF) {
    std::string_view sni = in.substr(1, 300);
    std::string hello = client_hello(sni);
    ClaimedName c = claimed_name(hello);
    auto host = sluice::rules::canonicalize_host(sni);
    const bool name = host.ok() && host->kind == sluice::rules::HostKind::Name;
    const std::string why = "sni=\"" + escaped(sni) + "\"";
    FUZZ_CHECK(c.state == (name ? State::Found : State::None), why);
    if (name) FUZZ_CHECK(c.name == host->text && std::string_view(c.via) == "sni", why);
    for (size_t cut = 0; cut < hello.size(); ++cut)
      FUZZ_CHECK(claimed_name(std::string_view(hello).substr(0, cut)).state == State::NeedMore,
                 why + " cut=" + std::to_string(cut));
    return 0;
  }

  const ClaimedName whole = claimed_name(in);
  const std::string why = "input=\"" + escaped(in) + "\"";
  if (whole.state == State::Found) check_found(whole, in);
  if (whole.state != State::Found) FUZZ_CHECK(whole.name.empty(), why);
  if (in.size() >= kMaxFirstBytes) FUZZ_CHECK(whole.state != State::NeedMore, why);
  // Past kMaxFirstBytes nothing counts.
  if (in.size() > kMaxFirstBytes) FUZZ_CHECK(same(whole, claimed_name(in.substr(0, kMaxFirstBytes))), why);

  // Prefixes: all of them for short inputs, a sample of cuts for long ones.
  const size_t step = in.size() <= 512 ? 1 : in.size() / 256;
  const bool http = looks_like_http_request(in);
  for (size_t cut = 0; cut < in.size(); cut += step) {
    std::string_view p = in.substr(0, cut);
    ClaimedName part = claimed_name(p);
    if (part.state != State::NeedMore)
      FUZZ_CHECK(same(part, whole), why + " cut=" + std::to_string(cut) + " part=\"" + escaped(part.name) + "\"");
    if (looks_like_http_request(p)) FUZZ_CHECK(http, why + " cut=" + std::to_string(cut));
  }
  return 0;
}
