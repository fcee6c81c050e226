// IP text in and out, parsed and printed here rather than by inet_pton/inet_ntop so
// the accepted spellings and the canonical output are the same on every platform.
#include "rules/ip.hpp"

#include <cstring>

#include "rules/percent.hpp"

namespace sluice::rules {

namespace {

// Exactly four decimal parts 0..255. A leading zero ("01") is refused because other
// parsers read it as octal: the same text must never mean two addresses.
bool parse_dotted_quad(std::string_view s, uint8_t* out) {
  int part = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    unsigned value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3)
      value = value * 10 + static_cast<unsigned>(s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || value > 255 || (len > 1 && s[start] == '0')) return false;
    out[part++] = static_cast<uint8_t>(value);
    if (part == 4) return i == s.size();
    if (i >= s.size() || s[i] != '.') return false;
    ++i;
  }
}

// RFC 4291 section 2.2 text: eight groups of 1..4 hex digits, at most one "::", and an
// optional dotted quad in the last 32 bits. No zone ids, no brackets.
bool parse_v6(std::string_view s, uint8_t* out) {
  uint16_t groups[8] = {};
  int n = 0;
  int gap = -1;  // index in `groups` where "::" stands
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    gap = 0;
    i = 2;
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] != ':') ++j;
    std::string_view token = s.substr(i, j - i);
    if (token.find('.') != std::string_view::npos) {
      uint8_t quad[4];
      if (j != s.size() || n > 6 || !parse_dotted_quad(token, quad)) return false;
      groups[n++] = static_cast<uint16_t>(quad[0] << 8 | quad[1]);
      groups[n++] = static_cast<uint16_t>(quad[2] << 8 | quad[3]);
      break;
    }
    if (token.empty() || token.size() > 4 || n == 8) return false;
    unsigned value = 0;
    for (char c : token) {
      int h = hex_digit(c);
      if (h < 0) return false;
      value = value << 4 | static_cast<unsigned>(h);
    }
    groups[n++] = static_cast<uint16_t>(value);
    if (j == s.size()) break;
    if (j + 1 < s.size() && s[j + 1] == ':') {
      if (gap >= 0) return false;  // a second "::"
      gap = n;
      i = j + 2;
    } else {
      i = j + 1;
      if (i == s.size()) return false;  // a trailing single ':'
    }
  }
  if (gap < 0 && n != 8) return false;
  if (gap >= 0 && n > 7) return false;  // "::" must stand for at least one group
  uint16_t full[8] = {};
  if (gap < 0) {
    std::memcpy(full, groups, sizeof full);
  } else {
    for (int k = 0; k < gap; ++k) full[k] = groups[k];
    int tail = n - gap;
    for (int k = 0; k < tail; ++k) full[8 - tail + k] = groups[gap + k];
  }
  for (int k = 0; k < 8; ++k) {
    out[2 * k] = static_cast<uint8_t>(full[k] >> 8);
    out[2 * k + 1] = static_cast<uint8_t>(full[k]);
  }
  return true;
}

std::string quad_text(const uint8_t* b) {
  std::string out;
  for (int k = 0; k < 4; ++k) {
    if (k) out += '.';
    out += std::to_string(b[k]);
  }
  return out;
}

// RFC 5952: lower-case hex without leading zeros, the longest run of two or more zero
// groups as "::" (the first on a tie), and IPv4-mapped addresses as ::ffff:a.b.c.d.
std::string v6_text(const std::array<uint8_t, 16>& b) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b.data(), kMapped, 12) == 0) return "::ffff:" + quad_text(b.data() + 12);
  uint16_t g[8];
  for (int k = 0; k < 8; ++k) g[k] = static_cast<uint16_t>(b[2 * k] << 8 | b[2 * k + 1]);
  int best = -1, best_len = 0;
  for (int k = 0; k < 8;) {
    if (g[k] != 0) {
      ++k;
      continue;
    }
    int start = k;
    while (k < 8 && g[k] == 0) ++k;
    if (k - start > best_len) {
      best = start;
      best_len = k - start;
    }
  }
  if (best_len < 2) best = -1;
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int k = 0; k < 8; ++k) {
    if (k == best) {
      out += "::";
      k += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      int nibble = g[k] >> shift & 0xf;
      if (nibble == 0 && !started && shift != 0) continue;
      started = true;
      out += kHex[nibble];
    }
  }
  return out;
}

IpAddr masked(IpAddr a, int prefix) {
  for (int i = 0; i < 16; ++i) {
    int bit = i * 8;
    auto& byte = a.bytes[static_cast<size_t>(i)];
    if (bit >= prefix)
      byte = 0;
    else if (bit + 8 > prefix)
      byte &= static_cast<uint8_t>(0xff << (8 - (prefix - bit)));
  }
  return a;
}

}  // namespace

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  IpAddr a;
  if (text.find(':') == std::string_view::npos) {
    if (!parse_dotted_quad(text, a.bytes.data())) return std::nullopt;
    return a;
  }
  if (!parse_v6(text, a.bytes.data())) return std::nullopt;
  a.v6 = true;
  return a;
}

std::optional<IpAddr> IpAddr::parse_lenient_v4(std::string_view text) {
  uint64_t parts[4] = {0, 0, 0, 0};
  size_t count = 0;
  size_t start = 0;
  while (true) {
    if (count == 4) return std::nullopt;
    size_t dot = text.find('.', start);
    std::string_view part = text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.size() > 34) return std::nullopt;
    unsigned base = 10;
    if (part.size() > 1 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X')) {
      base = 16;
      part.remove_prefix(2);
      if (part.empty()) return std::nullopt;
    } else if (part.size() > 1 && part[0] == '0') {
      base = 8;
      part.remove_prefix(1);
    }
    uint64_t v = 0;
    for (char c : part) {
      unsigned d;
      if (c >= '0' && c <= '9')
        d = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = static_cast<unsigned>(c - 'A' + 10);
      else
        return std::nullopt;
      if (d >= base) return std::nullopt;
      v = v * base + d;
      if (v > 0xffffffffULL) return std::nullopt;
    }
    parts[count++] = v;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  // All parts but the last are one byte; the last fills what is left.
  for (size_t i = 0; i + 1 < count; ++i)
    if (parts[i] > 0xff) return std::nullopt;
  const uint64_t last_max = count == 1 ? 0xffffffffULL : count == 2 ? 0xffffffULL : count == 3 ? 0xffffULL : 0xffULL;
  if (parts[count - 1] > last_max) return std::nullopt;
  uint32_t value = static_cast<uint32_t>(parts[count - 1]);
  for (size_t i = 0; i + 1 < count; ++i) value |= static_cast<uint32_t>(parts[i]) << (24 - 8 * i);
  return v4(value);
}

IpAddr IpAddr::v4(uint32_t host_order) {
  IpAddr a;
  a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[3] = static_cast<uint8_t>(host_order);
  return a;
}

std::string IpAddr::to_string() const { return v6 ? v6_text(bytes) : quad_text(bytes.data()); }

std::optional<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  int prefix = addr->bits();
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || (p.size() > 1 && p[0] == '0')) return std::nullopt;
    prefix = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + (c - '0');
    }
    if (prefix > addr->bits()) return std::nullopt;
  }
  // Host bits below the prefix are almost surely a typo ("10.0.0.1/8"): refuse them.
  if (!(masked(*addr, prefix) == *addr)) return std::nullopt;
  return Cidr{*addr, prefix};
}

bool Cidr::contains(const IpAddr& a) const { return a.v6 == base.v6 && masked(a, prefix) == base; }

std::string Cidr::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

}  // namespace sluice::rules
