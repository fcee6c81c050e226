#include "rules/host_set.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <string_view>

namespace sluice::rules {

namespace {

// A masked address (host bits zeroed below the table's prefix), hashable.
struct AddrKey {
  std::array<uint8_t, 16> bytes;
  bool operator==(const AddrKey&) const = default;
};

struct AddrKeyHash {
  size_t operator()(const AddrKey& k) const {
    uint64_t a, b;
    std::memcpy(&a, k.bytes.data(), 8);
    std::memcpy(&b, k.bytes.data() + 8, 8);
    return std::hash<uint64_t>{}(a * 0x9e3779b97f4a7c15ULL ^ b);
  }
};

AddrKey masked_key(const IpAddr& a, int prefix) {
  AddrKey k{};
  for (int i = 0; i < 16; ++i) {
    int bit = i * 8;
    if (bit >= prefix) break;
    uint8_t v = a.bytes[static_cast<size_t>(i)];
    if (bit + 8 > prefix) v &= static_cast<uint8_t>(0xff << (8 - (prefix - bit)));
    k.bytes[static_cast<size_t>(i)] = v;
  }
  return k;
}

// Probing a suffix must not allocate a std::string per label: transparent lookup.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Patterns for one key. Port-specific ones come first, then any-port ones, each group in
// insertion order; the first whose port fits is the answer.
using Bucket = std::vector<const HostPattern*>;

template <class Fit>
const HostPattern* pick(const Bucket& b, const Fit& fit) {
  for (const HostPattern* p : b)
    if (fit.fits(*p)) return p;
  return nullptr;
}

void insert(Bucket& b, const HostPattern* p) {
  if (!p->port) return b.push_back(p);
  auto first_any = std::find_if(b.begin(), b.end(), [](const HostPattern* q) { return !q->port; });
  b.insert(first_any, p);
}

using NameTable = std::unordered_map<std::string, Bucket, NameHash, std::equal_to<>>;

struct PrefixTable {
  int prefix;
  std::unordered_map<AddrKey, Bucket, AddrKeyHash> entries;
};

}  // namespace

struct HostSet::Index {
  NameTable exact;
  NameTable subdomains;  // keyed by the suffix after "*."
  // Per family (0: IPv4, 1: IPv6), one table per prefix length present, longest first:
  // a lookup costs one probe per distinct prefix length, at most 33 or 129.
  std::vector<PrefixTable> cidr[2];

  template <class Fit>
  const HostPattern* match_ip(int family, const IpAddr& addr, const Fit& port) const {
    for (const auto& table : cidr[family]) {
      auto it = table.entries.find(masked_key(addr, table.prefix));
      if (it == table.entries.end()) continue;
      if (const HostPattern* p = pick(it->second, port)) return p;
    }
    return nullptr;
  }
};

HostSet::HostSet() : index_(std::make_unique<Index>()) {}
HostSet::~HostSet() = default;
HostSet::HostSet(HostSet&&) noexcept = default;
HostSet& HostSet::operator=(HostSet&&) noexcept = default;

void HostSet::add(HostPattern p) {
  if (!index_) index_ = std::make_unique<Index>();  // a moved-from set stays usable
  patterns_.push_back(std::make_unique<HostPattern>(std::move(p)));
  const HostPattern* stored = patterns_.back().get();
  switch (stored->kind) {
    case HostPattern::Kind::Exact: insert(index_->exact[stored->name], stored); break;
    case HostPattern::Kind::Subdomains: insert(index_->subdomains[stored->name], stored); break;
    case HostPattern::Kind::Cidr: {
      auto& tables = index_->cidr[stored->cidr.base.v6 ? 1 : 0];
      int prefix = stored->cidr.prefix;
      auto it = std::find_if(tables.begin(), tables.end(), [&](const PrefixTable& t) { return t.prefix <= prefix; });
      if (it == tables.end() || it->prefix != prefix) it = tables.insert(it, PrefixTable{prefix, {}});
      insert(it->entries[masked_key(stored->cidr.base, prefix)], stored);
      break;
    }
  }
}

HostSet HostSet::clone() const {
  HostSet out;
  out.patterns_.reserve(patterns_.size());
  for (const auto& p : patterns_) out.add(*p);
  return out;
}

bool HostSet::PortFit::fits(const HostPattern& p) const {
  switch (kind) {
    case Kind::One: return !p.port || *p.port == port;
    case Kind::Some: return true;
    case Kind::Every: return !p.port;
  }
  return false;
}

const HostPattern* HostSet::match(const CanonicalHost& host, uint16_t port) const {
  return find(host, PortFit{PortFit::Kind::One, port});
}

const HostPattern* HostSet::match_some_port(const CanonicalHost& host) const {
  return find(host, PortFit{PortFit::Kind::Some, 0});
}

const HostPattern* HostSet::match_every_port(const CanonicalHost& host) const {
  return find(host, PortFit{PortFit::Kind::Every, 0});
}

const HostPattern* HostSet::find(const CanonicalHost& host, PortFit port) const {
  if (!index_) return nullptr;
  if (host.kind == HostKind::Ip) {
    if (const HostPattern* p = index_->match_ip(host.addr.v6 ? 1 : 0, host.addr, port)) return p;
    // ::ffff:a.b.c.d reaches the IPv4 host a.b.c.d, so IPv4 entries apply to it too:
    // otherwise "deny 169.254.0.0/16" would not stop "[::ffff:169.254.169.254]".
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (host.addr.v6 && std::memcmp(host.addr.bytes.data(), kMapped, 12) == 0) {
      IpAddr v4;
      std::memcpy(v4.bytes.data(), host.addr.bytes.data() + 12, 4);
      return index_->match_ip(0, v4, port);
    }
    return nullptr;
  }
  if (auto it = index_->exact.find(std::string_view(host.text)); it != index_->exact.end()) {
    if (const HostPattern* p = pick(it->second, port)) return p;
  }
  if (index_->subdomains.empty()) return nullptr;
  // Each proper suffix, longest first: "a.b.c" probes "b.c" then "c", never "a.b.c"
  // itself, so "*.example.com" does not match "example.com".
  std::string_view name = host.text;
  for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    auto it = index_->subdomains.find(name.substr(dot + 1));
    if (it == index_->subdomains.end()) continue;
    if (const HostPattern* p = pick(it->second, port)) return p;
  }
  return nullptr;
}

}  // namespace sluice::rules
