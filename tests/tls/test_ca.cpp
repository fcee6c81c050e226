#include <doctest/doctest.h>

#include <sys/stat.h>
#include <fstream>

#include <openssl/x509v3.h>

#include "helpers.hpp"
#include "tls/ca.hpp"

using namespace sluice::tls;

static mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

TEST_CASE("tls ca: created CA has the inspection CA fields") {
  CaResult made = create_ca();
  REQUIRE(made.ca);
  X509* cert = made.ca->cert.get();
  char cn[256];
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn).rfind("sluice inspection CA ", 0) == 0);
  CHECK(std::string(cn).size() > std::string("sluice inspection CA ").size());
  CHECK(X509_check_ca(cert) == 1);
  int crit = -1;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr));
  REQUIRE(bc != nullptr);
  CHECK(bc->ca != 0);
  CHECK(crit == 1);
  BASIC_CONSTRAINTS_free(bc);
  CHECK((X509_get_key_usage(cert) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(X509_get0_subject_key_id(cert) != nullptr);
  CHECK(EVP_PKEY_is_a(made.ca->key.get(), "EC"));
  // Two CAs get different names.
  CaResult other = create_ca();
  char cn2[256];
  X509_NAME_get_text_by_NID(X509_get_subject_name(other.ca->cert.get()), NID_commonName, cn2, sizeof cn2);
  CHECK(std::string(cn) != std::string(cn2));
}

TEST_CASE("tls ca: write then load round trip, with 0600 key and 0644 cert") {
  tls_test::TempDir dir;
  CaResult made = create_ca();
  REQUIRE(made.ca);
  REQUIRE(write_ca(*made.ca, dir.path) == "");
  CHECK(mode_of(dir.path + "/ca.key") == 0600);
  CHECK(mode_of(dir.path + "/ca.crt") == 0644);
  CaResult loaded = load_ca(dir.path + "/ca.crt", dir.path + "/ca.key");
  REQUIRE_MESSAGE(loaded.ca, loaded.error);
  CHECK(X509_cmp(loaded.ca->cert.get(), made.ca->cert.get()) == 0);
  CHECK(EVP_PKEY_eq(loaded.ca->key.get(), made.ca->key.get()) == 1);
}

TEST_CASE("tls ca: existing files are never overwritten") {
  tls_test::TempDir dir;
  CaResult first = create_ca();
  REQUIRE(write_ca(*first.ca, dir.path) == "");
  CaResult second = create_ca();
  std::string err = write_ca(*second.ca, dir.path);
  CHECK(err.find("already exists; refusing to overwrite") != std::string::npos);
  CaResult loaded = load_ca(dir.path + "/ca.crt", dir.path + "/ca.key");
  REQUIRE(loaded.ca);
  CHECK(X509_cmp(loaded.ca->cert.get(), first.ca->cert.get()) == 0);
}

TEST_CASE("tls ca: a key readable by group or others is refused") {
  tls_test::TempDir dir;
  CaResult made = create_ca();
  REQUIRE(write_ca(*made.ca, dir.path) == "");
  for (mode_t mode : {0640, 0604, 0644}) {
    REQUIRE(chmod((dir.path + "/ca.key").c_str(), mode) == 0);
    CaResult loaded = load_ca(dir.path + "/ca.crt", dir.path + "/ca.key");
    CHECK(!loaded.ca);
    CHECK(loaded.error.find("readable by group or others") != std::string::npos);
  }
}

TEST_CASE("tls ca: load errors are one readable line") {
  tls_test::TempDir dir;
  CaResult missing = load_ca(dir.path + "/nope.crt", dir.path + "/nope.key");
  CHECK(!missing.ca);
  CHECK(missing.error.find("No such file") != std::string::npos);
  CaResult made = create_ca();
  REQUIRE(write_ca(*made.ca, dir.path) == "");
  { std::ofstream(dir.path + "/bad.crt") << "not a cert\n"; }
  CaResult bad = load_ca(dir.path + "/bad.crt", dir.path + "/ca.key");
  CHECK(bad.error.find("not a PEM certificate") != std::string::npos);
  // A key that belongs to another CA.
  tls_test::TempDir other_dir;
  CaResult other = create_ca();
  REQUIRE(write_ca(*other.ca, other_dir.path) == "");
  CaResult mismatch = load_ca(dir.path + "/ca.crt", other_dir.path + "/ca.key");
  CHECK(mismatch.error.find("does not match") != std::string::npos);
  CHECK(mismatch.error.find("PRIVATE KEY") == std::string::npos);
}
