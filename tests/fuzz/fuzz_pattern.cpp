// Policy patterns and the HostSet index. The input is lines: a line starting
// with '?' is a host to look up ("?host" or "?host|port"), every other line is a
// pattern to parse and add. Each lookup is checked against a brute-force scan
// of the patterns, and every pattern must match the hosts it was written for.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "rules/host.hpp"
#include "rules/host_set.hpp"
#include "rules/pattern.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using sluice::fuzz::escaped;
using sluice::rules::CanonicalHost;
using sluice::rules::HostKind;
using sluice::rules::HostPattern;
using sluice::rules::HostSet;
using sluice::rules::IpAddr;

namespace {

bool same_pattern(const HostPattern& a, const HostPattern& b) {
  return a.kind == b.kind && a.name == b.name && a.port == b.port && a.source == b.source &&
         (a.kind != HostPattern::Kind::Cidr || a.cidr == b.cidr);
}

// The reference: does `p` apply to host:port? (HostSet's contract, written naively.)
bool applies(const HostPattern& p, const CanonicalHost& h, uint16_t port) {
  if (p.port && *p.port != port) return false;
  switch (p.kind) {
    case HostPattern::Kind::Exact: return h.kind == HostKind::Name && h.text == p.name;
    case HostPattern::Kind::Subdomains:
      return h.kind == HostKind::Name && h.text.size() > p.name.size() + 1 &&
             h.text.compare(h.text.size() - p.name.size(), p.name.size(), p.name) == 0 &&
             h.text[h.text.size() - p.name.size() - 1] == '.';
    case HostPattern::Kind::Cidr: {
      if (h.kind != HostKind::Ip) return false;
      if (p.cidr.contains(h.addr)) return true;
      // ::ffff:a.b.c.d is the IPv4 host a.b.c.d.
      static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (h.addr.v6 && std::memcmp(h.addr.bytes.data(), kMapped, 12) == 0) {
        IpAddr v4;
        std::memcpy(v4.bytes.data(), h.addr.bytes.data() + 12, 4);
        return p.cidr.contains(v4);
      }
      return false;
    }
  }
  return false;
}

void check_lookup(const HostSet& set, const std::vector<HostPattern>& all, const CanonicalHost& h, uint16_t port) {
  const HostPattern* got = set.match(h, port);
  bool any = false;
  for (const auto& p : all) any = any || applies(p, h, port);
  const std::string why = "host=\"" + escaped(h.text) + "\" port=" + std::to_string(port) +
                          " got=" + (got ? "\"" + escaped(got->source) + "\"" : std::string("none"));
  FUZZ_CHECK((got != nullptr) == any, why);
  if (got) FUZZ_CHECK(applies(*got, h, port), why);
}

void check_pattern(const HostPattern& p, std::string_view line) {
  const std::string why = "line=\"" + escaped(line) + "\"";
  FUZZ_CHECK(p.source == line, why);
  FUZZ_CHECK(!p.port || *p.port != 0, why);
  auto again = sluice::rules::parse_pattern(p.source);
  FUZZ_CHECK(again.ok(), why + (again.ok() ? "" : " reparse: " + again.error()));
  FUZZ_CHECK(same_pattern(again.value(), p), why);
  if (p.kind == HostPattern::Kind::Cidr) {
    FUZZ_CHECK(p.cidr.prefix >= 0 && p.cidr.prefix <= p.cidr.base.bits(), why);
    FUZZ_CHECK(p.name.empty(), why);
  } else {
    sluice::fuzz::check_canonical_name(p.name, line);
    // A name pattern's name is a host name, not an address in disguise.
    auto c = sluice::rules::canonicalize_host(p.name);
    FUZZ_CHECK(c.ok() && c->kind == HostKind::Name && c->text == p.name, why);
  }
}

// Hosts a pattern was written for: the name itself, a subdomain of it, or its base address.
std::vector<CanonicalHost> hosts_for(const HostPattern& p) {
  std::vector<CanonicalHost> out;
  auto add = [&out](const std::string& text) {
    if (auto c = sluice::rules::canonicalize_host(text)) out.push_back(c.value());
  };
  switch (p.kind) {
    case HostPattern::Kind::Exact:
      add(p.name);
      add(p.name + ".");
      break;
    case HostPattern::Kind::Subdomains:
      add("x." + p.name);
      add(p.name);  // never matched by *.name itself (the reference says so)
      break;
    case HostPattern::Kind::Cidr:
      add(p.cidr.base.v6 ? "[" + p.cidr.base.to_string() + "]" : p.cidr.base.to_string());
      break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 8192) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HostSet set;
  std::vector<HostPattern> all;
  std::vector<std::pair<std::string, uint16_t>> queries;
  size_t pos = 0;
  while (pos <= in.size()) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) nl = in.size();
    std::string_view line = in.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.front() == '?') {
      line.remove_prefix(1);
      uint16_t port = 443;
      if (size_t bar = line.rfind('|'); bar != std::string_view::npos) {
        unsigned v = 0;
        for (char c : line.substr(bar + 1)) v = (v * 10 + static_cast<unsigned char>(c)) % 65536;
        port = static_cast<uint16_t>(v);
        line = line.substr(0, bar);
      }
      queries.emplace_back(std::string(line), port);
      continue;
    }
    auto p = sluice::rules::parse_pattern(line);
    if (!p) {
      FUZZ_CHECK(!p.error().empty(), escaped(line));
      continue;
    }
    check_pattern(p.value(), line);
    all.push_back(p.value());
    set.add(p.value());
    FUZZ_CHECK(set.size() == all.size(), "size");
  }
  for (const auto& p : all) {
    const uint16_t port = p.port ? *p.port : 443;
    for (const auto& h : hosts_for(p)) check_lookup(set, all, h, port);
    check_lookup(set, all, CanonicalHost{}, port);  // an empty name matches nothing a pattern can spell
  }
  for (const auto& [text, port] : queries) {
    auto h = sluice::rules::canonicalize_host(text);
    if (h) check_lookup(set, all, h.value(), port);
  }
  // A moved-to set answers the same.
  HostSet moved(std::move(set));
  for (const auto& p : all)
    for (const auto& h : hosts_for(p)) check_lookup(moved, all, h, p.port ? *p.port : 80);
  return 0;
}
