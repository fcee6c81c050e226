#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>
#include <cstdio>
#include <fstream>

#include "helpers.hpp"
#include "tls/leaf.hpp"

using namespace sluice::tls;

namespace {

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[512];
  while (fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  pclose(pipe);
  return out;
}

void write_file(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  close(fd);
}

std::string verify_with_python(const Ca& ca, const X509Ptr& leaf, EVP_PKEY* key, const std::string& host) {
  tls_test::TempDir dir;
  write_file(dir.path + "/ca.crt", cert_to_pem(ca.cert.get()));
  write_file(dir.path + "/leaf.crt", cert_to_pem(leaf.get()));
  write_file(dir.path + "/leaf.key", key_to_pem(key));
  return run(std::string(SLUICE_PYTHON) + " " + SLUICE_TLS_TEST_DIR + "/strict_verify.py " + dir.path + "/ca.crt " +
             dir.path + "/leaf.crt " + dir.path + "/leaf.key " + host + " 2>&1");
}

}  // namespace

TEST_CASE("tls leaf: python's ssl module with VERIFY_X509_STRICT accepts a minted leaf") {
  Ca ca = std::move(*create_ca().ca);
  LeafCache cache(ca, 4);
  auto leaf = cache.get("api.example.com");
  CHECK(verify_with_python(ca, leaf->cert, leaf->key.get(), "api.example.com") == "verified\n");
  auto ip_leaf = cache.get("127.0.0.1");
  CHECK(verify_with_python(ca, ip_leaf->cert, ip_leaf->key.get(), "127.0.0.1") == "verified\n");
}

TEST_CASE("tls leaf: the strict check can fail (a leaf without AKI is refused)") {
  // Shows the python check above is a real check: strict mode rejects a leaf lacking AKI.
  Ca ca = std::move(*create_ca().ca);
  PkeyPtr key = make_p256_key();
  X509Ptr cert = mint_leaf(ca, key.get(), "api.example.com");
  REQUIRE(cert);
  int pos = X509_get_ext_by_NID(cert.get(), NID_authority_key_identifier, -1);
  REQUIRE(pos >= 0);
  X509_EXTENSION_free(X509_delete_ext(cert.get(), pos));
  X509_sign(cert.get(), ca.key.get(), EVP_sha256());
  std::string out = verify_with_python(ca, cert, key.get(), "api.example.com");
  CHECK(out.find("verified") == std::string::npos);
  CHECK(out.find("CERTIFICATE_VERIFY_FAILED") != std::string::npos);
}
