// sluice-handshake-cost: the CPU of the two TLS handshakes of one inspected connection, sluice's
// side only, with no sockets: sluice's own contexts and engines (tls/) against in-memory peers,
// a client with OpenSSL's defaults (as curl, Python and Node are) and an upstream server with
// OpenSSL's defaults and a leaf of its own CA. Each handshake runs to completion in this thread;
// only the time inside sluice's engines is counted (CLOCK_THREAD_CPUTIME_ID), so the peers'
// work is not in the figure.
//
//   sluice-handshake-cost [--count N] [--rounds R] [--tickets]
//     per round, interleaved: `sluice` (the contexts as sluice makes them) and `openssl-order`
//     (the same contexts with OpenSSL's default TLS 1.3 order, AES-256-GCM first, and no server
//     preference), each N connections; with --tickets the upstream sends session tickets and
//     sluice resumes (its SessionCache), as against most real servers.
// Prints µs per connection: the client-facing handshake, the upstream one, and their sum.
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tls/ca.hpp"
#include "tls/engine.hpp"
#include "tls/leaf.hpp"
#include "tls/session_cache.hpp"

using namespace sluice::tls;

namespace {

double thread_cpu() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// Runs a handshake between OURS (timed into SPENT) and PEER; then lets OURS take what the peer
// sends after it (TLS 1.3 tickets). False if either side fails.
bool handshake(Engine& ours, Engine& peer, double& spent) {
  for (int step = 0; step < 20; ++step) {
    double t0 = thread_cpu();
    const auto a = ours.handshake();
    std::string out = ours.take_output();
    spent += thread_cpu() - t0;
    peer.feed(out);
    const auto b = peer.handshake();
    std::string back = peer.take_output();
    t0 = thread_cpu();
    ours.feed(back);
    const auto c = ours.handshake();
    std::string more = ours.take_output();
    std::string ignored;
    if (ours.established()) ours.read(ignored);  // processes tickets
    spent += thread_cpu() - t0;
    peer.feed(more);
    if (a == Engine::Status::Failed || b == Engine::Status::Failed || c == Engine::Status::Failed) return false;
    if (ours.established() && peer.established() && more.empty()) return true;
  }
  return false;
}

struct Side {
  CtxPtr server, upstream;  // sluice's two contexts
};

}  // namespace

int main(int argc, char** argv) {
  int count = 300, rounds = 5;
  bool tickets = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--count" && i + 1 < argc) {
      count = std::atoi(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--tickets") {
      tickets = true;
    } else {
      std::fprintf(stderr, "usage: sluice-handshake-cost [--count N] [--rounds R] [--tickets]\n");
      return 2;
    }
  }
  if (count <= 0 || rounds <= 0) return 2;

  // The upstream's CA and leaf (a file for sluice's upstream_ca), and sluice's own CA.
  CaResult up_ca = create_ca(), sluice_ca = create_ca();
  if (!up_ca.ca || !sluice_ca.ca) return std::fprintf(stderr, "cannot make the CAs\n"), 1;
  char dir[] = "/tmp/sluice-handshake-cost.XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string up_ca_file = std::string(dir) + "/upca.crt", sluice_ca_file = std::string(dir) + "/ca.crt";
  std::ofstream(up_ca_file) << cert_to_pem(up_ca.ca->cert.get());
  std::ofstream(sluice_ca_file) << cert_to_pem(sluice_ca.ca->cert.get());
  LeafCache up_leaves(*up_ca.ca, 4), sluice_leaves(*sluice_ca.ca, 4);
  auto up_leaf = up_leaves.get("upstream.test"), leaf = sluice_leaves.get("upstream.test");

  // The peers: OpenSSL's defaults.
  CtxPtr client_ctx(SSL_CTX_new(TLS_client_method())), upstream_ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_load_verify_locations(client_ctx.get(), sluice_ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_num_tickets(upstream_ctx.get(), tickets ? 2 : 0);

  std::string error;
  Side sluice{make_server_ctx(), make_upstream_ctx({up_ca_file}, error)},
      plain{make_server_ctx(), make_upstream_ctx({up_ca_file}, error)};
  if (!sluice.upstream || !plain.upstream) return std::fprintf(stderr, "%s\n", error.c_str()), 1;
  const char* openssl_order = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
  SSL_CTX_set_ciphersuites(plain.server.get(), openssl_order);
  SSL_CTX_clear_options(plain.server.get(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_ciphersuites(plain.upstream.get(), openssl_order);

  std::printf("round\tcontexts\tsuite\tclient-facing us\tupstream us\tsum us\tresumed\n");
  for (int r = 1; r <= rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      const bool ours_first = (r % 2 == 1) == (k == 0);  // alternate which runs first
      Side& side = ours_first ? sluice : plain;
      SessionCache sessions(16);
      double front = 0, back = 0;
      int resumed = 0;
      std::string suite;
      for (int i = 0; i < count + 20; ++i) {  // the first 20 warm up, uncounted
        double f = 0, u = 0;
        Engine up = Engine::client(side.upstream.get(), "upstream.test", &sessions, 443);
        Engine server = Engine::server(upstream_ctx.get(), *up_leaf);
        Engine jail_client = Engine::client(client_ctx.get(), "upstream.test");
        Engine ours = Engine::server(side.server.get(), *leaf);
        if (!handshake(up, server, u) || !handshake(ours, jail_client, f)) {  // sluice's order
          std::fprintf(stderr, "handshake failed: %s %s\n", up.error().c_str(), ours.error().c_str());
          return 1;
        }
        if (i < 20) continue;
        front += f;
        back += u;
        resumed += up.resumed() ? 1 : 0;
        suite = ours.cipher();
      }
      std::printf("%d\t%s\t%s\t%.1f\t%.1f\t%.1f\t%d/%d\n", r, ours_first ? "sluice" : "openssl-order", suite.c_str(),
                  front / count * 1e6, back / count * 1e6, (front + back) / count * 1e6, resumed, count);
    }
  }
  unlink(up_ca_file.c_str());
  unlink(sluice_ca_file.c_str());
  rmdir(dir);
  return 0;
}
