#include "tls/ca.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

namespace sluice::tls {

bool add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

static std::string random_hex(int bytes) {
  unsigned char buf[16];
  RAND_bytes(buf, bytes);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    out += digits[buf[i] >> 4];
    out += digits[buf[i] & 15];
  }
  return out;
}

CaResult create_ca() {
  CaResult result;
  PkeyPtr key = make_p256_key();
  X509Ptr cert(X509_new());
  if (!key || !cert) return {std::nullopt, "cannot create CA key: " + take_openssl_error()};
  X509_set_version(cert.get(), X509_VERSION_3);
  BIGNUM* serial = BN_new();
  BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  std::string cn = "sluice inspection CA " + random_hex(4);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  bool ok = add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE") &&
            add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") &&
            add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash") &&
            X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) return {std::nullopt, "cannot create CA certificate: " + take_openssl_error()};
  result.ca = Ca{std::move(cert), std::move(key)};
  return result;
}

CaResult load_ca(const std::string& cert_path, const std::string& key_path) {
  struct stat st {};
  if (stat(key_path.c_str(), &st) != 0) return {std::nullopt, "CA key " + key_path + ": " + std::strerror(errno)};
  if ((st.st_mode & 077) != 0)
    return {std::nullopt, "CA key " + key_path + " is readable by group or others; run chmod 600 on it"};
  BioPtr cert_bio(BIO_new_file(cert_path.c_str(), "r"));
  if (!cert_bio) return {std::nullopt, "CA certificate " + cert_path + ": " + std::strerror(errno)};
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!cert)
    return {std::nullopt, "CA certificate " + cert_path + ": not a PEM certificate (" + take_openssl_error() + ")"};
  BioPtr key_bio(BIO_new_file(key_path.c_str(), "r"));
  if (!key_bio) return {std::nullopt, "CA key " + key_path + ": " + std::strerror(errno)};
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  // The OpenSSL error text never includes key material, only the parse failure reason.
  if (!key) return {std::nullopt, "CA key " + key_path + ": not a PEM private key (" + take_openssl_error() + ")"};
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    take_openssl_error();
    return {std::nullopt, "CA key " + key_path + " does not match certificate " + cert_path};
  }
  if (X509_check_ca(cert.get()) == 0)
    return {std::nullopt, "CA certificate " + cert_path + " is not a CA (basicConstraints CA:TRUE missing)"};
  return {Ca{std::move(cert), std::move(key)}, ""};
}

static std::string write_new_file(const std::string& path, const std::string& data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) return path + " already exists; refusing to overwrite it";
    return path + ": " + std::strerror(errno);
  }
  // The umask may have narrowed the mode; widen a public cert back (a key is never widened).
  if (mode == 0644) fchmod(fd, mode);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = path + ": " + std::strerror(errno);
      ::close(fd);
      return err;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return path + ": " + std::strerror(errno);
  return "";
}

std::string write_ca(const Ca& ca, const std::string& dir) {
  std::string key_path = dir + "/ca.key", cert_path = dir + "/ca.crt";
  // Check both first so a refused run leaves nothing half-written.
  for (const auto& p : {key_path, cert_path})
    if (access(p.c_str(), F_OK) == 0) return p + " already exists; refusing to overwrite it";
  if (auto err = write_new_file(key_path, key_to_pem(ca.key.get()), 0600); !err.empty()) return err;
  return write_new_file(cert_path, cert_to_pem(ca.cert.get()), 0644);
}

}  // namespace sluice::tls
