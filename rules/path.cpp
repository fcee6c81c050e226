#include "rules/path.hpp"

#include <vector>

#include "rules/percent.hpp"

namespace sluice::rules {
namespace {

bool path_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// One segment with its unreserved escapes decoded, or an error.
Result<std::string> decode_segment(std::string_view seg) {
  std::string out;
  out.reserve(seg.size());
  for (size_t i = 0; i < seg.size(); ++i) {
    const char c = seg[i];
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return Err{"a control byte in the path"};
    if (c == '\\') return Err{"a backslash in the path (some origins read it as '/')"};
    if (c != '%') {
      out += c;
      continue;
    }
    if (i + 2 >= seg.size()) return Err{"a '%' not followed by two hex digits"};
    const int hi = hex_digit(seg[i + 1]), lo = hex_digit(seg[i + 2]);
    if (hi < 0 || lo < 0) return Err{"a '%' not followed by two hex digits"};
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '/' || decoded == '\\') return Err{"an encoded '/' or '\\' (%2F, %5C) in the path"};
    if (decoded == '\0') return Err{"%00 in the path"};
    if (path_unreserved(decoded)) {
      out += decoded;
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[hi];
      out += kHex[lo];
    }
    i += 2;
  }
  return out;
}

}  // namespace

Result<std::string> normalize_path(std::string_view target) {
  if (target.find('#') != std::string_view::npos) return Err{"a '#' in the request target"};
  const size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path.empty() || path.front() != '/') return Err{"the path does not start with '/'"};
  std::vector<std::string> out;
  bool ends_with_slash = false;
  size_t at = 1;
  while (true) {
    const size_t end = path.find('/', at);
    const std::string_view raw = path.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    const bool last = end == std::string_view::npos;
    if (raw.empty() && !last) return Err{"an empty path segment ('//')"};
    auto seg = decode_segment(raw);
    if (!seg) return Err{seg.error()};
    if (seg.value() == ".") {
      ends_with_slash = true;  // "/a/." is "/a/"
    } else if (seg.value() == "..") {
      if (out.empty()) return Err{"'..' above the root of the path"};
      out.pop_back();
      ends_with_slash = true;
    } else {
      ends_with_slash = seg.value().empty();  // only the last segment may be empty: "/a/"
      if (!ends_with_slash) out.push_back(std::move(seg.value()));
    }
    if (last) break;
    at = end + 1;
  }
  std::string result;
  for (const auto& s : out) result += "/" + s;
  if (result.empty() || ends_with_slash) result += "/";
  if (q != std::string_view::npos) result += target.substr(q);
  return result;
}

bool path_has_prefix(std::string_view path, std::string_view prefix) {
  path = path.substr(0, path.find('?'));
  if (path.substr(0, prefix.size()) != prefix) return false;
  if (path.size() == prefix.size() || prefix.empty() || prefix.back() == '/') return true;
  return path[prefix.size()] == '/';
}

}  // namespace sluice::rules
