// The SOCKS5 adapter over a socketpair, with the rig's worker and a loopback upstream: each
// outcome of the target flow in SOCKS5's words (REP codes), an ask answered (early bytes
// kept for the tunnel) and timed out.
#include <doctest/doctest.h>

#include <string>

#include "proxy/socks_session.hpp"
#include "session_rig.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;

namespace {

struct Socks {
  rig::TestWorker w;
  rig::Upstream up;
  rig::End client;
  SocksSession* s = nullptr;
  explicit Socks(std::shared_ptr<rules::Config> cfg) {
    w.table().answers["ask.test"] = "127.0.0.1";
    s = rig::open_session<SocksSession>(w, std::move(cfg), client);
    client.send(std::string("\x05\x01\x00", 3));  // no authentication
    w.run_until([&] { return client.pump(), client.got.size() >= 2; });
    REQUIRE(client.got == std::string("\x05\x00", 2));
    client.got.clear();
  }
  // CONNECT to a name (ATYP 3).
  void connect(const std::string& host, uint16_t port) {
    std::string r("\x05\x01\x00\x03", 4);
    r += static_cast<char>(host.size());
    r += host;
    r += static_cast<char>(port >> 8);
    r += static_cast<char>(port & 0xff);
    client.send(r);
  }
  // The REP of the reply (10 bytes for the IPv4 form sluice sends).
  int reply() {
    w.run_until([&] { return client.pump(), client.got.size() >= 10 || client.eof; });
    REQUIRE(client.got.size() >= 10);
    CHECK(client.got[0] == 0x05);
    return static_cast<unsigned char>(client.got[1]);
  }
  void wait_eof() {
    w.run_until([&] { return client.pump(), client.eof; });
    CHECK(client.eof);
  }
  void wait_closed() {
    client = rig::End();
    up.conns.clear();
    w.run_until([&] { return w.finished(s); });
    REQUIRE(w.finished(s));
  }
};

std::string cause(const char* c) { return std::string("\"cause\":\"") + c + "\""; }

}  // namespace

TEST_CASE("SOCKS5 session: a refusal is REP 0x02 and a close") {
  Socks k(rig::config(rules::Action::Deny, {"127.0.0.1"}, {"denied.test"}));
  k.connect("denied.test", k.up.port);
  CHECK(k.reply() == 0x02);
  k.wait_eof();
  k.wait_closed();
  CHECK(k.w.logged("\"socks_reply\":2", "denied-by-rule"));
  CHECK(k.w.logged(cause("refused")));
}

TEST_CASE("SOCKS5 session: dial failures in SOCKS5's words") {
  SUBCASE("connection refused: 0x05") {
    uint16_t closed = 0;
    {
      rig::Upstream gone;
      closed = gone.port;
    }
    Socks k(rig::config(rules::Action::Deny, {"127.0.0.1"}));
    k.connect("127.0.0.1", closed);
    CHECK(k.reply() == 0x05);
    k.wait_eof();
  }
  SUBCASE("a name that does not resolve: 0x04") {
    Socks k(rig::config(rules::Action::Deny, {"nowhere.test"}));
    k.connect("nowhere.test", 80);
    CHECK(k.reply() == 0x04);
    k.wait_eof();
  }
}

TEST_CASE("SOCKS5 session: an allowed answer replies 0x00 and tunnels, with the bytes sent while asking") {
  Socks k(rig::config(rules::Action::Ask, {}));
  k.connect("ask.test", k.up.port);
  k.w.run_until([&] { return !k.w.asks.empty(); });
  REQUIRE(k.w.asks.size() == 1);
  CHECK(k.w.asks[0].request.kind == "socks");
  k.client.send("early");  // kept as the tunnel's first bytes
  k.w.run_until([] { return false; }, 20);
  k.client.pump();
  CHECK(k.client.got.empty());
  k.w.answer(rules::Action::Allow);
  CHECK(k.reply() == 0x00);
  k.client.got.clear();
  k.w.run_until([&] { return k.up.has(0, "early"); });
  REQUIRE(k.up.has(0, "early"));
  k.up.conns[0].send("late");
  k.w.run_until([&] { return k.client.has("late"); });
  CHECK(k.client.has("late"));
  k.wait_closed();
  CHECK(k.w.logged("\"socks_reply\":0", "ask-allowed"));
}

TEST_CASE("SOCKS5 session: a relaying tunnel frees its timer, and still relays and closes") {
  Socks k(rig::config(rules::Action::Deny, {"127.0.0.1"}));
  auto own_timers = [&] {
    std::pair<int, void*> count{0, k.s};
    uv_walk(
        k.w.loop(),
        [](uv_handle_t* h, void* arg) {
          auto* c = static_cast<std::pair<int, void*>*>(arg);
          if (h->type == UV_TIMER && h->data == c->second && !uv_is_closing(h)) ++c->first;
        },
        &count);
    return count.first;
  };
  CHECK(own_timers() == 1);  // the handshake's
  k.connect("127.0.0.1", k.up.port);
  REQUIRE(k.reply() == 0x00);
  k.w.run_until([&] { return own_timers() == 0; });
  CHECK(own_timers() == 0);
  k.client.got.clear();
  k.client.send("ping");
  k.w.run_until([&] { return k.up.has(0, "ping"); });
  REQUIRE(k.up.has(0, "ping"));
  k.up.conns[0].send("pong");
  k.w.run_until([&] { return k.client.has("pong"); });
  CHECK(k.client.has("pong"));
  k.wait_closed();
}

TEST_CASE("SOCKS5 session: a denied answer is 0x02; no answer in time is 0x02 with cause ask-timeout") {
  auto cfg = rig::config(rules::Action::Ask, {});
  SUBCASE("denied") {
    Socks k(cfg);
    k.connect("ask.test", k.up.port);
    k.w.run_until([&] { return !k.w.asks.empty(); });
    k.w.answer(rules::Action::Deny);
    CHECK(k.reply() == 0x02);
    k.wait_closed();
    CHECK(k.w.logged("ask-denied"));
  }
  SUBCASE("timeout") {
    cfg->limits.ask_timeout_ms = 40;
    Socks k(cfg);
    k.connect("ask.test", k.up.port);
    CHECK(k.reply() == 0x02);
    REQUIRE(k.w.cancelled.size() == 1);
    CHECK(k.w.cancelled[0].timeout);
    k.wait_closed();
    CHECK(k.w.logged(cause("ask-timeout")));
  }
}

TEST_CASE("SOCKS5 session: a stopping proxy refuses a waiting ask at once (0x01)") {
  Socks k(rig::config(rules::Action::Ask, {}));
  k.connect("ask.test", k.up.port);
  k.w.run_until([&] { return !k.w.asks.empty(); });
  REQUIRE(k.w.asks.size() == 1);
  k.s->drain();
  CHECK(k.reply() == 0x01);
  k.wait_eof();
  REQUIRE(k.w.cancelled.size() == 1);
  CHECK_FALSE(k.w.cancelled[0].timeout);
  CHECK(k.w.logged("shutting-down"));
}
