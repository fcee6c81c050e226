#include "tls/inspector.hpp"

namespace sluice::tls {

std::shared_ptr<Inspector> Inspector::load(const InspectorSettings& s, std::string& error) {
  CaResult r = load_ca(s.ca_cert, s.ca_key);
  if (!r.ca) {
    error = r.error;
    return nullptr;
  }
  return from_ca(std::move(*r.ca), s, error);
}

std::shared_ptr<Inspector> Inspector::from_ca(Ca ca, const InspectorSettings& s, std::string& error) {
  std::shared_ptr<Inspector> in(new Inspector());
  in->settings_ = s;
  in->ca_ = std::move(ca);
  in->leaves_ = std::make_unique<LeafCache>(in->ca_, s.leaf_cache);
  in->server_ctx_ = make_server_ctx();
  if (!in->server_ctx_) {
    error = "cannot create the client-facing TLS context: " + take_openssl_error();
    return nullptr;
  }
  in->upstream_ctx_ = make_upstream_ctx(s.upstream_ca, error);
  if (!in->upstream_ctx_) return nullptr;
  in->sessions_ = std::make_unique<SessionCache>(s.session_cache);
  return in;
}

}  // namespace sluice::tls
