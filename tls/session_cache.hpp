#pragma once
// Upstream TLS sessions kept for resumption, the latest one per target (host:port), as curl
// keeps them. A resumed handshake skips the certificate chain and its verification on both
// ends: the upstream's certificate was verified for that host in the full handshake that made
// the session, under the trust settings of the Inspector that owns this cache (a change of
// upstream_ca builds a new Inspector, so a session never crosses trust settings).
// Thread-safe: every worker's upstream engines share one cache.
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <openssl/ssl.h>

namespace sluice::tls {

struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;

class SessionCache {
 public:
  // CAPACITY 0 keeps nothing (put() drops what it is given).
  explicit SessionCache(size_t capacity) : capacity_(capacity) {}
  // The session to offer to KEY (a reference of the caller's own), or null.
  SessionPtr get(const std::string& key);
  // Keeps SESSION (takes the caller's reference) as KEY's latest; the least recently used
  // target goes when the cache is full.
  void put(const std::string& key, SSL_SESSION* session);
  // A handshake that offered KEY's session failed: the next one starts afresh.
  void forget(const std::string& key);
  size_t size() const;

 private:
  struct Entry {
    SessionPtr session;
    std::list<std::string>::iterator age;
  };
  mutable std::mutex mu_;
  size_t capacity_;
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, Entry> map_;
};

}  // namespace sluice::tls
