// The trust a jail gets when sluice inspects TLS (docs/tls.md): one file with the system's
// roots plus sluice's CA, bound over the system bundle and named by every variable that
// tools read for a CA file. Most of those replace the store rather than add to it, so each
// points at the whole bundle, never at the CA alone.
#pragma once
#include <string>

#include "sandbox-glue/proxy_env.hpp"

namespace sluice::glue {

inline constexpr const char* kJailTrustBundle = "/run/sluice/ca-bundle.crt";
inline constexpr const char* kSystemTrustBundle = "/etc/ssl/certs/ca-certificates.crt";

// SSL_CERT_FILE, CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, GIT_SSL_CAINFO,
// PIP_CERT, AWS_CA_BUNDLE, CARGO_HTTP_CAINFO, DENO_CERT, NIX_SSL_CERT_FILE -> `bundle`.
EnvList trust_environment(const std::string& bundle);

// Writes the system roots (`system_bundle`, when it exists) and then `ca_pem` to `path`,
// mode 0644 (certificates only: no key ever goes into it). "" or one error line.
std::string write_trust_bundle(const std::string& path, const std::string& ca_pem,
                               const std::string& system_bundle = kSystemTrustBundle);

}  // namespace sluice::glue
