// The git guard in the HTTP session (proxy/http_session_git.cpp), over plain HTTP with the rig's
// loopback upstream: a refused repository is never dialed; a push is held until its command
// section is read (Content-Length or chunked, split across reads), then forwarded byte for byte
// or refused with git's ng lines, nothing of it upstream, the rest of its body drained and the
// connection kept; an unreadable or oversized command section fails closed.
#include <doctest/doctest.h>

#include <string>

#include "proxy/http_session.hpp"
#include "rules/git_guard.hpp"
#include "session_rig.hpp"

using namespace sluice::proxy;
namespace rules = sluice::rules;

namespace {

const std::string kOld(40, 'a');
const std::string kNew(40, 'b');

std::shared_ptr<rules::Config> git_config() {
  auto c = rig::config(rules::Action::Deny, {"127.0.0.1"});
  auto p = std::const_pointer_cast<rules::Policy>(c->policies["p"]);
  auto rule = rules::make_git_rule("127.0.0.1", {"org/repo"}, {"refs/heads/agent/*"});
  REQUIRE(rule.ok());
  p->git.push_back(std::move(rule.value()));
  return c;
}

// The command section of a push to `ref`, asking for report-status and side-band-64k.
std::string commands(const std::string& ref) {
  return rules::pkt_line(kOld + " " + kNew + " " + ref + std::string(1, '\0') + "report-status side-band-64k\n") +
         "0000";
}

struct Git {
  rig::TestWorker w;
  rig::Upstream up;
  rig::End client;
  HttpSession* s = nullptr;
  Git() { s = rig::open_session<HttpSession>(w, git_config(), client); }
  std::string url(const std::string& path) { return "http://127.0.0.1:" + std::to_string(up.port) + path; }
  std::string post_head(const std::string& path, const std::string& framing) {
    return "POST " + url(path) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(up.port) +
           "\r\nContent-Type: application/x-git-receive-pack-request\r\n" + framing + "\r\n";
  }
  void wait_client(const std::string& text) {
    w.run_until([&] { return client.has(text); });
    REQUIRE(client.has(text));
  }
  // Runs the loop a little: what has not happened by then is not coming.
  void settle() {
    w.run_until([] { return false; }, 30);
  }
  std::string upstream_bytes() {
    up.pump();
    std::string all;
    for (auto& c : up.conns) all += c.got;
    return all;
  }
};

std::string chunk(const std::string& data) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

}  // namespace

TEST_CASE("git guard: a repository no rule lists is refused before anything is dialed") {
  Git g;
  g.client.send("GET " + g.url("/org/other.git/info/refs?service=git-upload-pack") + " HTTP/1.1\r\nHost: x\r\n\r\n");
  g.wait_client("X-Sluice-Reason: git-denied\r\n");
  CHECK(g.client.got.rfind("HTTP/1.1 403 Forbidden\r\n", 0) == 0);
  CHECK(g.client.has("sluice: repository org/other is not allowed; allowed: org/repo"));
  g.settle();
  g.up.pump();
  CHECK(g.up.conns.empty());
  CHECK(
      g.w.logged("\"error\":\"git-denied\"", "\"git\":{\"service\":\"info-refs-upload-pack\",\"repo\":\"org/other\""));
}

TEST_CASE("git guard: a refused chunked push gets ng lines, nothing goes upstream, the connection goes on") {
  Git g;
  const std::string cmds = commands("refs/heads/main");
  // Expect: 100-continue is answered by sluice; the commands arrive in two pieces.
  g.client.send(
      g.post_head("/org/repo.git/git-receive-pack", "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n"));
  g.wait_client("HTTP/1.1 100 Continue\r\n\r\n");
  g.client.send(chunk(cmds.substr(0, 30)));
  g.settle();
  CHECK(g.client.got.find("200 OK") == std::string::npos);  // not judged yet
  g.client.send(chunk(cmds.substr(30) + "PACK-bytes-that-follow"));
  g.wait_client("X-Sluice-Reason: git-push-refused\r\n");
  CHECK(g.client.has("Content-Type: application/x-git-receive-pack-result\r\n"));
  CHECK(g.client.has("unpack ok\n"));
  CHECK(g.client.has(
      "ng refs/heads/main sluice: pushes to refs/heads/main are not allowed; allowed: refs/heads/agent/*\n"));
  // The rest of the body is read and dropped; then the next request is served.
  g.client.send(chunk(std::string(200000, 'p')) + "0\r\n\r\n");
  g.client.send("GET " + g.url("/org/repo.git/info/refs?service=git-upload-pack") + " HTTP/1.1\r\nHost: x\r\n\r\n");
  g.w.run_until([&] { return g.upstream_bytes().find("GET /org/repo.git/info/refs") != std::string::npos; });
  const std::string seen = g.upstream_bytes();
  CHECK(seen.rfind("GET /org/repo.git/info/refs?service=git-upload-pack HTTP/1.1\r\n", 0) == 0);
  CHECK(seen.find("receive-pack") == std::string::npos);  // nothing of the push
  CHECK_FALSE(g.client.eof);
  CHECK(g.w.logged("\"error\":\"git-push-refused\"", "\"ref\":\"refs/heads/main\""));
}

TEST_CASE("git guard: an allowed push goes upstream as it came, held bytes first") {
  Git g;
  const std::string body = commands("refs/heads/agent/x") + "PACK" + std::string(100000, 'z');
  g.client.send(g.post_head("/org/repo.git/git-receive-pack",
                            "Content-Length: " + std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n"));
  g.wait_client("HTTP/1.1 100 Continue\r\n\r\n");
  g.client.send(body.substr(0, 20));
  g.settle();
  CHECK(g.upstream_bytes().empty());  // held: the commands are not complete
  g.client.send(body.substr(20));
  g.w.run_until([&] { return g.upstream_bytes().size() >= body.size(); });
  const std::string seen = g.upstream_bytes();
  const size_t end = seen.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  CHECK(seen.rfind("POST /org/repo.git/git-receive-pack HTTP/1.1\r\n", 0) == 0);
  CHECK(seen.find("Content-Length: " + std::to_string(body.size()) + "\r\n") < end);
  CHECK(seen.find("Expect") == std::string::npos);  // sluice answered the 100 itself
  CHECK(seen.substr(end + 4) == body);
  g.up.conns[0].send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  g.wait_client("ok");
  CHECK(g.w.logged("\"verdict\":\"allow\"}]", "\"status\":200"));
}

TEST_CASE("git guard: an unreadable or oversized command section is refused, never forwarded") {
  SUBCASE("garbage") {
    Git g;
    g.client.send(g.post_head("/org/repo.git/git-receive-pack", "Content-Length: 9\r\n") + "zzzzzzzzz");
    g.wait_client("X-Sluice-Reason: git-push-unreadable\r\n");
    CHECK(g.client.has("pkt-line length is not 4 hex digits"));
    g.settle();
    CHECK(g.upstream_bytes().empty());
  }
  SUBCASE("a body that ends inside the commands") {
    Git g;
    const std::string cut = commands("refs/heads/agent/x").substr(0, 40);
    g.client.send(g.post_head("/org/repo.git/git-receive-pack", "Content-Length: 40\r\n") + cut);
    g.wait_client("X-Sluice-Reason: git-push-unreadable\r\n");
    g.settle();
    CHECK(g.upstream_bytes().empty());
  }
  SUBCASE("more than 1 MiB of commands") {
    Git g;
    g.client.send(g.post_head("/org/repo.git/git-receive-pack", "Transfer-Encoding: chunked\r\n"));
    std::string many;
    for (int i = 0; many.size() < 1100 * 1024; ++i)
      many += rules::pkt_line(kOld + " " + kNew + " refs/heads/agent/b" + std::to_string(i) + "\n");
    for (size_t at = 0; at < many.size() && !g.client.has("git-push-unreadable"); at += 65536) {
      g.client.send(chunk(many.substr(at, 65536)));
      g.settle();
    }
    g.wait_client("X-Sluice-Reason: git-push-unreadable\r\n");
    CHECK(g.client.has("larger than 1048576 bytes"));
    CHECK(g.upstream_bytes().empty());
  }
}
