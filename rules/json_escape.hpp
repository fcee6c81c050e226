// The one JSON string escaper: the decision log's lines, the control API's bodies, the state
// file and the bench report all quote strings with it. Control bytes, DEL, '"' and '\' are
// escaped; every other byte (UTF-8 included) passes through as it is.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace sluice::rules {

// One byte that needs escaping. Kept out of the loop below so the loop over plain bytes stays small.
[[gnu::noinline]] inline void append_json_escaped_byte(std::string& out, unsigned char c) {
  switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default: {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    }
  }
}

// Appends s escaped, without the surrounding quotes. On the decision log's hot path: runs of
// plain bytes (hosts, codes, addresses) are appended whole.
inline void append_json_escaped(std::string& out, std::string_view s) {
  size_t plain = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\') continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    append_json_escaped_byte(out, c);
  }
  out.append(s.data() + plain, s.size() - plain);
}

// Appends "s", escaped.
inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

}  // namespace sluice::rules
