#include <doctest/doctest.h>

#include <fstream>

#include "helpers.hpp"
#include "tls/engine.hpp"

using namespace sluice::tls;
using S = Engine::Status;

namespace {

// A CA, its cert in a file (as `upstream_ca` would name it), a leaf cache and both contexts.
struct Fixture {
  tls_test::TempDir dir;
  Ca ca = std::move(*create_ca().ca);
  LeafCache cache{ca, 16};
  CtxPtr server_ctx = make_server_ctx();
  CtxPtr client_ctx;
  std::string ca_file = dir.path + "/ca.crt";
  Fixture() {
    std::ofstream(ca_file) << cert_to_pem(ca.cert.get());
    std::string err;
    client_ctx = make_upstream_ctx({ca_file}, err);
    REQUIRE_MESSAGE(client_ctx, err);
  }
};

// Re-signs LEAF with a validity window that ended yesterday.
X509Ptr expired_copy(const Leaf& leaf, const Ca& ca) {
  X509Ptr cert(X509_dup(leaf.cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -10L * 24 * 3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), -24L * 3600);
  X509_sign(cert.get(), ca.key.get(), EVP_sha256());
  return cert;
}

}  // namespace

TEST_CASE("tls engine: handshake with a minted leaf, then data both ways") {
  Fixture f;
  auto leaf = f.cache.get("api.example.com");
  Engine client = Engine::client(f.client_ctx.get(), "api.example.com");
  Engine server = Engine::server(f.server_ctx.get(), *leaf);
  S cs, ss;
  tls_test::pump_handshake(client, server, cs, ss);
  REQUIRE_MESSAGE(cs == S::Done, client.error());
  REQUIRE_MESSAGE(ss == S::Done, server.error());
  CHECK(server.client_sni() == "api.example.com");
  CHECK(server.alpn() == "http/1.1");
  CHECK(client.alpn() == "http/1.1");

  REQUIRE(client.write("GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n") == S::Done);
  server.feed(client.take_output());
  std::string got;
  CHECK(server.read(got) == S::WantIo);
  CHECK(got == "GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n");

  std::string big(100000, 'x');
  REQUIRE(server.write(big) == S::Done);
  client.feed(server.take_output());
  std::string back;
  CHECK(client.read(back) == S::WantIo);
  CHECK(back == big);
}

TEST_CASE("tls engine: both sides prefer TLS_AES_128_GCM_SHA256, within what the context allows") {
  Fixture f;
  auto leaf = f.cache.get("api.example.com");
  S cs, ss;
  // A client in OpenSSL's default order (AES-256 first, as curl, Python and Node send it):
  // the client-facing side picks by its own order.
  CtxPtr default_client(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_verify(default_client.get(), SSL_VERIFY_NONE, nullptr);
  Engine client = Engine::client(default_client.get(), "api.example.com");
  Engine server = Engine::server(f.server_ctx.get(), *leaf);
  tls_test::pump_handshake(client, server, cs, ss);
  REQUIRE_MESSAGE(ss == S::Done, server.error());
  CHECK(server.cipher() == "TLS_AES_128_GCM_SHA256");

  // The upstream side offers it first to a server in OpenSSL's default (client-led) order.
  CtxPtr plain_server(SSL_CTX_new(TLS_server_method()));
  Engine upstream_client = Engine::client(f.client_ctx.get(), "api.example.com");
  Engine upstream = Engine::server(plain_server.get(), *leaf);
  tls_test::pump_handshake(upstream_client, upstream, cs, ss);
  REQUIRE_MESSAGE(cs == S::Done, upstream_client.error());
  CHECK(upstream_client.cipher() == "TLS_AES_128_GCM_SHA256");

  // A list without it (a system policy) keeps its order; one with it gets it first.
  CtxPtr restricted(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_set_ciphersuites(restricted.get(), "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
  prefer_aes128_gcm(restricted.get());
  SSL_CTX_set_options(restricted.get(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  Engine client2 = Engine::client(default_client.get(), "api.example.com");
  Engine server2 = Engine::server(restricted.get(), *leaf);
  tls_test::pump_handshake(client2, server2, cs, ss);
  REQUIRE_MESSAGE(ss == S::Done, server2.error());
  CHECK(server2.cipher() == "TLS_CHACHA20_POLY1305_SHA256");
  SSL_CTX_set_ciphersuites(restricted.get(), "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
  prefer_aes128_gcm(restricted.get());
  Engine client3 = Engine::client(default_client.get(), "api.example.com");
  Engine server3 = Engine::server(restricted.get(), *leaf);
  tls_test::pump_handshake(client3, server3, cs, ss);
  REQUIRE_MESSAGE(ss == S::Done, server3.error());
  CHECK(server3.cipher() == "TLS_AES_128_GCM_SHA256");
}

TEST_CASE("tls engine: an IP-literal target is checked against the IP SAN") {
  Fixture f;
  auto leaf = f.cache.get("127.0.0.1");
  Engine client = Engine::client(f.client_ctx.get(), "127.0.0.1");
  Engine server = Engine::server(f.server_ctx.get(), *leaf);
  S cs, ss;
  tls_test::pump_handshake(client, server, cs, ss);
  CHECK_MESSAGE(cs == S::Done, client.error());
  CHECK(server.client_sni() == "");  // no SNI for IP literals

  Engine wrong = Engine::client(f.client_ctx.get(), "127.0.0.2");
  Engine server2 = Engine::server(f.server_ctx.get(), *leaf);
  tls_test::pump_handshake(wrong, server2, cs, ss);
  CHECK(cs == S::Failed);
  CHECK(wrong.error() == "IP address mismatch");
}

TEST_CASE("tls engine: upstream verification failures give the verify error text") {
  Fixture f;
  S cs, ss;
  SUBCASE("wrong hostname") {
    auto leaf = f.cache.get("other.example.com");
    Engine client = Engine::client(f.client_ctx.get(), "api.example.com");
    Engine server = Engine::server(f.server_ctx.get(), *leaf);
    tls_test::pump_handshake(client, server, cs, ss);
    CHECK(cs == S::Failed);
    CHECK(client.error() == "hostname mismatch");
    CHECK(ss == S::Failed);
    CHECK(server.peer_alert() != "");  // the client told the server why
  }
  SUBCASE("expired certificate") {
    auto leaf = f.cache.get("api.example.com");
    Leaf expired{expired_copy(*leaf, f.ca), PkeyPtr()};
    EVP_PKEY_up_ref(leaf->key.get());
    expired.key.reset(leaf->key.get());
    Engine client = Engine::client(f.client_ctx.get(), "api.example.com");
    Engine server = Engine::server(f.server_ctx.get(), expired);
    tls_test::pump_handshake(client, server, cs, ss);
    CHECK(cs == S::Failed);
    CHECK(client.error() == "certificate has expired");
    CHECK(server.peer_alert() == "certificate expired");
  }
  SUBCASE("unknown CA: system roots only") {
    auto leaf = f.cache.get("api.example.com");
    std::string err;
    CtxPtr roots_only = make_upstream_ctx({}, err);
    REQUIRE(roots_only);
    Engine client = Engine::client(roots_only.get(), "api.example.com");
    Engine server = Engine::server(f.server_ctx.get(), *leaf);
    tls_test::pump_handshake(client, server, cs, ss);
    CHECK(cs == S::Failed);
    CHECK(client.error() == "unable to get local issuer certificate");
    CHECK(ss == S::Failed);
    CHECK(server.peer_alert() == "unknown CA");
    CHECK(server.error().find("unknown CA") != std::string::npos);
  }
}

namespace {
// One connection to a server engine from SERVER_CTX presenting LEAF; after the handshake the
// server writes once, so the client reads the TLS 1.3 tickets sent after the handshake.
// Returns the client's status; RESUMED says whether the handshake resumed a session.
S connect_once(SSL_CTX* client_ctx, SSL_CTX* server_ctx, const Leaf& leaf, const std::string& host,
               SessionCache& sessions, uint16_t port, bool& resumed) {
  Engine client = Engine::client(client_ctx, host, &sessions, port);
  Engine server = Engine::server(server_ctx, leaf);
  S cs, ss;
  tls_test::pump_handshake(client, server, cs, ss);
  resumed = cs == S::Done && client.resumed();
  if (cs != S::Done) return cs;
  REQUIRE(server.write("hi") == S::Done);
  client.feed(server.take_output());
  std::string got;
  client.read(got);
  CHECK(got == "hi");
  return cs;
}
}  // namespace

TEST_CASE("tls engine: the upstream's session is kept per host:port and resumed; a failed offer is forgotten") {
  Fixture f;
  SessionCache sessions(2);
  auto leaf = f.cache.get("api.example.com");
  auto other_leaf = f.cache.get("other.example.com");
  bool resumed = true;
  REQUIRE(connect_once(f.client_ctx.get(), f.server_ctx.get(), *leaf, "api.example.com", sessions, 443, resumed) ==
          S::Done);
  CHECK_FALSE(resumed);  // nothing kept yet
  CHECK(sessions.size() == 1);
  REQUIRE(connect_once(f.client_ctx.get(), f.server_ctx.get(), *leaf, "api.example.com", sessions, 443, resumed) ==
          S::Done);
  CHECK(resumed);
  // Another port or another name is another target: a full handshake (and its certificate check).
  REQUIRE(connect_once(f.client_ctx.get(), f.server_ctx.get(), *leaf, "api.example.com", sessions, 8443, resumed) ==
          S::Done);
  CHECK_FALSE(resumed);
  CHECK(connect_once(f.client_ctx.get(), f.server_ctx.get(), *leaf, "other.example.com", sessions, 443, resumed) ==
        S::Failed);  // api's leaf does not name it: no session of api's vouches for it
  CHECK(sessions.size() == 2);
  // The cache holds two targets: a third pushes out the least recently used (api:443; api:8443
  // was used after it).
  REQUIRE(connect_once(f.client_ctx.get(), f.server_ctx.get(), *other_leaf, "other.example.com", sessions, 443,
                       resumed) == S::Done);
  CHECK(sessions.size() == 2);
  REQUIRE(connect_once(f.client_ctx.get(), f.server_ctx.get(), *leaf, "api.example.com", sessions, 8443, resumed) ==
          S::Done);
  CHECK(resumed);
  REQUIRE(connect_once(f.client_ctx.get(), f.server_ctx.get(), *leaf, "api.example.com", sessions, 443, resumed) ==
          S::Done);
  CHECK_FALSE(resumed);

  // A server that does not know the ticket (another context, another ticket key) makes it a full
  // handshake; when that fails (its leaf names someone else), the kept session is forgotten.
  CtxPtr stranger = make_server_ctx();
  REQUIRE(connect_once(f.client_ctx.get(), f.server_ctx.get(), *leaf, "api.example.com", sessions, 443, resumed) ==
          S::Done);
  CHECK(resumed);
  REQUIRE(sessions.size() == 2);
  CHECK(connect_once(f.client_ctx.get(), stranger.get(), *other_leaf, "api.example.com", sessions, 443, resumed) ==
        S::Failed);
  CHECK(sessions.size() == 1);
  REQUIRE(connect_once(f.client_ctx.get(), f.server_ctx.get(), *leaf, "api.example.com", sessions, 443, resumed) ==
          S::Done);
  CHECK_FALSE(resumed);
}

TEST_CASE("tls engine: an unreadable upstream CA file is an error") {
  std::string err;
  CtxPtr ctx = make_upstream_ctx({"/nonexistent/ca.pem"}, err);
  CHECK(!ctx);
  CHECK(err.find("upstream CA file /nonexistent/ca.pem") != std::string::npos);
}

TEST_CASE("tls engine: ClientHello detection") {
  Fixture f;
  Engine client = Engine::client(f.client_ctx.get(), "api.example.com");
  REQUIRE(client.handshake() == S::WantIo);
  std::string hello = client.take_output();
  bool need_more = true;
  CHECK(looks_like_client_hello(hello, need_more));
  CHECK(!need_more);
  CHECK(!looks_like_client_hello(hello.substr(0, 3), need_more));
  CHECK(need_more);
  CHECK(!looks_like_client_hello("", need_more));
  CHECK(need_more);
  CHECK(!looks_like_client_hello("GET / HTTP/1.1\r\n", need_more));
  CHECK(!need_more);
  CHECK(!looks_like_client_hello("SSH-2.0-OpenSSH_9.2\r\n", need_more));
  CHECK(!need_more);
  // A handshake record that is not a ClientHello (ServerHello, type 2).
  std::string server_hello = hello;
  server_hello[5] = 2;
  CHECK(!looks_like_client_hello(server_hello, need_more));
  CHECK(!need_more);
}

TEST_CASE("tls engine: lent ciphertext is read in place; unlend keeps what OpenSSL did not take") {
  Fixture f;
  auto leaf = f.cache.get("api.example.com");
  Engine client = Engine::client(f.client_ctx.get(), "api.example.com");
  Engine server = Engine::server(f.server_ctx.get(), *leaf);
  S cs, ss;
  tls_test::pump_handshake(client, server, cs, ss);
  REQUIRE(cs == S::Done);
  REQUIRE(ss == S::Done);
  std::string plain;
  for (size_t i = 0; i < 300000; ++i) plain.push_back(static_cast<char>('a' + (i * 7 + i / 13) % 26));
  REQUIRE(server.write(plain) == S::Done);
  const std::string cipher = server.take_output();
  // Lent in pieces that cut records anywhere (a header, a body, a tag); each piece is
  // overwritten right after unlend(), as a read buffer reused for the next read would be.
  std::string got;
  std::string buf;
  size_t off = 0, step = 1;
  while (off < cipher.size()) {
    const size_t n = std::min(cipher.size() - off, step);
    buf.assign(cipher, off, n);
    client.lend(buf);
    if (step % 3 == 0) client.feed("");  // a feed while lent keeps the order
    std::string part;
    const S st = client.read(part);
    CHECK(st == S::WantIo);
    CHECK(client.unread_input() == 0);
    got += part;
    client.unlend();
    buf.assign(n, '\xee');
    off += n;
    step = step * 5 % 70001 + 3;
  }
  std::string tail;
  CHECK(client.read(tail) == S::WantIo);
  got += tail;
  CHECK(got.size() == plain.size());
  CHECK(got == plain);
  // A reader that stops early (its buffer full) leaves lent records unread: unlend() keeps them.
  REQUIRE(server.write(plain) == S::Done);
  buf = server.take_output();
  client.lend(buf);
  std::string head(1000, '\0');
  size_t n = 0;
  CHECK(client.read(head.data(), head.size(), n) == S::Done);
  CHECK(n == head.size());
  client.unlend();
  buf.assign(buf.size(), '\xee');
  std::string rest;
  CHECK(client.read(rest) == S::WantIo);
  CHECK(head + rest == plain);
  // Feeding and lending mix: fed bytes come first, a lend behind them is copied in order.
  REQUIRE(server.write("first|second") == S::Done);
  const std::string two = server.take_output();
  client.feed(std::string_view(two).substr(0, 7));
  buf = two.substr(7);
  client.lend(buf);
  buf.assign(buf.size(), '\xee');  // lend() behind fed bytes copied: the buffer is free at once
  std::string both;
  CHECK(client.read(both) == S::WantIo);
  client.unlend();
  CHECK(both == "first|second");
}
