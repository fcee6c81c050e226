// The dialer through a parent proxy, on a real loop, against a scripted parent on a thread:
// one row per parent answer (HTTP CONNECT and SOCKS5, with and without credentials), what
// the parent was sent, and which failure each wrong answer becomes.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "loop_worker.hpp"
#include "proxy/base_aliases.hpp"
#include "proxy/connection.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/dialer.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resolver.hpp"
#include "proxy/worker_context.hpp"
#include "tests/loopback_listener.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;
using sluice::proxy::test::LoopWorker;

namespace {

// One exchange step: read `read` bytes (0: up to and including a blank line), then send `reply`.
struct Step {
  size_t read;
  std::string reply;
};

// A parent that accepts one connection and plays its steps, then keeps the connection
// open until the client closes it (or closes at once with `close_after`).
class ScriptedParent {
 public:
  ScriptedParent(std::vector<Step> steps, bool close_after) : listener_(4) {
    port = listener_.port;
    thread_ = std::thread([this, steps = std::move(steps), close_after] { play(steps, close_after); });
  }
  ~ScriptedParent() { join(); }
  // Waits for the script's end (the client gone); then `received` is complete.
  void join() {
    if (!thread_.joinable()) return;
    ::shutdown(listener_.fd, SHUT_RDWR);
    thread_.join();
  }
  uint16_t port = 0;
  std::string received;  // what sluice sent, read after join()

 private:
  bool wait_readable(int c) {
    pollfd p{c, POLLIN, 0};
    return ::poll(&p, 1, 5000) == 1;
  }
  void play(const std::vector<Step>& steps, bool close_after) {
    pollfd p{listener_.fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return;
    int c = ::accept4(listener_.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    for (const auto& s : steps) {
      size_t start = received.size();
      while (true) {
        std::string_view got(received.data() + start, received.size() - start);
        if (s.read > 0 ? got.size() >= s.read : got.find("\r\n\r\n") != std::string_view::npos) break;
        char b;
        if (!wait_readable(c) || ::recv(c, &b, 1, 0) != 1) {
          ::close(c);
          return;
        }
        received += b;
      }
      if (!s.reply.empty()) (void)::send(c, s.reply.data(), s.reply.size(), MSG_NOSIGNAL);
    }
    if (!close_after) {
      char b;
      while (wait_readable(c) && ::recv(c, &b, 1, 0) == 1) received += b;
    }
    ::close(c);
  }
  sluice::test::LoopbackListener listener_;  // closed after the thread is joined
  std::thread thread_;
};

struct Row {
  const char* name;
  const char* url;  // %d: the parent's port
  const char* target;
  std::vector<Step> steps;
  bool close_after;
  Dialer::Failure failure;
  const char* error_part;
  std::string sent;  // what the parent must have received, in full
};

std::string b(std::initializer_list<int> bytes) {
  std::string out;
  for (int x : bytes) out += static_cast<char>(x);
  return out;
}

}  // namespace

TEST_CASE("dialer through a parent: one row per parent answer") {
  const std::string connect_req = "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n";
  const std::string connect_auth =
      "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n";
  const std::string socks_name = b({5, 1, 0, 3, 6}) + "a.test" + b({1, 0xbb});
  const std::string socks_ip = b({5, 1, 0, 1, 10, 1, 2, 3, 1, 0xbb});
  using F = Dialer::Failure;
  const Row rows[] = {
      {"http 200",
       "http://127.0.0.1:%d",
       "a.test",
       {{0, "HTTP/1.1 200 Connection established\r\n\r\n"}},
       false,
       F::None,
       "",
       connect_req},
      {"http with credentials",
       "http://u:p@127.0.0.1:%d",
       "a.test",
       {{0, "HTTP/1.0 200 OK\r\nVia: x\r\n\r\n"}},
       false,
       F::None,
       "",
       connect_auth},
      {"http 403",
       "http://127.0.0.1:%d",
       "a.test",
       {{0, "HTTP/1.1 403 Forbidden\r\n\r\n"}},
       true,
       F::ParentFailed,
       "answered 403 Forbidden",
       connect_req},
      {"http 407",
       "http://u:p@127.0.0.1:%d",
       "a.test",
       {{0, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"}},
       true,
       F::ParentAuth,
       "answered 407",
       connect_auth},
      {"http not http",
       "http://127.0.0.1:%d",
       "a.test",
       {{0, "SSH-2.0-x\r\n\r\n"}},
       true,
       F::ParentFailed,
       "not HTTP",
       connect_req},
      {"http closes",
       "http://127.0.0.1:%d",
       "a.test",
       {{0, ""}},
       true,
       F::ParentFailed,
       "closed the connection",
       connect_req},
      {"http silent", "http://127.0.0.1:%d", "a.test", {{0, ""}}, false, F::ParentTimeout, "", connect_req},
      {"socks5h name",
       "socks5h://127.0.0.1:%d",
       "a.test",
       {{3, b({5, 0})}, {socks_name.size(), b({5, 0, 0, 1, 0, 0, 0, 0, 0, 0})}},
       false,
       F::None,
       "",
       b({5, 1, 0}) + socks_name},
      {"socks5 address of a literal",
       "socks5://127.0.0.1:%d",
       "10.1.2.3",
       {{3, b({5, 0})}, {socks_ip.size(), b({5, 0, 0, 3, 4}) + "abcd" + b({0, 80})}},
       false,
       F::None,
       "",
       b({5, 1, 0}) + socks_ip},
      {"socks5 credentials",
       "socks5h://u:p@127.0.0.1:%d",
       "a.test",
       {{4, b({5, 2})}, {5, b({1, 0})}, {socks_name.size(), b({5, 0, 0, 1, 0, 0, 0, 0, 0, 0})}},
       false,
       F::None,
       "",
       b({5, 2, 0, 2}) + b({1, 1}) + "u" + b({1}) + "p" + socks_name},
      {"socks5 wrong credentials",
       "socks5h://u:p@127.0.0.1:%d",
       "a.test",
       {{4, b({5, 2})}, {5, b({1, 1})}},
       true,
       F::ParentAuth,
       "refused the credentials",
       b({5, 2, 0, 2}) + b({1, 1}) + "u" + b({1}) + "p"},
      {"socks5 wants credentials",
       "socks5h://127.0.0.1:%d",
       "a.test",
       {{3, b({5, 0xff})}},
       true,
       F::ParentAuth,
       "wants credentials",
       b({5, 1, 0})},
      {"socks5 refused",
       "socks5h://127.0.0.1:%d",
       "a.test",
       {{3, b({5, 0})}, {socks_name.size(), b({5, 5, 0, 1, 0, 0, 0, 0, 0, 0})}},
       true,
       F::ParentFailed,
       "answered 5 (connection refused)",
       b({5, 1, 0}) + socks_name},
      {"socks5 malformed",
       "socks5h://127.0.0.1:%d",
       "a.test",
       {{3, b({5, 0})}, {socks_name.size(), b({5, 0, 0, 9, 0})}},
       true,
       F::ParentFailed,
       "malformed",
       b({5, 1, 0}) + socks_name},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    LoopWorker<> w;
    rules::Config cfg;
    cfg.limits.connect_timeout_ms = 300;
    auto policy = rules::make_policy("p", rules::Action::Allow, {"10.0.0.0/8"}, {}).value();
    {
      ScriptedParent parent(row.steps, row.close_after);
      char url[128];
      std::snprintf(url, sizeof url, row.url, parent.port);
      cfg.upstream_proxy = std::make_shared<rules::UpstreamProxy>(rules::parse_upstream_proxy_url(url).value());
      bool called = false;
      Dialer::Failure failure = F::None;
      std::string error;
      bool live = false;
      UvHandle<AnyStream> kept{UvHandle<AnyStream>::Empty{}};
      {
        Dialer d(w, cfg, policy.get());
        d.dial(rules::canonicalize_host(row.target).value(), 443, [&](Dialer::Outcome& o) {
          called = true;
          failure = o.failure;
          error = o.error;
          live = o.stream.live();
          kept = std::move(o.stream);
        });
        for (int i = 0; i < 5000 && !called; ++i) uv_run(w.loop(), UV_RUN_ONCE);
      }
      kept.close();  // the parent's thread sees EOF and ends
      for (int i = 0; i < 20; ++i) uv_run(w.loop(), UV_RUN_NOWAIT);
      REQUIRE(called);
      CHECK(failure == row.failure);
      CHECK(live == (row.failure == F::None));
      CHECK(error.find(row.error_part) != std::string::npos);
      CHECK(error.find("u:p") == std::string::npos);
      parent.join();
      CHECK(parent.received == row.sent);
    }
  }
}
