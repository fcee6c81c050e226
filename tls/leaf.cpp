#include "tls/leaf.hpp"

#include <openssl/rand.h>
#include <openssl/x509v3.h>

namespace sluice::tls {

static bool is_ip_literal(const std::string& host) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
  if (ip == nullptr) return false;
  ASN1_OCTET_STRING_free(ip);
  return true;
}

X509Ptr mint_leaf(const Ca& ca, EVP_PKEY* leaf_key, const std::string& host) {
  if (host.empty() || host.find_first_of(",\n\r") != std::string::npos) return nullptr;
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  serial[0] |= 0x40;  // and 16 bytes long, so serials never shrink
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600 - 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string cn = host.size() <= 64 ? host : std::string("sluice leaf");
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.cert.get()));
  X509_set_pubkey(cert.get(), leaf_key);
  std::string san = (is_ip_literal(host) ? "IP:" : "DNS:") + host;
  bool ok = add_extension(cert.get(), ca.cert.get(), NID_basic_constraints, "critical,CA:FALSE") &&
            add_extension(cert.get(), ca.cert.get(), NID_key_usage, "critical,digitalSignature") &&
            add_extension(cert.get(), ca.cert.get(), NID_ext_key_usage, "serverAuth") &&
            add_extension(cert.get(), ca.cert.get(), NID_subject_key_identifier, "hash") &&
            add_extension(cert.get(), ca.cert.get(), NID_authority_key_identifier, "keyid:always") &&
            add_extension(cert.get(), ca.cert.get(), NID_subject_alt_name, san.c_str()) &&
            X509_sign(cert.get(), ca.key.get(), EVP_sha256()) > 0;
  if (!ok) {
    take_openssl_error();
    return nullptr;
  }
  return cert;
}

LeafCache::LeafCache(const Ca& ca, size_t capacity)
    : ca_(ca), capacity_(capacity == 0 ? 1 : capacity), leaf_key_(make_p256_key()) {}

std::shared_ptr<const Leaf> LeafCache::get(const std::string& host) {
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(host); it != entries_.end()) {
    order_.splice(order_.begin(), order_, it->second.pos);
    return it->second.leaf;
  }
  X509Ptr cert = mint_leaf(ca_, leaf_key_.get(), host);
  if (!cert) return nullptr;
  ++mints_;
  EVP_PKEY_up_ref(leaf_key_.get());
  auto leaf = std::make_shared<const Leaf>(Leaf{std::move(cert), PkeyPtr(leaf_key_.get())});
  order_.push_front(host);
  entries_[host] = Entry{leaf, order_.begin()};
  if (entries_.size() > capacity_) {
    entries_.erase(order_.back());
    order_.pop_back();
  }
  return leaf;
}

size_t LeafCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

size_t LeafCache::mints() const {
  std::lock_guard lock(mutex_);
  return mints_;
}

}  // namespace sluice::tls
