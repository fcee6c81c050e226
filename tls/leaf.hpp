#pragma once
// Leaf certificates for inspected hosts, minted on first use and kept in an LRU cache.
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "tls/ca.hpp"

namespace sluice::tls {

struct Leaf {
  X509Ptr cert;
  PkeyPtr key;  // a reference to the process's one shared leaf key
};

// Mints one leaf for HOST (a DNS name, or an IP literal → IP SAN): random 128-bit serial,
// valid 30 days from one hour ago, AKI/SKI, EKU serverAuth, keyUsage digitalSignature.
X509Ptr mint_leaf(const Ca& ca, EVP_PKEY* leaf_key, const std::string& host);

// Thread-safe: get() may run on a worker thread (uv_queue_work) as well as the loop thread.
// A mint costs tens of microseconds (see docs/architecture.md), so the loop may call it directly.
class LeafCache {
 public:
  LeafCache(const Ca& ca, size_t capacity);
  // The cached leaf for HOST, minting it on a miss; nullptr if minting failed.
  std::shared_ptr<const Leaf> get(const std::string& host);
  size_t size() const;
  size_t mints() const;
  EVP_PKEY* leaf_key() const { return leaf_key_.get(); }

 private:
  const Ca& ca_;
  size_t capacity_;
  PkeyPtr leaf_key_;
  mutable std::mutex mutex_;
  std::list<std::string> order_;  // most recently used first
  struct Entry {
    std::shared_ptr<const Leaf> leaf;
    std::list<std::string>::iterator pos;
  };
  std::unordered_map<std::string, Entry> entries_;
  size_t mints_ = 0;
};

}  // namespace sluice::tls
