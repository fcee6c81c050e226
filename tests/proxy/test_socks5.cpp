// The SOCKS5 wire format: one row per well-formed, short and malformed message,
// and the exact bytes of every reply sluice sends; the SSH disconnect banner.
#include <doctest/doctest.h>

#include <string>

#include "proxy/socks5.hpp"
#include "proxy/ssh_disconnect.hpp"

using namespace sluice::proxy;
using namespace sluice::proxy::socks5;

namespace {
std::string b(std::initializer_list<int> bytes) {
  std::string out;
  for (int x : bytes) out += static_cast<char>(x);
  return out;
}
}  // namespace

TEST_CASE("greetings") {
  struct Row {
    std::string in;
    Status status;
    size_t consumed;
    size_t methods;
  };
  const Row rows[] = {
      {b({}), Status::NeedMore, 0, 0},
      {b({5}), Status::NeedMore, 0, 0},
      {b({5, 1}), Status::NeedMore, 0, 0},
      {b({5, 1, 0}), Status::Done, 3, 1},
      {b({5, 2, 0, 2}), Status::Done, 4, 2},
      {b({5, 2, 0, 2, 5, 1, 0, 3}), Status::Done, 4, 2},  // the request may follow at once
      {b({5, 3, 0, 2}), Status::NeedMore, 0, 0},
      {b({5, 0}), Status::Error, 0, 0},  // no method at all
      {b({4, 1, 0}), Status::Error, 0, 0},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in.size());
    auto g = parse_greeting(r.in);
    CHECK(g.status == r.status);
    CHECK(g.consumed == r.consumed);
    CHECK(g.methods.size() == r.methods);
  }
}

TEST_CASE("username/password sub-negotiation") {
  auto ok = parse_user_pass(b({1, 2, 'a', 'b', 3, 'x', 'y', 'z'}));
  REQUIRE(ok.status == Status::Done);
  CHECK(ok.consumed == 8);
  CHECK(ok.username == "ab");
  CHECK(ok.password == "xyz");
  for (size_t cut = 0; cut < 8; ++cut)
    CHECK(parse_user_pass(b({1, 2, 'a', 'b', 3, 'x', 'y', 'z'}).substr(0, cut)).status == Status::NeedMore);
  CHECK(parse_user_pass(b({5, 2, 'a', 'b', 1, 'x'})).status == Status::Error);  // version must be 1
  CHECK(parse_user_pass(b({1, 0, 1, 'x'})).status == Status::Error);
  CHECK(parse_user_pass(b({1, 1, 'a', 0})).status == Status::Error);
}

TEST_CASE("requests: address types, commands, malformed input") {
  struct Row {
    std::string in;
    Status status;
    const char* host;
    uint16_t port;
    uint8_t command;
    Reply error_reply;
  };
  const Row rows[] = {
      {b({5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90}), Status::Done, "127.0.0.1", 8080, 1, Reply::GeneralFailure},
      {b({5, 1, 0, 3, 6, 'g', 'i', 't', '.', 'x', 'y', 0, 22}), Status::Done, "git.xy", 22, 1, Reply::GeneralFailure},
      {b({5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb}), Status::Done, "::1", 443, 1,
       Reply::GeneralFailure},
      {b({5, 2, 0, 1, 1, 2, 3, 4, 0, 80}), Status::Done, "1.2.3.4", 80, 2, Reply::GeneralFailure},  // BIND parses
      {b({5, 3, 0, 1, 0, 0, 0, 0, 0, 53}), Status::Done, "0.0.0.0", 53, 3, Reply::GeneralFailure},  // UDP too
      {b({5, 9, 0, 1, 1, 2, 3, 4, 0, 80}), Status::Done, "1.2.3.4", 80, 9, Reply::GeneralFailure},  // unknown command
      // The usual UDP ASSOCIATE (and BIND) form carries 0.0.0.0:0: it parses, so it gets 0x07.
      {b({5, 3, 0, 1, 0, 0, 0, 0, 0, 0}), Status::Done, "0.0.0.0", 0, 3, Reply::GeneralFailure},
      {b({5, 2, 0, 1, 0, 0, 0, 0, 0, 0}), Status::Done, "0.0.0.0", 0, 2, Reply::GeneralFailure},
      // Short: every prefix of a good request needs more.
      {b({5, 1, 0, 3, 6, 'g', 'i', 't'}), Status::NeedMore, "", 0, 1, Reply::GeneralFailure},
      {b({5, 1, 0, 1, 127, 0, 0, 1, 0x1f}), Status::NeedMore, "", 0, 1, Reply::GeneralFailure},
      {b({5, 1, 0}), Status::NeedMore, "", 0, 1, Reply::GeneralFailure},
      // Malformed.
      {b({4, 1, 0, 1, 1, 2, 3, 4, 0, 80}), Status::Error, "", 0, 0, Reply::GeneralFailure},
      {b({5, 1, 1, 1, 1, 2, 3, 4, 0, 80}), Status::Error, "", 0, 1, Reply::GeneralFailure},  // reserved byte
      {b({5, 1, 0, 2, 1, 2, 3, 4, 0, 80}), Status::Error, "", 0, 1, Reply::AddressTypeNotSupported},
      {b({5, 1, 0, 9}), Status::Error, "", 0, 1, Reply::AddressTypeNotSupported},           // known before the address
      {b({5, 1, 0, 3, 0, 0, 80}), Status::Error, "", 0, 1, Reply::GeneralFailure},          // empty name
      {b({5, 1, 0, 1, 1, 2, 3, 4, 0, 0}), Status::Error, "", 0, 1, Reply::GeneralFailure},  // port 0
  };
  for (const auto& r : rows) {
    CAPTURE(r.in.size());
    CAPTURE(r.host);
    auto got = parse_request(r.in);
    CHECK(got.status == r.status);
    if (r.status == Status::Done) {
      CHECK(got.host == r.host);
      CHECK(got.port == r.port);
      CHECK(got.command == r.command);
      CHECK(got.consumed == r.in.size());
    }
    if (r.status == Status::Error) CHECK(got.error_reply == r.error_reply);
  }
  // Bytes after a request are not part of it.
  auto with_data = parse_request(b({5, 1, 0, 1, 1, 2, 3, 4, 0, 80, 'G', 'E', 'T'}));
  CHECK(with_data.status == Status::Done);
  CHECK(with_data.consumed == 10);
}

TEST_CASE("replies sluice sends, byte for byte") {
  CHECK(method_reply(kMethodNoAuth) == b({5, 0}));
  CHECK(method_reply(kMethodUserPass) == b({5, 2}));
  CHECK(method_reply(kMethodNone) == b({5, 0xff}));
  CHECK(user_pass_reply(true) == b({1, 0}));
  CHECK(user_pass_reply(false) == b({1, 1}));
  struct Row {
    Reply code;
    int byte;
  };
  for (auto r :
       {Row{Reply::Succeeded, 0}, Row{Reply::GeneralFailure, 1}, Row{Reply::NotAllowed, 2},
        Row{Reply::NetworkUnreachable, 3}, Row{Reply::HostUnreachable, 4}, Row{Reply::ConnectionRefused, 5},
        Row{Reply::TtlExpired, 6}, Row{Reply::CommandNotSupported, 7}, Row{Reply::AddressTypeNotSupported, 8}}) {
    CHECK(reply(r.code) == b({5, r.byte, 0, 1, 0, 0, 0, 0, 0, 0}));
    CHECK(std::string(reply_text(r.code)).size() > 3);
  }
  auto v6 = sluice::rules::IpAddr::parse("::1").value();
  CHECK(reply(Reply::Succeeded, &v6, 443) == b({5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb}));
}

TEST_CASE("the SSH disconnect banner is one well-formed unencrypted packet") {
  const std::string text = "sluice: github.com:22 is not in the allow list";
  std::string out = ssh_disconnect_banner(text + "\nsecond line");
  const std::string ident = "SSH-2.0-sluice\r\n";
  REQUIRE(out.compare(0, ident.size(), ident) == 0);
  std::string pkt = out.substr(ident.size());
  REQUIRE(pkt.size() >= 5);
  auto u32 = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<uint8_t>(pkt[at])) << 24 |
           static_cast<uint32_t>(static_cast<uint8_t>(pkt[at + 1])) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(pkt[at + 2])) << 8 | static_cast<uint8_t>(pkt[at + 3]);
  };
  uint32_t packet_length = u32(0);
  CHECK(pkt.size() == 4 + packet_length);
  CHECK(pkt.size() % 8 == 0);
  size_t padding = static_cast<uint8_t>(pkt[4]);
  CHECK(padding >= 4);
  CHECK(static_cast<uint8_t>(pkt[5]) == 1);  // SSH_MSG_DISCONNECT
  CHECK(u32(6) == 1);                        // host not allowed to connect
  uint32_t len = u32(10);
  CHECK(pkt.substr(14, len) == text);  // only the first line
  CHECK(u32(14 + len) == 0);           // empty language tag
  CHECK(14 + len + 4 + padding == pkt.size());
  CHECK(ssh_disconnect_banner(std::string(1000, 'x')).size() < 500);  // cut to 400 bytes of text
}
