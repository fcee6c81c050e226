#include <doctest/doctest.h>

#include <fstream>

#include "helpers.hpp"
#include "tls/inspector.hpp"

using namespace sluice::tls;
using S = Engine::Status;

namespace {

// One connection from IN's upstream side to a server presenting IN's own leaf for HOST (the
// upstream side trusts IN's CA through upstream_ca). After the handshake the server writes
// once, so the client reads the TLS 1.3 tickets sent after it. True when the client resumed.
bool connect_resumed(Inspector& in, const std::string& host, uint16_t port) {
  auto leaf = in.leaf(host);
  REQUIRE(leaf);
  Engine client = in.upstream_engine(host, port);
  Engine server = in.server_engine(*leaf);
  S cs, ss;
  tls_test::pump_handshake(client, server, cs, ss);
  REQUIRE_MESSAGE(cs == S::Done, client.error());
  REQUIRE(server.write("hi") == S::Done);
  client.feed(server.take_output());
  std::string got;
  client.read(got);
  CHECK(got == "hi");
  return client.resumed();
}

}  // namespace

TEST_CASE("inspector: session_cache 0 keeps no upstream session; the default resumes a second connection") {
  tls_test::TempDir dir;
  const size_t by_default = InspectorSettings{}.session_cache;
  for (auto [capacity, kept] : {std::pair{by_default, size_t(1)}, std::pair{size_t(0), size_t(0)}}) {
    CAPTURE(capacity);
    Ca ca = std::move(*create_ca().ca);
    const std::string ca_file = dir.path + "/ca.crt";
    std::ofstream(ca_file) << cert_to_pem(ca.cert.get());
    InspectorSettings s;
    s.upstream_ca = {ca_file};
    s.session_cache = capacity;
    std::string error;
    auto in = Inspector::from_ca(std::move(ca), s, error);
    REQUIRE_MESSAGE(in, error);
    CHECK_FALSE(connect_resumed(*in, "api.example.com", 443));  // nothing kept yet
    CHECK(in->sessions().size() == kept);
    CHECK(connect_resumed(*in, "api.example.com", 443) == (kept > 0));
    CHECK(in->sessions().size() == kept);
  }
}
