// The JSON-lines builder: every byte a hostile host or header can carry comes out escaped.
#include <doctest/doctest.h>

#include <string>

#include "proxy/decision_log.hpp"
#include "proxy/json.hpp"

#include <sys/time.h>
#include <ctime>

using sluice::proxy::JsonLine;

TEST_CASE("json line: keys, values and escapes") {
  JsonLine j;
  j.str("host", "plain.example").num("port", 443).real("ms", 1.5).boolean("ok", true).raw("peer", "{\"pid\":1}");
  CHECK(j.done() == "{\"host\":\"plain.example\",\"port\":443,\"ms\":1.500,\"ok\":true,\"peer\":{\"pid\":1}}");
  struct Row {
    std::string in, out;
  };
  const Row rows[] = {
      {"", ""},
      {"a\"b", "a\\\"b"},
      {"back\\slash", "back\\\\slash"},
      {"line\nbreak\r\t", "line\\nbreak\\r\\t"},
      {std::string("nul\0byte", 8), "nul\\u0000byte"},
      {"\x01\x1f\x7f", "\\u0001\\u001f\\u007f"},
      {"\"", "\\\""},
      {"caf\xc3\xa9", "caf\xc3\xa9"},  // UTF-8 passes through
      {"end\\", "end\\\\"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.in);
    JsonLine line;
    line.str("k", row.in);
    CHECK(line.done() == "{\"k\":\"" + row.out + "\"}");
  }
}

TEST_CASE("decision log timestamps: UTC, milliseconds, the current second") {
  // The bounds come from the clock now_iso8601 reads: time() may read the coarse
  // clock, which can lag gettimeofday by a tick and so fall a second behind.
  auto now_sec = [] {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    return tv.tv_sec;
  };
  for (int i = 0; i < 3; ++i) {  // the second call takes the cached date part
    time_t before = now_sec();
    std::string ts = sluice::proxy::DecisionLog::now_iso8601();
    time_t after = now_sec();
    REQUIRE(ts.size() == 24);
    CHECK(ts[4] == '-');
    CHECK(ts[10] == 'T');
    CHECK(ts[19] == '.');
    CHECK(ts.back() == 'Z');
    tm t{};
    REQUIRE(strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &t) != nullptr);
    time_t at = timegm(&t);
    CHECK(at >= before);
    CHECK(at <= after);
  }
}
