// Shared helpers for the libFuzzer targets: an invariant check that survives
// NDEBUG, and the invariants every canonical host must satisfy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rules/host.hpp"
#include "rules/ip.hpp"

namespace sluice::fuzz {

[[noreturn]] inline void check_failed(const char* expr, const char* file, int line, const std::string& detail) {
  std::fprintf(stderr, "\n==FUZZ INVARIANT== %s:%d: %s\n", file, line, expr);
  if (!detail.empty()) std::fprintf(stderr, "  detail: %s\n", detail.c_str());
  std::fflush(stderr);
  std::abort();  // libFuzzer reports it as a crash and saves the input
}

// Non-printable bytes as \xNN, so a detail line stays one line.
inline std::string escaped(std::string_view s, size_t max = 400) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

#define FUZZ_CHECK(cond, detail)                                                    \
  do {                                                                              \
    if (!(cond)) ::sluice::fuzz::check_failed(#cond, __FILE__, __LINE__, (detail)); \
  } while (0)

// RFC 9110 token characters (header names, methods).
inline bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

inline bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// A canonical name: 1..253 bytes of [a-z0-9._-], labels of 1..63 bytes, no trailing dot.
inline void check_canonical_name(std::string_view name, std::string_view raw) {
  std::string why = "raw=\"" + escaped(raw) + "\" name=\"" + escaped(name) + "\"";
  FUZZ_CHECK(!name.empty() && name.size() <= 253, why);
  size_t label = 0;
  for (unsigned char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    FUZZ_CHECK(ok, why);
    if (c == '.') {
      FUZZ_CHECK(label > 0, why);
      label = 0;
    } else {
      ++label;
      FUZZ_CHECK(label <= 63, why);
    }
  }
  FUZZ_CHECK(label > 0, why);
}

inline bool same_host(const rules::CanonicalHost& a, const rules::CanonicalHost& b) {
  if (a.kind != b.kind || a.text != b.text) return false;
  return a.kind == rules::HostKind::Name || a.addr == b.addr;
}

// Everything that must hold for a successful canonicalize_host(raw).
inline void check_canonical_host(const rules::CanonicalHost& h, std::string_view raw) {
  std::string why = "raw=\"" + escaped(raw) + "\" canonical=\"" + escaped(h.text) + "\"";
  if (h.kind == rules::HostKind::Name) {
    check_canonical_name(h.text, raw);
  } else {
    FUZZ_CHECK(h.text == h.addr.to_string(), why);
    auto again = rules::IpAddr::parse(h.text);
    FUZZ_CHECK(again.has_value() && *again == h.addr, why);
    if (h.addr.v6) {
      auto bracketed = rules::canonicalize_host("[" + h.text + "]");
      FUZZ_CHECK(bracketed.ok() && same_host(bracketed.value(), h), why);
    }
  }
  // Idempotent: the canonical text is its own canonical form.
  auto twice = rules::canonicalize_host(h.text);
  FUZZ_CHECK(twice.ok(), why + (twice.ok() ? std::string() : " error=" + twice.error()));
  FUZZ_CHECK(same_host(twice.value(), h), why + " second=\"" + escaped(twice->text) + "\"");
}

}  // namespace sluice::fuzz
