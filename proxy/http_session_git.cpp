// HTTP session, the git guard (docs/configuration.md#the-git-guard-git, docs/security.md): a
// smart-HTTP git request to a host a `git:` rule names is classified and judged before it is
// dialed (repository listed? fetch or push allowed?); a push (POST .../git-receive-pack) is
// held, head and body, until its command section is read (rules/pkt_line.hpp) and every ref
// command judged. A refused push gets git's own answer (`ng` lines) and nothing of it goes
// upstream; an allowed one goes out as it came, the held bytes first, then the rest streamed.
//
// After a refusal the rest of the push's body (its pack) is read and dropped, so that git, which
// sends the whole body before it reads the answer, sees the reasons instead of a broken pipe;
// the connection then stays open for the next request. More than kGitDiscardMax bytes of it
// close the connection instead.
#include <algorithm>
#include <cctype>

#include "proxy/decision_log.hpp"
#include "proxy/http_session.hpp"
#include "proxy/http_session_internal.hpp"
#include "proxy/json.hpp"

namespace sluice::proxy {

namespace {

// The largest command section (commands, push certificate, push options) read before judging.
constexpr size_t kGitCommandCap = 1024 * 1024;
// The most of a refused push's body that is read and dropped before the connection is closed.
constexpr uint64_t kGitDiscardMax = 256ull * 1024 * 1024;

bool git_header_is(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// The decision line's "git" object: service, repository, protocol, and for a push each ref
// command with its verdict. Object ids and ref names only; push option values are not logged.
std::string git_facts(const rules::GitRequest& r, const rules::ReceivePackRequest* push,
                      const rules::PushJudgment* judgment, std::string_view reason) {
  JsonLine o;
  o.str("service", rules::to_string(r.service));
  if (!r.repo.empty()) o.str("repo", r.repo);
  if (r.protocol_version != 0) o.num("protocol", r.protocol_version);
  if (push != nullptr) {
    std::string refs = "[";
    for (size_t i = 0; i < push->commands.size(); ++i) {
      const auto& cmd = push->commands[i];
      const rules::RefVerdict* v = judgment && i < judgment->refs.size() ? &judgment->refs[i] : nullptr;
      JsonLine x;
      x.str("ref", cmd.ref).str("old", cmd.old_oid).str("new", cmd.new_oid);
      x.str("verdict", v && v->allowed ? "allow" : "deny");
      if (v && !v->reason.empty()) x.str("reason", v->reason);
      refs += (i == 0 ? "" : ",") + x.done();
    }
    o.raw("refs", refs + "]");
    if (!push->push_options.empty()) o.num("push_options", static_cast<int64_t>(push->push_options.size()));
    if (push->push_cert) o.boolean("push_cert", true);
  }
  if (!reason.empty()) o.str("reason", reason);
  return o.done();
}

}  // namespace

// Before dialing: a git request to a guarded host for a repository no rule lists, or a fetch or
// push the rule does not allow, is refused here (403 git-denied, the reason in the body, which
// git prints as "remote: sluice: ..."). An allowed receive-pack is marked for the push check.
bool HttpSession::refuse_git_request() {
  git_ = {};
  const rules::Policy* policy = flow_.policy();
  if (policy == nullptr || policy->git.empty()) return false;
  HttpHead& h = request_parser_.head();
  rules::GitRequest request = rules::classify_git_request(h.method, url_.path, h.headers);
  rules::GitAccess access = rules::judge_git_access(policy->git, host_, port_, request);
  if (access.decision == rules::GitAccess::Decision::NotGuarded) return false;
  decision_->git = git_facts(request, nullptr, nullptr, access.reason);
  if (access.decision == rules::GitAccess::Decision::Deny) {
    reply_and_close(rules::Reason::GitDenied, access.reason);
    return true;
  }
  git_.rule = access.rule;
  git_.request = std::move(request);
  if (access.needs_push_check) {
    git_.push_check = true;
    // The upstream sees the request only once its commands are judged: sluice answers a
    // client that waits for "100 Continue" itself, and the upstream is not asked for one.
    const auto before = h.headers.size();
    std::erase_if(h.headers, [](const auto& kv) { return git_header_is(kv.first, "expect"); });
    git_.expect_continue = h.headers.size() != before;
  }
  return false;
}

void HttpSession::hold_push(std::string head) {
  git_.holding = true;
  git_.head = std::move(head);
  git_.parser = std::make_unique<rules::ReceivePackParser>(kGitCommandCap);
  if (git_.expect_continue) write(Side::Client, "HTTP/1.1 100 Continue\r\n\r\n", false);
}

void HttpSession::git_body(const char* data, size_t n) {
  if (git_.discarding) {
    git_.discarded += n;
    if (git_.discarded > kGitDiscardMax) close_now(Termination::Refused);
    return;
  }
  git_.held.append(data, n);
  const auto state = git_.parser->feed(std::string_view(data, n));
  if (state == rules::ReceivePackParser::State::Error) return refuse_unreadable_push(git_.parser->error());
  if (state == rules::ReceivePackParser::State::Done) judge_held_push();
}

void HttpSession::git_body_done() {
  if (git_.holding) {  // the body ended inside the command section
    git_.parser->finish();
    return refuse_unreadable_push(git_.parser->error());
  }
  // A refused push's body has ended: the exchange is over (its answer went out).
  git_ = {};
  exchange_.request_complete = true;
  exchange_.in_flight = false;
  if (state_ == State::Closing) return;
  if (exchange_.close_after || client_side_.eof || draining_) {
    if (cause_ == Termination::None) cause_ = Termination::Refused;
    return begin_linger();
  }
  // parse_client resumes the parser and reads the next request.
  state_ = State::ReadingHead;
  exchange_ = {};
  exchange_.response_started = true;
  arm(TimerKind::KeepAliveTimeout, static_cast<uint64_t>(config_->limits.keepalive_timeout_ms));
}

void HttpSession::judge_held_push() {
  const rules::ReceivePackRequest& push = git_.parser->request();
  const rules::PushJudgment judgment = rules::judge_push(*git_.rule, push);
  decision_->git = git_facts(git_.request, &push, &judgment, judgment.reason);
  if (!judgment.allowed) return refuse_push(rules::push_refusal_response(push, judgment));
  // Allowed: the held head and bytes go out as they came; the rest streams after them.
  git_.holding = false;
  git_.parser.reset();
  write(Side::Upstream, std::exchange(git_.head, {}));
  const std::string held = std::exchange(git_.held, {});
  request_body(held.data(), held.size());
}

// The push is refused the way git reports it (rules::push_refusal_response); the upstream,
// which has seen nothing of the request, is closed.
void HttpSession::refuse_push(const rules::GitResponse& answer) {
  git_.holding = false;
  git_.discarding = true;
  git_.head.clear();
  git_.held.clear();
  git_.parser.reset();
  close_upstream();
  decision_->error = rules::Reason::GitPushRefused;
  proxy::log_decision(worker_, client_info_, *decision_, Outcome{"status", answer.status, true});
  exchange_.response_started = true;
  std::string out = "HTTP/1.1 " + std::to_string(answer.status) + " " + status_text(answer.status) + "\r\n";
  out += "X-Sluice-Reason: ";
  out += rules::c_str(rules::Reason::GitPushRefused);
  out += "\r\nContent-Type: " + answer.content_type + "\r\nCache-Control: no-cache\r\n";
  out += "Content-Length: " + std::to_string(answer.body.size()) + "\r\n";
  out += exchange_.close_after ? "Connection: close\r\n\r\n" : "\r\n";
  out += answer.body;
  write(Side::Client, std::move(out), false);
  arm(TimerKind::ForwardTimeout, forward_limit_ms());
}

// Fail closed: a push body the guard cannot read the way receive-pack would is never forwarded.
void HttpSession::refuse_unreadable_push(const std::string& why) {
  const std::string reason = "sluice: the push cannot be checked, so it is refused: " + why;
  decision_->git = git_facts(git_.request, nullptr, nullptr, reason);
  git_.holding = false;
  git_.discarding = true;  // whatever of the body still arrives is dropped while the reply goes out
  git_.head.clear();
  git_.held.clear();
  git_.parser.reset();
  reply_and_close(rules::Reason::GitPushUnreadable, reason);
}

}  // namespace sluice::proxy
