// The JSON-lines builder: every byte a hostile host or header can carry comes out escaped.
#include <doctest/doctest.h>

#include <string>

#include "proxy/json.hpp"

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
    std::string out;
    JsonLine::escape_into(out, row.in);
    CHECK(out == row.out);
  }
}
