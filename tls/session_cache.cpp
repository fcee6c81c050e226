#include "tls/session_cache.hpp"

namespace sluice::tls {

SessionPtr SessionCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.age);
  SSL_SESSION_up_ref(it->second.session.get());
  return SessionPtr(it->second.session.get());
}

void SessionCache::put(const std::string& key, SSL_SESSION* session) {
  SessionPtr owned(session);
  if (capacity_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it != map_.end()) {
    it->second.session = std::move(owned);
    lru_.splice(lru_.begin(), lru_, it->second.age);
    return;
  }
  if (map_.size() >= capacity_) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  map_.emplace(key, Entry{std::move(owned), lru_.begin()});
}

void SessionCache::forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return;
  lru_.erase(it->second.age);
  map_.erase(it);
}

size_t SessionCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

}  // namespace sluice::tls
