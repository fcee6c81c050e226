// TLS in the load generator and the built-in upstream: the memory-BIO pipe on its own, then
// tiny bounded runs over TLS, direct and through a fake CONNECT proxy. Certificates are made
// here with OpenSSL (a CA, a leaf for 127.0.0.1 and bench.test, and a CA nobody trusts).
#include <doctest/doctest.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include "bench/loadgen.hpp"
#include "bench/tls.hpp"
#include "bench/upstream.hpp"
#include "fake_proxy.hpp"

using namespace sluice::bench;

namespace {

struct BenchTlsKeyCert {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  ~BenchTlsKeyCert() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

void bench_tls_add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `cn`, signed by `ca` (nullptr: self-signed CA).
void bench_tls_make(BenchTlsKeyCert& out, const char* cn, const BenchTlsKeyCert* ca, const char* san) {
  out.key = EVP_EC_gen("P-256");
  REQUIRE(out.key != nullptr);
  out.cert = X509_new();
  X509_set_version(out.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(out.cert), std::rand() + 1);
  X509_gmtime_adj(X509_getm_notBefore(out.cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(out.cert), 86400);
  X509_set_pubkey(out.cert, out.key);
  X509_NAME* name = X509_get_subject_name(out.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* issuer = ca ? ca->cert : out.cert;
  X509_set_issuer_name(out.cert, X509_get_subject_name(issuer));
  bench_tls_add_ext(out.cert, issuer, NID_subject_key_identifier, "hash");
  if (ca) {
    bench_tls_add_ext(out.cert, issuer, NID_authority_key_identifier, "keyid");
    bench_tls_add_ext(out.cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
    bench_tls_add_ext(out.cert, issuer, NID_subject_alt_name, san);
  } else {
    bench_tls_add_ext(out.cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
    bench_tls_add_ext(out.cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  }
  REQUIRE(X509_sign(out.cert, ca ? ca->key : out.key, EVP_sha256()) > 0);
}

void bench_tls_write_cert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  PEM_write_X509(f, cert);
  std::fclose(f);
}

// ca.crt (trusted), other-ca.crt (trusts nothing we serve), leaf.crt/leaf.key (127.0.0.1, bench.test).
struct BenchTlsFiles {
  std::string dir;
  BenchTlsFiles() {
    char tmpl[] = "/tmp/sluice-bench-tls.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    BenchTlsKeyCert ca, other, leaf;
    bench_tls_make(ca, "bench test CA", nullptr, nullptr);
    bench_tls_make(other, "another CA", nullptr, nullptr);
    bench_tls_make(leaf, "bench.test", &ca, "DNS:bench.test,IP:127.0.0.1");
    bench_tls_write_cert(ca_file(), ca.cert);
    bench_tls_write_cert(dir + "/other-ca.crt", other.cert);
    bench_tls_write_cert(cert_file(), leaf.cert);
    FILE* f = std::fopen(key_file().c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_PrivateKey(f, leaf.key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
  }
  ~BenchTlsFiles() {
    for (const char* n : {"/ca.crt", "/other-ca.crt", "/leaf.crt", "/leaf.key"}) ::unlink((dir + n).c_str());
    ::rmdir(dir.c_str());
  }
  std::string ca_file() const { return dir + "/ca.crt"; }
  std::string cert_file() const { return dir + "/leaf.crt"; }
  std::string key_file() const { return dir + "/leaf.key"; }
};

const BenchTlsFiles& bench_tls_files() {
  static BenchTlsFiles files;
  return files;
}

// Moves ciphertext both ways until neither side has more to say (bounded).
void bench_tls_pump(TlsPipe& a, TlsPipe& b) {
  for (int i = 0; i < 20; ++i) {
    std::string ab = a.take_output(), ba = b.take_output();
    if (ab.empty() && ba.empty()) return;
    if (!ab.empty()) b.feed(ab.data(), ab.size());
    if (!ba.empty()) a.feed(ba.data(), ba.size());
  }
}

std::string bench_tls_read_all(TlsPipe& t) {
  std::string out;
  char buf[4096];
  for (int i = 0; i < 1000; ++i) {
    long n = t.read(buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

struct TlsUpstream {
  Upstream up;
  TlsUpstream() {
    REQUIRE(up.use_tls(bench_tls_files().cert_file(), bench_tls_files().key_file()).empty());
    REQUIRE(up.listen("127.0.0.1", 0).empty());
    up.start();
  }
  ~TlsUpstream() { up.stop(); }
};

Options bench_tls_options(int port, Scenario s, const std::string& proxy = "") {
  Options o;
  o.scenario = s;
  o.direct = proxy.empty();
  if (!proxy.empty()) REQUIRE(parse_proxy(proxy, o.proxy).empty());
  REQUIRE(parse_target("127.0.0.1:" + std::to_string(port), o.target).empty());
  o.duration_s = 20;  // a bound, never reached: the request counts end these runs
  o.timeout_ms = 5000;
  o.ca_file = bench_tls_files().ca_file();
  return o;
}

Result bench_tls_run(Options o) {
  std::vector<std::string> notes;
  REQUIRE(finalize(o, notes).empty());
  Result r = run(o);
  CHECK(r.setup_error.empty());
  return r;
}

}  // namespace

TEST_CASE("tls pipe: handshake, data both ways, close_notify") {
  std::string err;
  SslCtx cctx = make_tls_client_ctx(bench_tls_files().ca_file(), err);
  REQUIRE(cctx);
  SslCtx sctx = make_tls_server_ctx(bench_tls_files().cert_file(), bench_tls_files().key_file(), 0, err);
  REQUIRE(sctx);
  for (const char* name : {"127.0.0.1", "bench.test"}) {
    CAPTURE(name);
    bool ip = name[0] == '1';
    auto client = TlsPipe::client(cctx.get(), ip ? "" : name, name);
    auto server = TlsPipe::server(sctx.get());
    CHECK(client->pending_output() > 0);  // the ClientHello
    CHECK_FALSE(client->handshake_done());
    bench_tls_pump(*client, *server);
    REQUIRE(client->handshake_done());
    REQUIRE(server->handshake_done());
    REQUIRE(client->write("GET / HTTP/1.1\r\n\r\n", 18));
    bench_tls_pump(*client, *server);
    CHECK(bench_tls_read_all(*server) == "GET / HTTP/1.1\r\n\r\n");
    std::string big(300 * 1024, 'x');  // more than one record
    REQUIRE(server->write(big.data(), big.size()));
    bench_tls_pump(*client, *server);
    CHECK(bench_tls_read_all(*client) == big);
    server->shutdown();
    bench_tls_pump(*client, *server);
    char buf[16];
    CHECK(client->read(buf, sizeof buf) == -1);
  }
}

TEST_CASE("tls pipe: a wrong name or an unknown CA fails the handshake, with the reason") {
  std::string err;
  SslCtx sctx = make_tls_server_ctx(bench_tls_files().cert_file(), bench_tls_files().key_file(), 0, err);
  REQUIRE(sctx);
  SslCtx good = make_tls_client_ctx(bench_tls_files().ca_file(), err);
  SslCtx other = make_tls_client_ctx(bench_tls_files().dir + "/other-ca.crt", err);
  REQUIRE(good);
  REQUIRE(other);
  struct Case {
    ssl_ctx_st* ctx;
    const char* name;
  };
  for (Case c : {Case{good.get(), "other.test"}, Case{good.get(), "127.0.0.2"}, Case{other.get(), "bench.test"}}) {
    CAPTURE(c.name);
    auto client = TlsPipe::client(c.ctx, "", c.name);
    auto server = TlsPipe::server(sctx.get());
    bench_tls_pump(*client, *server);
    CHECK_FALSE(client->handshake_done());
    CHECK(client->error().find("certificate") != std::string::npos);
    char buf[16];
    CHECK(client->read(buf, sizeof buf) == -2);
    CHECK_FALSE(client->write("x", 1));
  }
}

TEST_CASE("tls contexts: unreadable files are errors that name them") {
  std::string err;
  CHECK_FALSE(make_tls_client_ctx("/nonexistent/ca.crt", err));
  CHECK(err.find("/nonexistent/ca.crt") != std::string::npos);
  err.clear();
  CHECK_FALSE(make_tls_server_ctx(bench_tls_files().cert_file(), "/nonexistent/leaf.key", 0, err));
  CHECK(err.find("/nonexistent/leaf.key") != std::string::npos);
  Options o = bench_tls_options(1, Scenario::ConnectStorm);
  o.ca_file = "/nonexistent/ca.crt";
  o.requests = 1;
  std::vector<std::string> notes;
  REQUIRE(finalize(o, notes).empty());
  CHECK(run(o).setup_error.find("--ca") != std::string::npos);
}

TEST_CASE("tls finalize: --upload and idle-tunnels have no TLS form; --sni needs --ca") {
  std::vector<std::string> notes;
  Options o = bench_tls_options(1, Scenario::TunnelThroughput);
  o.upload = true;
  CHECK_FALSE(finalize(o, notes).empty());
  o = bench_tls_options(1, Scenario::IdleTunnels, "http://127.0.0.1:1");
  CHECK_FALSE(finalize(o, notes).empty());
  o = bench_tls_options(1, Scenario::ConnectStorm);
  o.ca_file.clear();
  o.sni = "bench.test";
  CHECK_FALSE(finalize(o, notes).empty());
}

TEST_CASE("tls loadgen direct: a new TLS connection per connect-storm op, keep-alive inside one, bytes exact") {
  TlsUpstream up;
  Options o = bench_tls_options(up.up.port(), Scenario::ConnectStorm);
  o.requests = 30;
  o.concurrency = 4;
  Result r = bench_tls_run(o);
  CHECK(r.ops_ok == 30);
  CHECK(r.errors.total == 0);
  CHECK(up.up.stats().connections == 30);

  o = bench_tls_options(up.up.port(), Scenario::HttpForward);
  o.requests = 200;
  o.concurrency = 2;
  o.sni = "bench.test";
  r = bench_tls_run(o);
  CHECK(r.ops_ok == 200);
  CHECK(r.errors.total == 0);
  CHECK(up.up.stats().connections == 32);  // two more: one per worker
  CHECK(up.up.stats().requests == 230);

  o = bench_tls_options(up.up.port(), Scenario::TunnelThroughput);
  o.size = 5 * 1024 * 1024 + 7;
  r = bench_tls_run(o);
  CHECK(r.ops_ok == 1);
  CHECK(r.bytes == o.size);
  CHECK(r.errors.total == 0);
}

TEST_CASE("tls loadgen: a certificate the client does not trust is tls-failed") {
  TlsUpstream up;
  Options o = bench_tls_options(up.up.port(), Scenario::ConnectStorm);
  o.ca_file = bench_tls_files().dir + "/other-ca.crt";
  o.requests = 3;
  o.concurrency = 1;
  Result r = bench_tls_run(o);
  CHECK(r.ops_ok == 0);
  CHECK(r.errors.get("tls-failed") == 3);
  o = bench_tls_options(up.up.port(), Scenario::ConnectStorm);
  o.sni = "wrong.test";
  o.requests = 2;
  r = bench_tls_run(o);
  CHECK(r.errors.get("tls-failed") == 2);
}

TEST_CASE("tls loadgen through a CONNECT proxy: TLS inside the tunnel") {
  TlsUpstream up;
  bench_test::FakeProxy proxy(200);
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port());
  Options o = bench_tls_options(up.up.port(), Scenario::ConnectStorm, url);
  o.requests = 10;
  o.concurrency = 2;
  Result r = bench_tls_run(o);
  CHECK(r.ops_ok == 10);
  CHECK(r.errors.total == 0);
  CHECK(proxy.connects() == 10);

  o = bench_tls_options(up.up.port(), Scenario::HttpForward, url);
  o.requests = 50;
  o.concurrency = 1;
  r = bench_tls_run(o);
  CHECK(r.ops_ok == 50);
  CHECK(r.errors.total == 0);
  CHECK(proxy.connects() == 11);  // one tunnel carries all 50 requests

  o = bench_tls_options(up.up.port(), Scenario::TunnelThroughput, url);
  o.size = 3 * 1024 * 1024;
  r = bench_tls_run(o);
  CHECK(r.bytes == o.size);
  CHECK(r.errors.total == 0);
}

TEST_CASE("tls loadgen through a CONNECT proxy with --sni: the name in CONNECT, Host and SNI") {
  TlsUpstream up;
  bench_test::FakeProxy proxy(200);
  proxy.alias_loopback("bench.test");
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port());
  Options o = bench_tls_options(up.up.port(), Scenario::ConnectStorm, url);
  o.sni = "bench.test";
  o.requests = 3;
  o.concurrency = 1;
  Result r = bench_tls_run(o);
  CHECK(r.ops_ok == 3);
  CHECK(r.errors.total == 0);
  CHECK(proxy.last_connect() == "bench.test:" + std::to_string(up.up.port()));
  o.sni = "wrong.test";  // a name the certificate does not carry (the proxy cannot reach it either)
  r = bench_tls_run(o);
  CHECK(r.ops_ok == 0);
  CHECK(proxy.last_connect() == "wrong.test:" + std::to_string(up.up.port()));
}

TEST_CASE("tls loadgen through a SOCKS5 proxy: TLS inside the SOCKS tunnel") {
  TlsUpstream up;
  bench_test::FakeProxy proxy(200);
  const std::string url = "socks5h://127.0.0.1:" + std::to_string(proxy.port());
  Options o = bench_tls_options(up.up.port(), Scenario::SocksStorm, url);
  o.requests = 5;
  o.concurrency = 1;
  Result r = bench_tls_run(o);
  CHECK(r.ops_ok == 5);
  CHECK(r.errors.total == 0);
  CHECK(proxy.socks() == 5);
  o = bench_tls_options(up.up.port(), Scenario::SocksThroughput, url);
  o.size = 2 * 1024 * 1024;
  r = bench_tls_run(o);
  CHECK(r.bytes == o.size);
  CHECK(r.errors.total == 0);
}

TEST_CASE("tls contexts: the upstream sends session tickets only when asked (--tls-tickets)") {
  std::string err;
  SslCtx none = make_tls_server_ctx(bench_tls_files().cert_file(), bench_tls_files().key_file(), 0, err);
  REQUIRE_MESSAGE(none, err);
  CHECK(SSL_CTX_get_num_tickets(none.get()) == 0);
  CHECK(SSL_CTX_get_session_cache_mode(none.get()) == SSL_SESS_CACHE_OFF);
  SslCtx two = make_tls_server_ctx(bench_tls_files().cert_file(), bench_tls_files().key_file(), 2, err);
  REQUIRE_MESSAGE(two, err);
  CHECK(SSL_CTX_get_num_tickets(two.get()) == 2);
}
