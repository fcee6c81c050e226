#include <doctest/doctest.h>

#include <chrono>
#include <set>

#include <openssl/x509v3.h>

#include "tls/leaf.hpp"

using namespace sluice::tls;

static std::string serial_hex(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

static time_t asn1_time(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return timegm(&tm);
}

TEST_CASE("tls leaf: fields a strict client checks") {
  CaResult made = create_ca();
  REQUIRE(made.ca);
  LeafCache cache(*made.ca, 8);
  auto leaf = cache.get("api.example.com");
  REQUIRE(leaf);
  X509* cert = leaf->cert.get();
  CHECK(X509_check_host(cert, "api.example.com", 0, 0, nullptr) == 1);
  CHECK(X509_check_host(cert, "other.example.com", 0, 0, nullptr) == 0);
  CHECK(X509_check_issued(made.ca->cert.get(), cert) == X509_V_OK);
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert);
  REQUIRE(aki != nullptr);
  CHECK(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(made.ca->cert.get())) == 0);
  CHECK(X509_get0_subject_key_id(cert) != nullptr);
  CHECK((X509_get_extended_key_usage(cert) & XKU_SSL_SERVER) != 0);
  CHECK(X509_get_extended_key_usage(cert) == XKU_SSL_SERVER);
  CHECK(X509_get_key_usage(cert) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_check_ca(cert) == 0);
  time_t now = time(nullptr);
  time_t not_before = asn1_time(X509_get0_notBefore(cert));
  time_t not_after = asn1_time(X509_get0_notAfter(cert));
  CHECK(not_before <= now - 3000);  // backdated about an hour, for clients with a slow clock
  CHECK(not_before >= now - 3700);
  CHECK(not_after - not_before <= 30L * 24 * 3600);
  CHECK(not_after > now + 29L * 24 * 3600 - 3600);
  CHECK(X509_verify(cert, made.ca->key.get()) == 1);
  CHECK(EVP_PKEY_eq(X509_get0_pubkey(cert), cache.leaf_key()) == 1);
}

TEST_CASE("tls leaf: IP literals get an IP SAN") {
  CaResult made = create_ca();
  LeafCache cache(*made.ca, 8);
  auto v4 = cache.get("127.0.0.1");
  REQUIRE(v4);
  CHECK(X509_check_ip_asc(v4->cert.get(), "127.0.0.1", 0) == 1);
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(v4->cert.get(), NID_subject_alt_name, nullptr, nullptr));
  REQUIRE(names != nullptr);
  CHECK(sk_GENERAL_NAME_num(names) == 1);
  CHECK(sk_GENERAL_NAME_value(names, 0)->type == GEN_IPADD);
  GENERAL_NAMES_free(names);
  auto v6 = cache.get("::1");
  REQUIRE(v6);
  CHECK(X509_check_ip_asc(v6->cert.get(), "::1", 0) == 1);
}

TEST_CASE("tls leaf: serials are random 128-bit and distinct; one shared key") {
  CaResult made = create_ca();
  LeafCache cache(*made.ca, 64);
  std::set<std::string> serials;
  for (int i = 0; i < 32; ++i) {
    auto leaf = cache.get("h" + std::to_string(i) + ".example");
    REQUIRE(leaf);
    std::string s = serial_hex(leaf->cert.get());
    CHECK(s.size() == 32);
    serials.insert(s);
    CHECK(EVP_PKEY_eq(X509_get0_pubkey(leaf->cert.get()), cache.leaf_key()) == 1);
  }
  CHECK(serials.size() == 32);
}

TEST_CASE("tls leaf: LRU cache reuses, evicts the least recently used, and refuses bad names") {
  CaResult made = create_ca();
  LeafCache cache(*made.ca, 2);
  auto a = cache.get("a.example");
  auto b = cache.get("b.example");
  CHECK(cache.mints() == 2);
  CHECK(cache.get("a.example") == a);  // hit: same object, no mint; a is now most recent
  CHECK(cache.mints() == 2);
  auto c = cache.get("c.example");  // evicts b
  CHECK(cache.size() == 2);
  CHECK(cache.mints() == 3);
  CHECK(cache.get("a.example") == a);
  CHECK(cache.mints() == 3);
  auto b2 = cache.get("b.example");  // minted again
  CHECK(cache.mints() == 4);
  CHECK(b2 != b);
  CHECK(X509_cmp(b2->cert.get(), b->cert.get()) != 0);
  CHECK(cache.get("") == nullptr);
  CHECK(cache.get("x.example,DNS:evil.example") == nullptr);
}

TEST_CASE("tls leaf: mint and cache-hit cost") {
  CaResult made = create_ca();
  const int n = 200;
  LeafCache cache(*made.ca, n);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) REQUIRE(cache.get("m" + std::to_string(i) + ".example"));
  auto t1 = std::chrono::steady_clock::now();
  for (int round = 0; round < 10; ++round)
    for (int i = 0; i < n; ++i) REQUIRE(cache.get("m" + std::to_string(i) + ".example"));
  auto t2 = std::chrono::steady_clock::now();
  double mint_us = std::chrono::duration<double, std::micro>(t1 - t0).count() / n;
  double hit_us = std::chrono::duration<double, std::micro>(t2 - t1).count() / (10 * n);
  MESSAGE("leaf mint: " << mint_us << " us; cache hit: " << hit_us << " us");
  CHECK(cache.mints() == static_cast<size_t>(n));
  CHECK(hit_us < mint_us);
}
