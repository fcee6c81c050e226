#pragma once
// The inspection CA: loaded from files, or created (ECDSA P-256) and optionally written out.
#include <optional>
#include <string>

#include "tls/ossl.hpp"

namespace sluice::tls {

struct Ca {
  X509Ptr cert;
  PkeyPtr key;
};

struct CaResult {
  std::optional<Ca> ca;
  std::string error;  // one readable line when !ca
};

// A new self-signed CA: CN "sluice inspection CA <random>", CA:TRUE critical,
// keyUsage keyCertSign+cRLSign, SKI; valid 10 years from one hour ago.
CaResult create_ca();

// Loads a PEM cert and key. Refuses a key file that group or other may read.
CaResult load_ca(const std::string& cert_path, const std::string& key_path);

// Writes DIR/ca.crt (0644) and DIR/ca.key (0600, created with O_EXCL, so never overwritten).
// Returns "" or one error line.
std::string write_ca(const Ca& ca, const std::string& dir);

// Adds an X.509v3 extension (OpenSSL config syntax) with issuer context; false on failure.
bool add_extension(X509* cert, X509* issuer, int nid, const char* value);

}  // namespace sluice::tls
