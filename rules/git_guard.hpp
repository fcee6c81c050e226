// The git guard (issue 15): per-policy `git:` rules for smart-HTTP git, judged on requests that
// sluice sees (plain HTTP, or inside inspected TLS). Pure: no sockets; the session classifies a
// request, judges access, and for a push reads the body with rules/pkt_line.hpp before judging it.
//
//   git:
//     - host: github.com
//       repos: [myorg/agent-sandbox, "myorg/tools-*"]
//       push: ["refs/heads/agent/*"]   # ref globs a push may update; empty: no pushes
//       fetch: true                    # clone/fetch (upload-pack); default true
//       tags: false                    # any command under refs/tags/; default false
//       delete: false                  # a command whose new id is all zeros; default false
//       push_options: false            # `git push -o ...`; default false
//       push_cert: false               # signed pushes (`git push --signed`); default false
//
// Globs: "*" matches within one path segment (no "/"), "**" across segments. Repositories are
// "owner/name" (any depth, GitLab groups), ".git" dropped, compared case-insensitively (GitHub
// and most forges treat names so); refs are compared exactly.
//
// What the guard sees, and what it cannot:
// - It sees the service (info/refs advertisement, upload-pack, receive-pack), the repository
//   path, the Git-Protocol version, and for a push every ref command (old id, new id, ref), the
//   capabilities, push options and whether the push is signed. Those decide: repositories not
//   listed are refused, pushes only to `push` refs, no deletes, tags, options or certificates
//   unless allowed. A receive-pack body it cannot read (malformed, truncated, compressed with
//   Content-Encoding) is refused, never forwarded.
// - It cannot see whether an update is a fast-forward: that needs the ref's current value and
//   the commit graph on the server (the old id in a command is what the client claims; the pack
//   need not contain the old commit). A force-push to an allowed ref (e.g. refs/heads/agent/x)
//   goes through; protecting branch history is the server's job (branch protection rules,
//   receive.denyNonFastForwards). Nor does it read the pack's content (a secret committed into
//   an allowed branch is pushed), or what a fetch negotiates (upload-pack bodies are not read:
//   a listed repository with fetch: true can be fetched whole).
// - Dumb-HTTP git (info/refs without ?service=) is refused; other dumb paths (objects/, HEAD) are
//   not recognised as git and meet the rest of the policy. Protocol v2 has no push; v2 fetches
//   are upload-pack requests and judged as such. Requests that path normalisation refuses
//   (rules/path.hpp) are refused on a guarded host, since the server might read them as git.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rules/host.hpp"
#include "rules/host_set.hpp"
#include "rules/pkt_line.hpp"
#include "rules/result.hpp"

namespace sluice::rules {

struct GitRule {
  std::shared_ptr<const HostSet> host;  // one pattern (a set, for its matcher)
  std::string host_source;              // as written
  std::vector<std::string> repos;       // owner/name globs, lower case, ".git" dropped
  std::vector<std::string> push;        // ref globs ("refs/heads/agent/*")
  bool fetch = true;
  bool tags = false;
  bool deletes = false;
  bool push_options = false;
  bool push_cert = false;

  bool matches_host(const CanonicalHost& h, uint16_t port) const { return host->match(h, port) != nullptr; }
  bool matches_repo(std::string_view repo) const;  // repo as classify_git_request gives it
  bool allows_ref(std::string_view ref) const;
};

// "" when the glob is acceptable, else why not. Repos: "owner/name" globs (".git" may end them);
// refs: full ref globs under "refs/".
std::string git_repo_glob_problem(std::string_view glob);
std::string git_ref_glob_problem(std::string_view glob);
// A rule from its parts; the globs must have passed the checks above (the host pattern is
// checked here).
Result<GitRule> make_git_rule(std::string_view host, std::vector<std::string> repos, std::vector<std::string> push);

// "*" within a segment, "**" across; everything else literal.
bool git_glob_match(std::string_view glob, std::string_view text);

enum class GitService : uint8_t {
  None,                 // not a git request: the guard has nothing to say
  InfoRefsUploadPack,   // GET .../info/refs?service=git-upload-pack (clone, fetch)
  InfoRefsReceivePack,  // GET .../info/refs?service=git-receive-pack (push)
  UploadPack,           // POST .../git-upload-pack
  ReceivePack,          // POST .../git-receive-pack: the body holds the ref commands
  DumbInfoRefs,         // GET .../info/refs without a service: dumb HTTP, refused
  Unreadable,           // looks like git, or cannot be read safely: refused on a guarded host
};
const char* to_string(GitService s);

struct GitRequest {
  GitService service = GitService::None;
  std::string repo;           // "owner/name", ".git" dropped; empty for None
  int protocol_version = 0;   // from Git-Protocol: version=N (0 when absent)
  bool encoded_body = false;  // a Content-Encoding other than identity
  std::string error;          // Unreadable: why
};

using GitHeaders = std::vector<std::pair<std::string, std::string>>;  // = HeaderFields
// `target` is the origin-form path and query as sent.
GitRequest classify_git_request(std::string_view method, std::string_view target, const GitHeaders& headers);

// The first rule whose host matches, or nullptr: a host no rule names is not guarded.
const GitRule* match_git_host(const std::vector<GitRule>& rules, const CanonicalHost& h, uint16_t port);

struct GitAccess {
  enum class Decision : uint8_t { NotGuarded, Allow, Deny };
  Decision decision = Decision::NotGuarded;
  const GitRule* rule = nullptr;  // Allow: the rule that decided (judge_push takes it)
  std::string reason;             // Deny: one line for the client, starting "sluice: "
  bool needs_push_check = false;  // Allow of a receive-pack: read the body, then judge_push
};
// Whether the repository is listed for this host, and fetch/push allowed at all. An allowed
// request still meets the rest of the policy (the host must be allowed as usual).
GitAccess judge_git_access(const std::vector<GitRule>& rules, const CanonicalHost& h, uint16_t port,
                           const GitRequest& request);

struct RefVerdict {
  std::string ref;
  bool allowed = false;
  std::string reason;  // why not (also for an allowed command held back by another's refusal)
};
struct PushJudgment {
  bool allowed = true;           // every command allowed: forward the request
  std::vector<RefVerdict> refs;  // one per command, in order
  std::string reason;            // the first refusal, for the log
};
PushJudgment judge_push(const GitRule& rule, const ReceivePackRequest& request);

struct GitResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};
constexpr std::string_view kReceivePackResultType = "application/x-git-receive-pack-result";
// The answer git shows for a refused push: 200 application/x-git-receive-pack-result with
// "unpack ok" and one "ng <ref> <reason>" per command, then a flush, in side-band-64k channel 1
// (plus a final flush) when the client asked for it. A client that asked for no report-status
// could not show the reasons: it gets 403 text/plain with the first reason instead.
GitResponse push_refusal_response(const ReceivePackRequest& request, const PushJudgment& judgment);

// The pkt-line of a payload (at most kPktLineMax - 4 bytes).
std::string pkt_line(std::string_view payload);

}  // namespace sluice::rules
