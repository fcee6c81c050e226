#pragma once
// Everything TLS inspection shares across workers: the CA, the leaf cache and the two
// OpenSSL contexts (client-facing, upstream-facing). Built once per CA setting; the
// contexts and the cache are thread-safe, so every worker uses the same Inspector.
#include <memory>
#include <string>
#include <vector>

#include "tls/ca.hpp"
#include "tls/engine.hpp"
#include "tls/leaf.hpp"

namespace sluice::tls {

struct InspectorSettings {
  std::string ca_cert, ca_key;           // PEM files (the key 0600)
  std::vector<std::string> upstream_ca;  // extra upstream roots
  size_t leaf_cache = 1000;
  size_t session_cache = 1000;  // upstream targets whose latest TLS session is kept; 0: none
  bool operator==(const InspectorSettings&) const = default;
};

class Inspector {
 public:
  // Loads the CA and builds the contexts; nullptr and one error line on failure.
  static std::shared_ptr<Inspector> load(const InspectorSettings& s, std::string& error);
  // The same from a CA already in memory (`sluice run`'s per-run CA).
  static std::shared_ptr<Inspector> from_ca(Ca ca, const InspectorSettings& s, std::string& error);

  // The leaf for HOST (cached; minted on a miss), nullptr when minting failed.
  std::shared_ptr<const Leaf> leaf(const std::string& host) { return leaves_->get(host); }
  Engine server_engine(const Leaf& leaf) const { return Engine::server(server_ctx_.get(), leaf); }
  // A client engine for HOST:PORT, offering the session kept from the last connection there.
  // With session_cache 0 the engine gets no cache: it neither offers nor copies a session.
  Engine upstream_engine(const std::string& host, uint16_t port) const {
    SessionCache* sessions = settings_.session_cache > 0 ? sessions_.get() : nullptr;
    return Engine::client(upstream_ctx_.get(), host, sessions, port);
  }
  const SessionCache& sessions() const { return *sessions_; }
  const InspectorSettings& settings() const { return settings_; }
  // The CA certificate (PEM), for the trust a client needs; never the key.
  std::string ca_pem() const { return cert_to_pem(ca_.cert.get()); }
  const LeafCache& leaves() const { return *leaves_; }

 private:
  Inspector() = default;
  InspectorSettings settings_;
  Ca ca_;
  std::unique_ptr<LeafCache> leaves_;  // refers to ca_
  CtxPtr server_ctx_, upstream_ctx_;
  std::unique_ptr<SessionCache> sessions_;  // the upstream sessions, verified under these settings
};

}  // namespace sluice::tls
