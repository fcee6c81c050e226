// The hand-over channel's messages (proxy/handover_frame.hpp): the codec, a bounded
// mutation run over it (the bridge is inside the jail: its bytes are hostile input), and a
// real proxy::Server whose channel gets a transparent connection (served with no 200, the
// first bytes upstream first, refusals as reset or readable 403) and malformed messages
// (the channel closes, and so does every descriptor that came with them).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "proxy/handover_frame.hpp"
#include "proxy/server.hpp"
#include "rules/config.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;

namespace {

TransparentStart sample() {
  TransparentStart t;
  t.target = "example.test:443";
  t.original_dst = "198.18.0.7:443";
  t.first_kind = FirstBytesKind::Tls;
  t.first = std::string("\x16\x03\x01\x00\x05hello", 10);
  return t;
}

std::string be32(uint32_t v) {
  std::string s;
  for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

}  // namespace

TEST_CASE("hand-over message: a transparent start round-trips, and every prefix needs more") {
  const TransparentStart t = sample();
  const std::string m = transparent_handover_message(t);
  REQUIRE(!m.empty());
  ChannelMessage p = parse_channel_message(m + "c");  // the next message is not consumed
  REQUIRE(p.status == ChannelMessage::Status::Transparent);
  CHECK(p.consumed == m.size());
  CHECK(p.start.target == t.target);
  CHECK(p.start.original_dst == t.original_dst);
  CHECK(p.start.first_kind == FirstBytesKind::Tls);
  CHECK(p.start.first == t.first);
  for (size_t n = 0; n < m.size(); ++n)
    CHECK(parse_channel_message(std::string_view(m).substr(0, n)).status == ChannelMessage::Status::NeedMore);

  ChannelMessage plain = parse_channel_message(plain_handover_message());
  CHECK(plain.status == ChannelMessage::Status::Plain);
  CHECK(plain.consumed == 1);

  TransparentStart none;  // a server-speaks-first program: no first bytes
  none.target = "[fd00::1]:22";
  none.original_dst = "[fd00::1]:22";
  p = parse_channel_message(transparent_handover_message(none));
  REQUIRE(p.status == ChannelMessage::Status::Transparent);
  CHECK(p.start.first.empty());
  CHECK(p.start.first_kind == FirstBytesKind::Other);

  TransparentStart biggest = sample();
  biggest.first.assign(kMaxHandOverFirstBytes, 'x');
  biggest.target = std::string(kMaxHandOverTarget - 4, 'a') + ":443";
  const std::string big = transparent_handover_message(biggest);
  CHECK(big.size() == kMaxHandOverMessage - (kMaxHandOverOriginal - biggest.original_dst.size()));
  CHECK(parse_channel_message(big).status == ChannelMessage::Status::Transparent);
}

TEST_CASE("hand-over message: the encoder refuses what the parser would") {
  for (auto edit : std::vector<void (*)(TransparentStart&)>{
           [](TransparentStart& t) { t.target.clear(); },
           [](TransparentStart& t) { t.target = "a b:1"; },
           [](TransparentStart& t) { t.target = std::string(kMaxHandOverTarget + 1, 'a'); },
           [](TransparentStart& t) { t.original_dst = std::string(kMaxHandOverOriginal + 1, '1'); },
           [](TransparentStart& t) { t.original_dst = "1.2.3.4:5\n"; },
           [](TransparentStart& t) { t.first.assign(kMaxHandOverFirstBytes + 1, 'x'); },
       }) {
    TransparentStart t = sample();
    edit(t);
    CHECK(transparent_handover_message(t).empty());
  }
}

TEST_CASE("hand-over message: malformed messages are rejected, never waited on") {
  const std::string good = transparent_handover_message(sample());
  const std::string body = good.substr(5);
  struct Row {
    const char* what;
    std::string bytes;
  };
  std::string bad_kind = good;
  bad_kind[5 + 2 + 16 + 2 + 14] = 3;
  std::string space_target = good;
  space_target[5 + 2 + 3] = ' ';
  std::string nul_original = good;
  nul_original[5 + 2 + 16 + 2] = '\0';
  const std::vector<Row> rows = {
      {"unknown tag", "x"},
      {"a NUL tag", std::string(1, '\0')},
      {"length over the bound", "t" + be32(static_cast<uint32_t>(kMaxHandOverBody + 1))},
      {"length 0xffffffff", "t" + be32(0xffffffffu)},
      {"empty body", "t" + be32(0)},
      {"body shorter than its target length", "t" + be32(3) +
                                                  std::string("\x00\x05"
                                                              "a",
                                                              3)},
      {"target over the bound", "t" + be32(2) + std::string("\x01\x2d", 2)},
      {"bytes after the first bytes", "t" + be32(static_cast<uint32_t>(body.size() + 1)) + body + "!"},
      {"first bytes longer than the body",
       "t" + be32(static_cast<uint32_t>(body.size() - 1)) + body.substr(0, body.size() - 1)},
      {"unknown first-bytes kind", bad_kind},
      {"a space in the target", space_target},
      {"a NUL in the original destination", nul_original},
  };
  for (const auto& r : rows) {
    CAPTURE(r.what);
    ChannelMessage m = parse_channel_message(r.bytes);
    CHECK(m.status == ChannelMessage::Status::Malformed);
    CHECK(std::strlen(m.error) > 0);
  }
}

// Fuzz-style: mutations of valid messages, and random bytes, never crash, never read past the
// input, and whatever parses as Transparent is within every bound.
TEST_CASE("hand-over message: bounded mutation run") {
  std::mt19937 rng(16);
  const std::vector<std::string> seeds = {
      transparent_handover_message(sample()), plain_handover_message(),
      transparent_handover_message(TransparentStart{"h:1", "1.2.3.4:1", FirstBytesKind::Http, "GET "})};
  size_t transparent = 0, malformed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.erase(at, 1 + rng() % 3); break;
        case 2: s.insert(at, 1, static_cast<char>(rng())); break;
        default: s.resize(at); break;
      }
    }
    if (i % 10 == 0) {  // plain noise too
      s.resize(rng() % 64);
      for (auto& c : s) c = static_cast<char>(rng());
    }
    ChannelMessage m = parse_channel_message(s);
    CHECK(m.consumed <= s.size());
    if (m.status == ChannelMessage::Status::Transparent) {
      ++transparent;
      CHECK(m.consumed >= 5);
      CHECK(m.start.target.size() <= kMaxHandOverTarget);
      CHECK(m.start.original_dst.size() <= kMaxHandOverOriginal);
      CHECK(m.start.first.size() <= kMaxHandOverFirstBytes);
      CHECK(static_cast<uint8_t>(m.start.first_kind) <= 2);
      // What parses re-encodes to the same bytes: one spelling per message.
      CHECK(transparent_handover_message(m.start) == s.substr(0, m.consumed));
    }
    if (m.status == ChannelMessage::Status::Malformed) ++malformed;
  }
  CHECK(transparent > 0);
  CHECK(malformed > 0);
}

// ---- a real server's channel ---------------------------------------------------------

namespace {

constexpr int kWaitMs = 5000;

// Sends `bytes` with `fds` attached (SCM_RIGHTS) in one message.
void send_with_fds(int channel, const std::string& bytes, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  REQUIRE(::sendmsg(channel, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

// Reads until `want` bytes, EOF, an error or the deadline. errno_out: the read error, if any.
std::string read_some(int fd, size_t want, int* errno_out = nullptr) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno_out != nullptr) *errno_out = errno;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// True when `fd`'s peer closed (EOF or reset) within the deadline, with nothing to read first.
bool peer_closed(int fd) {
  int err = 0;
  std::string got = read_some(fd, 1, &err);
  return got.empty();
}

struct TcpPair {
  int program = -1;  // the test's end: what CMD would hold
  int handed = -1;   // the accepted end: what the bridge hands over
  ~TcpPair() {
    if (program >= 0) ::close(program);
    if (handed >= 0) ::close(handed);
  }
};

int listen_loopback(uint16_t* port) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(l, 8) == 0);
  socklen_t len = sizeof a;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return l;
}

void make_pair(TcpPair& p) {
  uint16_t port = 0;
  int l = listen_loopback(&port);
  p.program = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  REQUIRE(::connect(p.program, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  p.handed = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(l);
  REQUIRE(p.handed >= 0);
}

int accept_within(int listener) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, kWaitMs) != 1) return -1;
  return ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
}

// A real server with one worker and its hand-over channel. The worker closes the descriptors
// it receives with a raw close(2) (libuv's), which ThreadSanitizer does not see: a socket the
// test makes afterwards may reuse such a number and look like a race. So each test makes its
// sockets before its first hand-over (or while the worker still holds what it received), and
// the server's stop (a thread join) orders everything before the next test.
struct ChannelRig {
  Server server;
  int channel = -1;
  ChannelRig() {
    auto load = rules::load_config_text(
        "listeners:\n  - name: sandbox\n    tcp: 127.0.0.1:0\n"
        "policies:\n  default:\n    allow: [\"127.0.0.1\"]\n    deny: [\"127.0.0.1:1\"]\n"
        "log:\n  path: /dev/null\n",
        "handover.yaml");
    REQUIRE(load.errors.empty());
    REQUIRE(server.start(load.config, 1) == "");
    std::string err;
    auto channels = server.open_channels("sandbox", &err);
    REQUIRE(channels.size() == 1);
    channel = channels[0];
  }
  ~ChannelRig() {
    ::close(channel);
    server.stop();
  }
};

}  // namespace

TEST_CASE("hand-over channel: a transparent connection is served on the program's own socket") {
  ChannelRig rig;
  uint16_t up_port = 0;
  int upstream_listener = listen_loopback(&up_port);
  TcpPair pair;
  make_pair(pair);
  TransparentStart t;
  t.target = "127.0.0.1:" + std::to_string(up_port);
  t.original_dst = "198.18.0.3:" + std::to_string(up_port);
  t.first_kind = FirstBytesKind::Other;
  t.first = "first bytes|";
  send_with_fds(rig.channel, transparent_handover_message(t), {pair.handed});
  ::close(std::exchange(pair.handed, -1));  // the bridge closes its copy once sent
  int up = accept_within(upstream_listener);
  ::close(upstream_listener);
  REQUIRE(up >= 0);
  CHECK(::send(pair.program, "then more", 9, MSG_NOSIGNAL) == 9);
  // The bridge's first bytes go upstream first, then what the program sends on its socket.
  CHECK(read_some(up, 21) == "first bytes|then more");
  CHECK(::send(up, "answer", 6, MSG_NOSIGNAL) == 6);
  CHECK(read_some(pair.program, 6) == "answer");  // no "HTTP/1.1 200" before it
  ::close(up);
  CHECK(peer_closed(pair.program));
}

TEST_CASE("hand-over channel: a refused transparent connection is reset, or answered 403 when it is HTTP") {
  ChannelRig rig;
  // Every socket of the test is made before the first hand-over (see ChannelRig).
  TcpPair pairs[2];
  for (auto& p : pairs) make_pair(p);
  for (FirstBytesKind kind : {FirstBytesKind::Other, FirstBytesKind::Http}) {
    TcpPair& pair = pairs[kind == FirstBytesKind::Http ? 1 : 0];
    TransparentStart t;
    t.target = "127.0.0.1:1";  // denied
    t.original_dst = "198.18.0.4:1";
    t.first_kind = kind;
    t.first = kind == FirstBytesKind::Http ? "GET / HTTP/1.1\r\nHost: x\r\n\r\n" : "raw";
    send_with_fds(rig.channel, transparent_handover_message(t), {pair.handed});
    ::close(std::exchange(pair.handed, -1));
    int err = 0;
    std::string got = read_some(pair.program, 4096, &err);
    if (kind == FirstBytesKind::Http) {
      CHECK(got.rfind("HTTP/1.1 403", 0) == 0);
      CHECK(got.find("X-Sluice-Reason: denied-by-rule") != std::string::npos);
    } else {
      CHECK(got.empty());
      CHECK(err == ECONNRESET);
    }
  }
}

TEST_CASE("hand-over channel: a malformed message closes the channel and the descriptors it carried") {
  struct Case {
    const char* what;
    std::string bytes;
    int fds;
    size_t served = 0;  // how many descriptors (the first ones) were well-formed and are served
  };
  const std::vector<Case> cases = {
      {"unknown tag", "x", 1},
      {"length over the bound", "t" + be32(0xffffffffu), 1},
      {"a message without a descriptor", transparent_handover_message(sample()), 0},
      {"two descriptors for one message", "c", 2, 1},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    ChannelRig rig;
    std::vector<TcpPair> pairs(static_cast<size_t>(c.fds));
    std::vector<int> fds;
    for (auto& p : pairs) {
      make_pair(p);
      fds.push_back(p.handed);
    }
    send_with_fds(rig.channel, c.bytes, fds);
    for (auto& p : pairs) ::close(std::exchange(p.handed, -1));
    CHECK(peer_closed(rig.channel));  // the proxy closed its end
    // ...and no copy of the passed sockets is left open: their peers see the close.
    for (size_t i = c.served; i < pairs.size(); ++i) CHECK(peer_closed(pairs[i].program));
  }
}
