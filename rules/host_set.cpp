#include "rules/host_set.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

namespace sluice::rules {

namespace {

// A masked address plus family and prefix, hashable, for the CIDR tables.
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

// Patterns for one key: the first whose port fits wins; port-specific ones sort first.
using Bucket = std::vector<const HostPattern*>;

const HostPattern* pick(const Bucket& b, uint16_t port) {
  for (const HostPattern* p : b)
    if (!p->port || *p->port == port) return p;
  return nullptr;
}

void insert(Bucket& b, const HostPattern* p) {
  b.push_back(p);
  std::stable_sort(b.begin(), b.end(), [](const HostPattern* x, const HostPattern* y) {
    return x->port.has_value() && !y->port.has_value();
  });
}

}  // namespace

struct HostSet::Index {
  std::unordered_map<std::string, Bucket> exact;
  std::unordered_map<std::string, Bucket> subdomains;  // keyed by the suffix after "*."
  // One table per (family, prefix length); prefixes lists those present, longest first.
  std::unordered_map<AddrKey, Bucket, AddrKeyHash> cidr[2][129];
  std::vector<int> prefixes[2];
};

HostSet::HostSet() : index_(std::make_unique<Index>()) {}
HostSet::~HostSet() = default;
HostSet::HostSet(HostSet&&) noexcept = default;
HostSet& HostSet::operator=(HostSet&&) noexcept = default;

void HostSet::add(HostPattern p) {
  patterns_.push_back(std::make_unique<HostPattern>(std::move(p)));
  const HostPattern* stored = patterns_.back().get();
  switch (stored->kind) {
    case HostPattern::Kind::Exact:
      insert(index_->exact[stored->name], stored);
      break;
    case HostPattern::Kind::Subdomains:
      insert(index_->subdomains[stored->name], stored);
      break;
    case HostPattern::Kind::Cidr: {
      int fam = stored->cidr.base.v6 ? 1 : 0;
      int prefix = stored->cidr.prefix;
      insert(index_->cidr[fam][prefix][masked_key(stored->cidr.base, prefix)], stored);
      auto& list = index_->prefixes[fam];
      if (std::find(list.begin(), list.end(), prefix) == list.end()) {
        list.push_back(prefix);
        std::sort(list.begin(), list.end(), std::greater<>());
      }
      break;
    }
  }
}

const HostPattern* HostSet::match(const CanonicalHost& host, uint16_t port) const {
  if (host.kind == HostKind::Ip) {
    int fam = host.addr.v6 ? 1 : 0;
    for (int prefix : index_->prefixes[fam]) {
      const auto& table = index_->cidr[fam][prefix];
      auto it = table.find(masked_key(host.addr, prefix));
      if (it == table.end()) continue;
      if (const HostPattern* p = pick(it->second, port)) return p;
    }
    return nullptr;
  }
  if (auto it = index_->exact.find(host.text); it != index_->exact.end()) {
    if (const HostPattern* p = pick(it->second, port)) return p;
  }
  if (index_->subdomains.empty()) return nullptr;
  // Each proper suffix, longest first: "a.b.c" probes "b.c" then "c".
  std::string_view name = host.text;
  for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    auto it = index_->subdomains.find(std::string(name.substr(dot + 1)));
    if (it == index_->subdomains.end()) continue;
    if (const HostPattern* p = pick(it->second, port)) return p;
  }
  return nullptr;
}

}  // namespace sluice::rules
