// Request heads handled the way proxy/http_session_io.cpp handles them: feed what
// the client sent, judge each head (absolute URL, canonical host), rebuild the
// upstream request, resume, keep feeding; CONNECT ends in an Upgrade whose
// authority is split and canonicalised.
//
// Input: byte 0 picks the mode, byte 1 the split point, the rest is the client's bytes.
//   mode & 7 == 0   max head bytes 64..1056 instead of 65536 (the 431 path)
//   mode & 0x40     the second part arrives in chunks of 1..8 bytes
// Every input is parsed twice, whole and split; the two runs must agree.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http_message.hpp"
#include "proxy/http_parser.hpp"
#include "rules/host.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using sluice::fuzz::escaped;
using sluice::proxy::AbsoluteUrl;
using sluice::proxy::HttpHead;
using sluice::proxy::HttpParser;

namespace {

// Header values as a client may send them and a proxy may forward them.
bool clean_value(std::string_view v) {
  for (char c : v)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

// What build_upstream_request produced must be one well-formed head and nothing else.
void check_upstream_request(const std::string& out, const HttpHead& req, const AbsoluteUrl& url) {
  const std::string why = "upstream=\"" + escaped(out, 2000) + "\"";
  FUZZ_CHECK(out.size() >= 4 && out.compare(out.size() - 4, 4, "\r\n\r\n") == 0, why);
  FUZZ_CHECK(out.find("\r\n\r\n") == out.size() - 4, why);  // no early end of head
  for (size_t i = 0; i < out.size(); ++i) {
    FUZZ_CHECK(out[i] != '\0', why);
    if (out[i] == '\n') FUZZ_CHECK(i > 0 && out[i - 1] == '\r', why);               // no bare LF
    if (out[i] == '\r') FUZZ_CHECK(i + 1 < out.size() && out[i + 1] == '\n', why);  // no bare CR
  }
  // Request line: METHOD SP origin-form SP HTTP/1.1
  size_t eol = out.find("\r\n");
  std::string_view line(out.data(), eol);
  FUZZ_CHECK(line == req.method + " " + url.path + " HTTP/1.1", why);
  FUZZ_CHECK(!url.path.empty() && url.path.front() == '/', why);
  FUZZ_CHECK(url.path.find_first_of(" \t\r\n") == std::string::npos, why);
  // Header lines: a token name, ": ", a value; exactly one Host; one framing field at most.
  size_t pos = eol + 2;
  int hosts = 0, framing = 0;
  while (pos < out.size() - 2) {
    size_t end = out.find("\r\n", pos);
    std::string_view h(out.data() + pos, end - pos);
    size_t colon = h.find(':');
    FUZZ_CHECK(colon != std::string_view::npos, why);
    std::string_view name = h.substr(0, colon);
    FUZZ_CHECK(sluice::fuzz::is_token(name), why + " name=\"" + escaped(name) + "\"");
    FUZZ_CHECK(h.size() > colon + 1 && h[colon + 1] == ' ', why);
    std::string lower;
    for (char c : name) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    if (lower == "host") ++hosts;
    if (lower == "content-length" || lower == "transfer-encoding") ++framing;
    FUZZ_CHECK(lower != "connection" && lower != "upgrade" && lower.rfind("proxy-", 0) != 0 && lower != "te", why);
    pos = end + 2;
  }
  FUZZ_CHECK(hosts == 1, why);
  FUZZ_CHECK(framing <= 1, why);

  // The upstream must read it as the same single head. The rebuild adds a Host the client
  // may not have sent, so the client's max_headers is no limit for the upstream's parse.
  HttpParser again(HttpParser::Kind::Request, HttpParser::Limits{1 << 20, 100000, 1 << 20});
  auto r = again.feed(out.data(), out.size());
  FUZZ_CHECK(r.event == HttpParser::Event::Head,
             why + " reparse event=" + std::to_string(static_cast<int>(r.event)) + " " + again.error_message());
  FUZZ_CHECK(again.head().method == req.method, why);
  FUZZ_CHECK(again.head().target == url.path, why);
  FUZZ_CHECK(again.head().chunked == req.chunked, why);
  FUZZ_CHECK(again.head().has_content_length == (req.has_content_length && !req.chunked), why);
  if (!req.chunked && req.has_content_length) FUZZ_CHECK(again.head().content_length == req.content_length, why);
}

struct Run {
  std::string trace;  // what a client would observe, compared between runs
  size_t body_bytes = 0;
};

// Feed pointer bounds, for on_body's check.
const char* g_feed_begin = nullptr;
const char* g_feed_end = nullptr;

void on_head(HttpParser& p, Run& run, bool& stop) {
  const HttpHead& h = p.head();
  const std::string why = "method=\"" + escaped(h.method) + "\" target=\"" + escaped(h.target) + "\"";
  FUZZ_CHECK(!h.method.empty(), why);
  FUZZ_CHECK(sluice::fuzz::is_token(h.method), why);
  FUZZ_CHECK(h.method != "CONNECT", why);  // CONNECT ends in Upgrade, never Head
  FUZZ_CHECK(!h.target.empty(), why);
  FUZZ_CHECK(!(h.chunked && h.has_content_length), why);  // llhttp refuses both (no lenient flags)
  for (const auto& [k, v] : h.headers) {
    FUZZ_CHECK(sluice::fuzz::is_token(k), why + " header=\"" + escaped(k) + "\"");
    FUZZ_CHECK(clean_value(v), why + " value=\"" + escaped(v) + "\"");
  }
  run.trace += "H " + h.method + " " + h.target + " " + std::to_string(h.headers.size()) + " " +
               std::to_string(h.chunked) + std::to_string(h.has_content_length) + std::to_string(h.keep_alive) +
               std::to_string(h.upgrade) + " " + std::to_string(h.content_length) + "\n";
  // The same head inside an inspected tunnel: origin-form or https://, and a path an origin
  // reads as sent (no raw space, control or high byte), never empty.
  if (auto inside = sluice::proxy::parse_inspected_target(h.target)) {
    FUZZ_CHECK(!inside->path.empty() && inside->path.front() == '/', why);
    for (unsigned char c : inside->path) FUZZ_CHECK(c > 0x20 && c < 0x7f, why);
    FUZZ_CHECK(inside->port != 0, why);
    if (inside->host.empty()) FUZZ_CHECK(inside->port == 443 && !inside->port_explicit, why);
  }
  if (h.upgrade) {  // session: 501, close
    stop = true;
    return;
  }
  auto url = sluice::proxy::parse_absolute_url(h.target);
  if (!url) {  // session: 400, close
    stop = true;
    return;
  }
  FUZZ_CHECK(!url->host.empty(), why);
  FUZZ_CHECK(url->port != 0, why);
  auto host = sluice::rules::canonicalize_host(url->host);
  if (!host) {  // session: 400 bad-host, close
    stop = true;
    return;
  }
  sluice::fuzz::check_canonical_host(host.value(), url->host);
  // Host header exactly as HttpSession::send_request_upstream builds it.
  std::string host_header =
      host->kind == sluice::rules::HostKind::Ip && host->addr.v6 ? "[" + host->text + "]" : host->text;
  if (url->port_explicit) host_header += ":" + std::to_string(url->port);
  std::string out = sluice::proxy::build_upstream_request(h, url.value(), host_header);
  check_upstream_request(out, h, url.value());
}

void on_upgrade(HttpParser& p, Run& run) {
  const HttpHead& h = p.head();
  run.trace += "U " + h.method + " " + h.target + "\n";
  FUZZ_CHECK(!h.method.empty(), escaped(h.target));
  if (h.method != "CONNECT") return;  // session: 501, close
  auto hp = sluice::rules::split_host_port(h.target);
  if (!hp) return;
  FUZZ_CHECK(hp->port != 0, escaped(h.target));
  auto host = sluice::rules::canonicalize_host(hp->host);
  if (host) sluice::fuzz::check_canonical_host(host.value(), hp->host);
}

Run run_session(const std::vector<std::string_view>& chunks, size_t max_head) {
  Run run;
  HttpParser p(HttpParser::Kind::Request, max_head);
  p.on_body = [&run](const char* d, size_t n) {
    FUZZ_CHECK(d >= g_feed_begin && d + n <= g_feed_end, "body outside the fed bytes");
    run.body_bytes += n;
  };
  std::string pending;
  bool stop = false;
  for (std::string_view chunk : chunks) {
    if (stop) break;
    pending.append(chunk);
    bool kick = false;
    while (!stop && (kick || !pending.empty())) {
      kick = false;
      g_feed_begin = pending.data();
      g_feed_end = pending.data() + pending.size();
      const size_t len = pending.size();
      auto r = p.feed(pending.data(), len);
      FUZZ_CHECK(r.consumed <= len, "consumed " + std::to_string(r.consumed) + " of " + std::to_string(len));
      pending.erase(0, r.consumed);
      switch (r.event) {
        case HttpParser::Event::NeedMore:
          FUZZ_CHECK(pending.empty(), "NeedMore left " + std::to_string(pending.size()) + " bytes unconsumed");
          break;
        case HttpParser::Event::Head:
          on_head(p, run, stop);
          if (stop) break;
          p.resume();
          kick = true;  // a body-less message ends only when executed again
          break;
        case HttpParser::Event::Done:
          run.trace += "D\n";
          p.resume();
          break;
        case HttpParser::Event::Upgrade:
          on_upgrade(p, run);
          stop = true;
          break;
        case HttpParser::Event::Error: {
          int status = p.error_status();
          // 501: a Transfer-Encoding with codings before the final chunked (issue 13).
          FUZZ_CHECK(status == 400 || status == 431 || status == 501, "status " + std::to_string(status));
          FUZZ_CHECK(!p.error_message().empty(), "error without a message");
          auto again = p.feed("x", 1);  // an errored parser stays errored and takes nothing
          FUZZ_CHECK(again.event == HttpParser::Event::Error && again.consumed == 0, "feed after error");
          run.trace += "E\n";
          stop = true;
          break;
        }
      }
    }
  }
  if (!stop) run.trace += p.message_started() ? "open\n" : "idle\n";
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const uint8_t split_byte = data[1];
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t max_head = (mode & 7) == 0 ? 64 + static_cast<size_t>(mode >> 3) * 32 : 65536;

  Run whole = run_session({in}, max_head);

  const size_t split = in.size() * split_byte / 255;
  std::vector<std::string_view> chunks{in.substr(0, split)};
  std::string_view rest = in.substr(split);
  if (mode & 0x40) {
    const size_t step = static_cast<size_t>((mode >> 3) & 7) + 1;
    for (size_t i = 0; i < rest.size(); i += step) chunks.push_back(rest.substr(i, step));
  } else {
    chunks.push_back(rest);
  }
  Run parts = run_session(chunks, max_head);

  FUZZ_CHECK(whole.trace == parts.trace, "split at " + std::to_string(split) + " changed the result:\nwhole:\n" +
                                             escaped(whole.trace) + "\nsplit:\n" + escaped(parts.trace));
  FUZZ_CHECK(whole.body_bytes == parts.body_bytes, "body bytes differ between whole and split feeding");
  return 0;
}
