// Upstream responses handled the way HttpSession::parse_upstream does: feed, on a
// head rebuild the client's response head, resume and kick, on Done resume and
// go on (1xx), finish() at the upstream's EOF.
//
// Input: byte 0 bit 0 says the request was HEAD (expect_head_response), bit 1
// re-frames the body as chunked for the client, bits 2.. pick the chunk size the
// bytes arrive in (0: all at once). The rest is what the upstream sent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http_message.hpp"
#include "proxy/http_parser.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using sluice::fuzz::escaped;
using sluice::proxy::HttpParser;

namespace {

const char* g_feed_begin = nullptr;
const char* g_feed_end = nullptr;

void check_client_response(const std::string& out) {
  const std::string why = "client=\"" + escaped(out, 2000) + "\"";
  FUZZ_CHECK(out.size() >= 4 && out.compare(out.size() - 4, 4, "\r\n\r\n") == 0, why);
  FUZZ_CHECK(out.find("\r\n\r\n") == out.size() - 4, why);
  FUZZ_CHECK(out.rfind("HTTP/1.1 ", 0) == 0, why);
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\n') FUZZ_CHECK(i > 0 && out[i - 1] == '\r', why);
    if (out[i] == '\r') FUZZ_CHECK(i + 1 < out.size() && out[i + 1] == '\n', why);
  }
  size_t pos = out.find("\r\n") + 2;
  while (pos < out.size() - 2) {
    size_t end = out.find("\r\n", pos);
    std::string_view h(out.data() + pos, end - pos);
    size_t colon = h.find(':');
    FUZZ_CHECK(colon != std::string_view::npos, why);
    FUZZ_CHECK(sluice::fuzz::is_token(h.substr(0, colon)), why);
    pos = end + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool head_request = mode & 1;
  const bool rechunk = mode & 2;
  const size_t step = (mode >> 2) == 0 ? in.size() : static_cast<size_t>(mode >> 2);

  HttpParser p(HttpParser::Kind::Response, 65536);
  p.expect_head_response(head_request);
  size_t body = 0;
  p.on_body = [&body](const char* d, size_t n) {
    FUZZ_CHECK(d >= g_feed_begin && d + n <= g_feed_end, "body outside the fed bytes");
    body += n;
  };

  bool stop = false;
  bool got_head = false;
  for (size_t start = 0; start < in.size() && !stop; start += step) {
    std::string_view chunk = in.substr(start, step);
    size_t off = 0;
    bool kick = false;
    while ((off < chunk.size() || kick) && !stop) {
      kick = false;
      g_feed_begin = chunk.data() + off;
      g_feed_end = chunk.data() + chunk.size();
      const size_t len = chunk.size() - off;
      auto r = p.feed(chunk.data() + off, len);
      FUZZ_CHECK(r.consumed <= len, "consumed " + std::to_string(r.consumed) + " of " + std::to_string(len));
      off += r.consumed;
      switch (r.event) {
        case HttpParser::Event::NeedMore: FUZZ_CHECK(off == chunk.size(), "NeedMore left bytes unconsumed"); break;
        case HttpParser::Event::Head: {
          const auto& h = p.head();
          // llhttp 8 takes one to three status digits ("HTTP/1.1 10 X" gives 10): only the range holds.
          FUZZ_CHECK(h.status >= 0 && h.status <= 999, "status " + std::to_string(h.status));
          FUZZ_CHECK(!(h.chunked && h.has_content_length), "chunked with Content-Length accepted");
          got_head = true;
          if (h.status == 101) {  // session: 502 upstream switched protocols unasked
            stop = true;
            break;
          }
          check_client_response(sluice::proxy::build_client_response(h, rechunk, mode & 4));
          p.resume();
          kick = true;
          break;
        }
        case HttpParser::Event::Done:
          FUZZ_CHECK(got_head, "Done without a head");
          if (head_request || p.head().status == 204 || p.head().status == 304)
            FUZZ_CHECK(body == 0, "body bytes in a response that has none");
          p.resume();
          if (p.head().status >= 100 && p.head().status < 200) {
            kick = true;
            break;
          }
          stop = true;  // session: response_done
          break;
        case HttpParser::Event::Upgrade: stop = true; break;
        case HttpParser::Event::Error: {
          int status = p.error_status();
          FUZZ_CHECK(status == 400 || status == 431, "status " + std::to_string(status));
          stop = true;
          break;
        }
      }
    }
  }
  if (!stop) {
    auto r = p.finish();
    FUZZ_CHECK(r.consumed == 0, "finish consumed bytes");
    if (r.event == HttpParser::Event::Error) FUZZ_CHECK(p.error_status() == 502, std::to_string(p.error_status()));
  }
  return 0;
}
