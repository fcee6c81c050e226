// The git guard (rules/git_guard.hpp): the `git:` key and its errors, classification of
// smart-HTTP requests, access and push judgments, and the exact bytes of the refusal git shows.
#include <doctest/doctest.h>

#include <string>

#include "rules/config.hpp"
#include "rules/git_guard.hpp"
#include "rules/host.hpp"

using sluice::rules::canonicalize_host;
using sluice::rules::classify_git_request;
using sluice::rules::GitAccess;
using sluice::rules::GitHeaders;
using sluice::rules::GitRequest;
using sluice::rules::GitRule;
using sluice::rules::GitService;
using sluice::rules::judge_git_access;
using sluice::rules::judge_push;
using sluice::rules::load_config_text;
using sluice::rules::parse_receive_pack;
using sluice::rules::pkt_line;
using sluice::rules::push_refusal_response;
using sluice::rules::ReceivePackParser;
using sluice::rules::ReceivePackRequest;
using sluice::rules::RefCommand;

namespace {

const char* kGitGuardConfig = R"(policies:
  default:
    allow: [github.test]
    git:
      - host: github.test
        repos: [myorg/agent-sandbox, "myorg/tools-*.git"]
        push: ["refs/heads/agent/*", "refs/heads/ci/**"]
      - host: github.test
        repos: [myorg/readonly]
        fetch: true
      - host: mirror.test
        repos: ["*/*"]
        fetch: false
        push: ["refs/**"]
        tags: true
        delete: true
        push_options: true
        push_cert: true
)";

std::vector<GitRule> git_guard_rules() {
  auto load = load_config_text(kGitGuardConfig, "g.yaml", true);
  std::string errors;
  for (const auto& e : load.errors) errors += e.to_string() + "\n";
  INFO(errors);
  REQUIRE(load.config);
  return load.config->policy("default")->git;
}

GitAccess git_access(const std::vector<GitRule>& rules, const char* host, const char* method, const char* target,
                     const GitHeaders& headers = {}) {
  auto h = canonicalize_host(host);
  REQUIRE(h.ok());
  return judge_git_access(rules, h.value(), 443, classify_git_request(method, target, headers));
}

const std::string kGitZero(40, '0');
const std::string kGitOld(40, '1');
const std::string kGitNew(40, '2');

RefCommand git_cmd(const std::string& old_oid, const std::string& new_oid, const char* ref) {
  return RefCommand{old_oid, new_oid, ref};
}

ReceivePackRequest git_push(std::vector<RefCommand> cmds, std::vector<std::string> caps = {"report-status"}) {
  ReceivePackRequest r;
  r.commands = std::move(cmds);
  r.capabilities = std::move(caps);
  return r;
}

}  // namespace

TEST_CASE("git: key loads with defaults and normalised repository globs") {
  auto rules = git_guard_rules();
  REQUIRE(rules.size() == 3);
  CHECK(rules[0].host_source == "github.test");
  CHECK(rules[0].repos == std::vector<std::string>{"myorg/agent-sandbox", "myorg/tools-*"});
  CHECK(rules[0].push == std::vector<std::string>{"refs/heads/agent/*", "refs/heads/ci/**"});
  CHECK(rules[0].fetch);
  CHECK_FALSE(rules[0].tags);
  CHECK_FALSE(rules[0].deletes);
  CHECK_FALSE(rules[0].push_options);
  CHECK_FALSE(rules[0].push_cert);
  CHECK(rules[1].push.empty());
  CHECK_FALSE(rules[2].fetch);
  CHECK(rules[2].tags);
  CHECK(rules[2].deletes);
  CHECK(rules[2].push_options);
  CHECK(rules[2].push_cert);
}

TEST_CASE("git: key errors carry line:column") {
  struct Row {
    const char* git;  // the policy's git: value, indented under it
    int line, column;
    const char* message;
  };
  const Row rows[] = {
      {"git: github.test", 3, 10, "policy 'p' git must be a list"},
      {"git: [{repos: [a/b]}]", 3, 11, "needs host: PATTERN"},
      {"git: [{host: github.test}]", 3, 11, "needs repos:"},
      {"git: [{host: github.test, repos: []}]", 3, 38, "repos is empty"},
      {"git: [{host: github.test, repos: [justname]}]", 3, 39, "owner/name"},
      {"git: [{host: github.test, repos: [/a/b]}]", 3, 39, "without leading"},
      {"git: [{host: github.test, repos: [a/b], push: [main]}]", 3, 52, "under refs/"},
      {"git: [{host: github.test, repos: [a/b], push: [\"refs/heads/a b\"]}]", 3, 52, "space"},
      {"git: [{host: github.test, repos: [a/b], push: [refs/heads/..]}]", 3, 52, "'..'"},
      {"git: [{host: \"*bad\", repos: [a/b]}]", 3, 18, "bad pattern"},
      {"git: [{host: github.test, repos: [a/b], tags: yes}]", 3, 51, "tags must be true or false"},
      {"git: [{host: github.test, repos: [a/b], pushes: []}]", 3, 45, "unknown key 'pushes'"},
  };
  for (const auto& r : rows) {
    const std::string text = std::string("policies:\n  p:\n    ") + r.git + "\n";
    CAPTURE(text);
    auto load = load_config_text(text, "g.yaml", true);
    REQUIRE_FALSE(load.errors.empty());
    CHECK(load.errors[0].line == r.line);
    CHECK(load.errors[0].column == r.column);
    CHECK(load.errors[0].message.find(r.message) != std::string::npos);
    CAPTURE(load.errors[0].to_string());
  }
}

TEST_CASE("git requests are classified from method, path, query and headers") {
  struct Row {
    const char* method;
    const char* target;
    GitService service;
    const char* repo;
  };
  const Row rows[] = {
      {"GET", "/myorg/repo.git/info/refs?service=git-upload-pack", GitService::InfoRefsUploadPack, "myorg/repo"},
      {"GET", "/myorg/repo/info/refs?service=git-receive-pack", GitService::InfoRefsReceivePack, "myorg/repo"},
      {"HEAD", "/myorg/repo/info/refs?service=git-upload-pack", GitService::InfoRefsUploadPack, "myorg/repo"},
      {"GET", "/myorg/repo.git/info/refs?x=1&service=git-upload-pack", GitService::InfoRefsUploadPack, "myorg/repo"},
      {"POST", "/myorg/repo.git/git-upload-pack", GitService::UploadPack, "myorg/repo"},
      {"POST", "/myorg/repo.git/git-receive-pack", GitService::ReceivePack, "myorg/repo"},
      {"POST", "/group/sub/repo.git/git-receive-pack", GitService::ReceivePack, "group/sub/repo"},
      {"POST", "/myorg/x/../repo.git/git-receive-pac%6b", GitService::ReceivePack, "myorg/repo"},
      {"GET", "/myorg/repo.git/info/refs", GitService::DumbInfoRefs, "myorg/repo"},
      {"GET", "/myorg/repo", GitService::None, ""},
      {"GET", "/myorg/repo/blob/main/info/refs.md", GitService::None, ""},
      {"POST", "/api/graphql", GitService::None, ""},
      // Refused on a guarded host: the server might read these as git.
      {"GET", "/myorg/repo.git/info/refs?service=git-upload-pack&service=git-receive-pack", GitService::Unreadable, ""},
      {"GET", "/myorg/repo.git/info/refs?service=git%2Dreceive-pack", GitService::Unreadable, ""},
      {"GET", "/myorg/repo.git/info/refs?service=git-frobnicate", GitService::Unreadable, ""},
      {"GET", "/myorg/repo.git/info/refs?SERVICE=git-receive-pack", GitService::Unreadable, ""},
      {"GET", "/myorg/repo.git/git-receive-pack", GitService::Unreadable, ""},
      {"POST", "/myorg/repo.git/info/refs?service=git-receive-pack", GitService::Unreadable, ""},
      {"POST", "/myorg/repo.git/GIT-RECEIVE-PACK", GitService::Unreadable, ""},
      {"POST", "/myorg//repo.git/git-receive-pack", GitService::Unreadable, ""},
      {"POST", "/myorg/repo%2Fx.git/git-receive-pack", GitService::Unreadable, ""},
      {"POST", "/git-receive-pack", GitService::Unreadable, ""},
      {"POST", "/.git/git-receive-pack", GitService::Unreadable, ""},
  };
  for (const auto& r : rows) {
    const std::string where = std::string(r.method) + " " + r.target;
    CAPTURE(where);
    GitRequest g = classify_git_request(r.method, r.target, {});
    CHECK(g.service == r.service);
    if (r.service == GitService::Unreadable)
      CHECK_FALSE(g.error.empty());
    else
      CHECK(g.repo == r.repo);
  }
}

TEST_CASE("git requests: the Git-Protocol version and a body encoding are recorded") {
  GitHeaders v2 = {{"git-protocol", "version=2"}, {"Content-Type", "application/x-git-upload-pack-request"}};
  auto g = classify_git_request("POST", "/o/r.git/git-upload-pack", v2);
  CHECK(g.service == GitService::UploadPack);
  CHECK(g.protocol_version == 2);
  CHECK_FALSE(g.encoded_body);
  g = classify_git_request("GET", "/o/r/info/refs?service=git-receive-pack",
                           {{"Git-Protocol", "object-format=sha256:version=1"}});
  CHECK(g.protocol_version == 1);
  CHECK(classify_git_request("POST", "/o/r/git-receive-pack", {}).protocol_version == 0);
  CHECK(classify_git_request("POST", "/o/r/git-receive-pack", {{"Content-Encoding", "gzip"}}).encoded_body);
  CHECK_FALSE(classify_git_request("POST", "/o/r/git-receive-pack", {{"Content-Encoding", "identity"}}).encoded_body);
}

TEST_CASE("git access: listed repositories, fetch and push allowed or not") {
  auto rules = git_guard_rules();
  struct Row {
    const char* host;
    const char* method;
    const char* target;
    GitAccess::Decision decision;
    const char* reason;  // a part of it, for Deny
  };
  using D = GitAccess::Decision;
  const Row rows[] = {
      {"github.test", "GET", "/myorg/agent-sandbox.git/info/refs?service=git-upload-pack", D::Allow, ""},
      {"github.test", "GET", "/MyOrg/Agent-Sandbox/info/refs?service=git-receive-pack", D::Allow, ""},
      {"github.test", "POST", "/myorg/tools-lint.git/git-receive-pack", D::Allow, ""},
      {"github.test", "POST", "/myorg/tools-lint/sub/git-upload-pack", D::Deny, "repository myorg/tools-lint/sub"},
      {"github.test", "POST", "/myorg/readonly.git/git-upload-pack", D::Allow, ""},
      {"github.test", "GET", "/myorg/readonly.git/info/refs?service=git-receive-pack", D::Deny,
       "sluice: pushing to myorg/readonly is not allowed"},
      {"github.test", "POST", "/myorg/readonly.git/git-receive-pack", D::Deny, "pushing to myorg/readonly"},
      {"github.test", "GET", "/other/repo.git/info/refs?service=git-upload-pack", D::Deny,
       "sluice: repository other/repo is not allowed; allowed: myorg/agent-sandbox, myorg/tools-*, myorg/readonly"},
      {"github.test", "GET", "/myorg/agent-sandbox.git/info/refs", D::Deny, "dumb-HTTP"},
      {"github.test", "POST", "/myorg//agent-sandbox.git/git-receive-pack", D::Deny, "cannot be read safely"},
      {"github.test", "GET", "/myorg/agent-sandbox", D::NotGuarded, ""},
      {"other.test", "POST", "/myorg/secret.git/git-receive-pack", D::NotGuarded, ""},
      {"mirror.test", "GET", "/a/b.git/info/refs?service=git-upload-pack", D::Deny, "fetching a/b is not allowed"},
      {"mirror.test", "POST", "/a/b.git/git-upload-pack", D::Deny, "fetching a/b"},
      {"mirror.test", "POST", "/a/b.git/git-receive-pack", D::Allow, ""},
  };
  for (const auto& r : rows) {
    const std::string where = std::string(r.host) + r.target;
    CAPTURE(where);
    auto a = git_access(rules, r.host, r.method, r.target);
    CHECK(a.decision == r.decision);
    if (r.decision == D::Deny) CHECK(a.reason.find(r.reason) != std::string::npos);
    if (r.decision == D::Deny) CHECK(a.reason.rfind("sluice: ", 0) == 0);
    if (r.decision == D::Allow) CHECK(a.rule != nullptr);
  }
  auto push = git_access(rules, "github.test", "POST", "/myorg/agent-sandbox.git/git-receive-pack");
  CHECK(push.needs_push_check);
  CHECK(push.rule == &rules[0]);
  CHECK_FALSE(git_access(rules, "github.test", "POST", "/myorg/agent-sandbox.git/git-upload-pack").needs_push_check);
  auto gz = git_access(rules, "github.test", "POST", "/myorg/agent-sandbox.git/git-receive-pack",
                       {{"Content-Encoding", "gzip"}});
  CHECK(gz.decision == GitAccess::Decision::Deny);
  CHECK(gz.reason.find("compressed") != std::string::npos);
}

TEST_CASE("git globs: * within a segment, ** across") {
  using sluice::rules::git_glob_match;
  CHECK(git_glob_match("refs/heads/agent/*", "refs/heads/agent/x"));
  CHECK_FALSE(git_glob_match("refs/heads/agent/*", "refs/heads/agent/x/y"));
  CHECK_FALSE(git_glob_match("refs/heads/agent/*", "refs/heads/agent"));
  CHECK(git_glob_match("refs/heads/agent/**", "refs/heads/agent/x/y"));
  CHECK(git_glob_match("refs/heads/*-wip", "refs/heads/a-wip"));
  CHECK_FALSE(git_glob_match("refs/heads/*-wip", "refs/heads/a/b-wip"));
  CHECK(git_glob_match("refs/heads/main", "refs/heads/main"));
  CHECK_FALSE(git_glob_match("refs/heads/main", "refs/heads/main2"));
  CHECK(git_glob_match("*/*", "a/b"));
  CHECK_FALSE(git_glob_match("*/*", "a/b/c"));
  CHECK(git_glob_match("**", "a/b/c"));
  CHECK(git_glob_match("a*b*c", "aXbYc"));
  CHECK_FALSE(git_glob_match("a*b*c", "aXbY"));
}

TEST_CASE("git push judgments: each command, and the push as a whole") {
  auto rules = git_guard_rules();
  const GitRule& agent = rules[0];
  struct Row {
    RefCommand cmd;
    const char* reason;  // "" allowed
  };
  const Row rows[] = {
      {git_cmd(kGitOld, kGitNew, "refs/heads/agent/x"), ""},
      {git_cmd(kGitZero, kGitNew, "refs/heads/agent/new"), ""},
      {git_cmd(kGitOld, kGitNew, "refs/heads/ci/a/b"), ""},
      {git_cmd(kGitOld, kGitNew, "refs/heads/main"),
       "sluice: pushes to refs/heads/main are not allowed; allowed: refs/heads/agent/*, refs/heads/ci/**"},
      {git_cmd(kGitOld, kGitNew, "refs/heads/agent/x/y"), "sluice: pushes to refs/heads/agent/x/y are not allowed"},
      {git_cmd(kGitOld, kGitZero, "refs/heads/agent/x"), "sluice: deleting refs/heads/agent/x is not allowed"},
      {git_cmd(kGitZero, kGitNew, "refs/tags/v1"), "sluice: creating tag refs/tags/v1 is not allowed"},
      {git_cmd(kGitOld, kGitNew, "refs/tags/v1"), "sluice: updating tag refs/tags/v1 is not allowed"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.cmd.ref);
    auto j = judge_push(agent, git_push({r.cmd}));
    REQUIRE(j.refs.size() == 1);
    CHECK(j.allowed == (*r.reason == '\0'));
    CHECK(j.refs[0].allowed == j.allowed);
    CHECK(j.refs[0].reason.find(r.reason) == 0);
    CHECK(j.reason == j.refs[0].reason);
  }
  // One refused command refuses the whole push; the others say why they were held back.
  auto j = judge_push(
      agent, git_push({git_cmd(kGitOld, kGitNew, "refs/heads/agent/x"), git_cmd(kGitOld, kGitNew, "refs/heads/main")}));
  CHECK_FALSE(j.allowed);
  CHECK_FALSE(j.refs[0].allowed);
  CHECK(j.refs[0].reason == "sluice: not pushed: refs/heads/main in the same push was refused");
  CHECK(j.reason.find("refs/heads/main are not allowed") != std::string::npos);
  // Push options and certificates refuse every command unless the rule allows them.
  auto opts = git_push({git_cmd(kGitOld, kGitNew, "refs/heads/agent/x")}, {"report-status", "push-options"});
  opts.push_options = {"ci.skip"};
  auto jo = judge_push(agent, opts);
  CHECK_FALSE(jo.allowed);
  CHECK(jo.refs[0].reason == "sluice: push options are not allowed");
  auto cert = git_push({git_cmd(kGitOld, kGitNew, "refs/heads/agent/x")});
  cert.push_cert = true;
  CHECK(judge_push(agent, cert).refs[0].reason == "sluice: signed pushes (push certificates) are not allowed");
  // The permissive rule allows all of them.
  const GitRule& mirror = rules[2];
  auto all = git_push({git_cmd(kGitOld, kGitZero, "refs/heads/x"), git_cmd(kGitZero, kGitNew, "refs/tags/v2")});
  all.push_options = {"o"};
  all.push_cert = true;
  CHECK(judge_push(mirror, all).allowed);
  // An empty push updates nothing.
  CHECK(judge_push(agent, git_push({})).allowed);
}

TEST_CASE("the refusal git shows: exact bytes, plain and in side-band-64k") {
  auto rules = git_guard_rules();
  auto req = git_push({git_cmd(kGitOld, kGitNew, "refs/heads/main")});
  auto j = judge_push(rules[0], req);
  const std::string report =
      "000eunpack ok\n"
      "0078ng refs/heads/main sluice: pushes to refs/heads/main are not allowed; allowed: refs/heads/agent/*, "
      "refs/heads/ci/**\n"
      "0000";
  auto plain = push_refusal_response(req, j);
  CHECK(plain.status == 200);
  CHECK(plain.content_type == "application/x-git-receive-pack-result");
  CHECK(plain.body == report);

  req.capabilities = {"report-status", "side-band-64k", "quiet"};
  auto band = push_refusal_response(req, j);
  CHECK(band.status == 200);
  // One channel-1 packet holding the whole report (4-digit length, band byte 0x01), then a flush.
  CHECK(band.body == "008f\x01" + report + "0000");
  CHECK(band.body.size() == 0x8f + 4);

  // report-status-v2 reads the same ng lines.
  req.capabilities = {"report-status-v2", "side-band-64k"};
  CHECK(push_refusal_response(req, j).body == band.body);

  // Plain side-band is never used by receive-pack: no wrapping.
  req.capabilities = {"report-status", "side-band"};
  CHECK(push_refusal_response(req, j).body == report);

  // No report-status: git could not show the reasons; a plain 403 says it instead.
  req.capabilities = {};
  auto bare = push_refusal_response(req, j);
  CHECK(bare.status == 403);
  CHECK(bare.content_type == "text/plain");
  CHECK(bare.body == j.reason + "\n");
}

TEST_CASE("the refusal for many refs is cut into side-band packets of at most 65520 bytes") {
  auto rules = git_guard_rules();
  std::vector<RefCommand> cmds;
  for (int i = 0; i < 1000; ++i)
    cmds.push_back(git_cmd(kGitOld, kGitNew, ("refs/heads/feature-" + std::to_string(i)).c_str()));
  auto req = git_push(cmds, {"report-status", "side-band-64k"});
  auto j = judge_push(rules[0], req);
  auto res = push_refusal_response(req, j);
  // Unwrap channel 1 and parse the report inside.
  std::string inner;
  size_t at = 0;
  int packets = 0;
  for (;;) {
    auto p = sluice::rules::parse_pkt_line(std::string_view(res.body).substr(at));
    REQUIRE(p.status == sluice::rules::PktParse::Status::Packet);
    at += p.size;
    if (p.kind == sluice::rules::PktKind::Flush) break;
    CHECK(p.size <= sluice::rules::kPktLineMax);
    REQUIRE(!p.payload.empty());
    CHECK(p.payload[0] == '\x01');
    inner += p.payload.substr(1);
    ++packets;
  }
  CHECK(at == res.body.size());
  CHECK(packets >= 2);
  int ng = 0;
  size_t pos = 0;
  for (;;) {
    auto p = sluice::rules::parse_pkt_line(std::string_view(inner).substr(pos));
    REQUIRE(p.status == sluice::rules::PktParse::Status::Packet);
    pos += p.size;
    if (p.kind == sluice::rules::PktKind::Flush) break;
    if (p.payload.substr(0, 3) == "ng ") ++ng;
  }
  CHECK(ng == 1000);
  CHECK(pos == inner.size());
}

TEST_CASE("a parsed push body goes through the guard end to end") {
  auto rules = git_guard_rules();
  const std::string body = pkt_line(kGitOld + " " + kGitNew + " refs/heads/agent/x" + std::string(1, '\0') +
                                    "report-status side-band-64k\n") +
                           pkt_line(kGitOld + " " + kGitNew + " refs/heads/main\n") + "0000PACK";
  auto parsed = parse_receive_pack(body);
  REQUIRE(parsed.state == ReceivePackParser::State::Done);
  auto access = git_access(rules, "github.test", "POST", "/myorg/agent-sandbox.git/git-receive-pack");
  REQUIRE(access.decision == GitAccess::Decision::Allow);
  auto j = judge_push(*access.rule, parsed.request);
  CHECK_FALSE(j.allowed);
  auto res = push_refusal_response(parsed.request, j);
  CHECK(res.body.find("ng refs/heads/main sluice: pushes to refs/heads/main are not allowed") != std::string::npos);
  CHECK(res.body.find("ng refs/heads/agent/x sluice: not pushed") != std::string::npos);
}
