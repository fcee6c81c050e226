// The git guard's judgments; rules/git_guard.hpp says what it sees and what it cannot.
#include "rules/git_guard.hpp"

#include <algorithm>

#include "rules/path.hpp"
#include "rules/pattern.hpp"

namespace sluice::rules {

namespace {

std::string git_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool git_iequal(std::string_view a, std::string_view b) { return a.size() == b.size() && git_lower(a) == git_lower(b); }

bool git_ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view git_drop_dot_git(std::string_view repo) {
  if (git_ends_with(repo, ".git") && repo.size() > 4) repo.remove_suffix(4);
  return repo;
}

std::string git_join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool git_glob_chars_ok(std::string_view glob) {
  for (unsigned char c : glob)
    if (c <= 0x20 || c == 0x7f) return false;
  return true;
}

// A path-like trailing part of the target (case-insensitive) that names a git endpoint.
struct GitEndpoint {
  std::string_view suffix;
  GitService service;
};
constexpr GitEndpoint kGitEndpoints[] = {
    {"/info/refs", GitService::DumbInfoRefs},
    {"/git-upload-pack", GitService::UploadPack},
    {"/git-receive-pack", GitService::ReceivePack},
};

GitRequest git_unreadable(std::string why) {
  GitRequest r;
  r.service = GitService::Unreadable;
  r.error = std::move(why);
  return r;
}

}  // namespace

bool git_glob_match(std::string_view glob, std::string_view text) {
  // reach[i]: the glob so far can match text[0, i).
  std::vector<char> reach(text.size() + 1, 0), next(text.size() + 1, 0);
  reach[0] = 1;
  size_t g = 0;
  while (g < glob.size()) {
    std::fill(next.begin(), next.end(), 0);
    if (glob[g] == '*') {
      const bool cross = g + 1 < glob.size() && glob[g + 1] == '*';
      g += cross ? 2 : 1;
      bool run = false;  // some earlier position reaches here through a run without a barrier
      for (size_t i = 0; i <= text.size(); ++i) {
        if (reach[i]) run = true;
        if (run) next[i] = 1;
        if (i < text.size() && !cross && text[i] == '/') run = false;
      }
    } else {
      for (size_t i = 0; i < text.size(); ++i)
        if (reach[i] && text[i] == glob[g]) next[i + 1] = 1;
      ++g;
    }
    reach.swap(next);
  }
  return reach[text.size()] != 0;
}

bool GitRule::matches_repo(std::string_view repo) const {
  const std::string lower = git_lower(repo);
  for (const auto& g : repos)
    if (git_glob_match(g, lower)) return true;
  return false;
}

bool GitRule::allows_ref(std::string_view ref) const {
  for (const auto& g : push)
    if (git_glob_match(g, ref)) return true;
  return false;
}

std::string git_repo_glob_problem(std::string_view glob) {
  if (glob.empty()) return "a repository glob is empty";
  if (!git_glob_chars_ok(glob)) return "a repository glob has a space or control byte";
  if (glob.front() == '/' || glob.back() == '/' || glob.find("//") != std::string_view::npos)
    return "a repository is owner/name, without leading, trailing or doubled '/'";
  if (glob.find('/') == std::string_view::npos) return "a repository is owner/name (e.g. myorg/agent-sandbox)";
  for (std::string_view bad : {"/./", "/../", "?", "#", "%", "\\"})
    if (glob.find(bad) != std::string_view::npos) return "a repository glob may not hold '" + std::string(bad) + "'";
  if (glob.substr(0, 2) == "./" || glob.substr(0, 3) == "../") return "a repository glob may not hold '.' segments";
  return "";
}

std::string git_ref_glob_problem(std::string_view glob) {
  if (glob.substr(0, 5) != "refs/" || glob.size() == 5) return "a ref glob is a full ref name under refs/";
  if (!git_glob_chars_ok(glob)) return "a ref glob has a space or control byte";
  for (std::string_view bad : {"..", "//", "@{", "~", "^", ":", "?", "[", "\\"})
    if (glob.find(bad) != std::string_view::npos) return "a ref glob may not hold '" + std::string(bad) + "'";
  return "";
}

Result<GitRule> make_git_rule(std::string_view host, std::vector<std::string> repos, std::vector<std::string> push) {
  auto pattern = parse_pattern(host);
  if (!pattern) return Err{pattern.error()};
  GitRule r;
  auto set = std::make_shared<HostSet>();
  set->add(std::move(pattern.value()));
  r.host = std::move(set);
  r.host_source = std::string(host);
  if (repos.empty()) return Err{"a git rule needs repos: [owner/name, ...]"};
  for (auto& g : repos) {
    if (auto why = git_repo_glob_problem(g); !why.empty()) return Err{why + ": '" + g + "'"};
    g = git_lower(git_drop_dot_git(g));
  }
  for (const auto& g : push)
    if (auto why = git_ref_glob_problem(g); !why.empty()) return Err{why + ": '" + g + "'"};
  r.repos = std::move(repos);
  r.push = std::move(push);
  return r;
}

const char* to_string(GitService s) {
  switch (s) {
    case GitService::None: return "none";
    case GitService::InfoRefsUploadPack: return "info-refs-upload-pack";
    case GitService::InfoRefsReceivePack: return "info-refs-receive-pack";
    case GitService::UploadPack: return "upload-pack";
    case GitService::ReceivePack: return "receive-pack";
    case GitService::DumbInfoRefs: return "dumb-info-refs";
    case GitService::Unreadable: return "unreadable";
  }
  return "unreadable";
}

GitRequest classify_git_request(std::string_view method, std::string_view target, const GitHeaders& headers) {
  auto norm = normalize_path(target);
  if (!norm) return git_unreadable("the request path cannot be read safely: " + norm.error());
  const std::string& full = norm.value();
  const size_t q = full.find('?');
  const std::string_view path = std::string_view(full).substr(0, q);
  const std::string_view query = q == std::string::npos ? std::string_view() : std::string_view(full).substr(q + 1);

  GitRequest r;
  const std::string lower_path = git_lower(path);
  for (const auto& e : kGitEndpoints) {
    if (!git_ends_with(lower_path, e.suffix)) continue;
    // A server may read "/INFO/REFS" as git; the guard does not guess: refused.
    if (!git_ends_with(path, e.suffix)) return git_unreadable("a git endpoint in unusual case");
    r.service = e.service;
    if (path.size() <= e.suffix.size()) return git_unreadable("no repository before " + std::string(e.suffix));
    std::string_view repo = path.substr(1, path.size() - e.suffix.size() - 1);
    repo = git_drop_dot_git(repo);
    if (repo.empty() || repo.back() == '/' || repo == ".git")
      return git_unreadable("no repository before " + std::string(e.suffix));
    r.repo = std::string(repo);
    break;
  }
  if (r.service == GitService::None) return r;

  if (r.service == GitService::DumbInfoRefs) {
    if (method != "GET" && method != "HEAD") return git_unreadable("info/refs takes GET, not " + std::string(method));
    if (query.find('%') != std::string_view::npos || query.find('+') != std::string_view::npos)
      return git_unreadable("an escaped info/refs query");
    int services = 0;
    for (size_t start = 0; start <= query.size() && !query.empty();) {
      size_t end = query.find('&', start);
      if (end == std::string_view::npos) end = query.size();
      const std::string_view param = query.substr(start, end - start);
      const std::string_view name = param.substr(0, param.find('='));
      if (git_iequal(name, "service")) {
        ++services;
        const std::string_view value = param.size() > name.size() ? param.substr(name.size() + 1) : "";
        if (name != "service" || param.size() == name.size()) return git_unreadable("a malformed service parameter");
        if (value == "git-upload-pack")
          r.service = GitService::InfoRefsUploadPack;
        else if (value == "git-receive-pack")
          r.service = GitService::InfoRefsReceivePack;
        else
          return git_unreadable("an unknown git service '" + std::string(value.substr(0, 40)) + "'");
      }
      start = end + 1;
    }
    if (services > 1) return git_unreadable("more than one service parameter");
  } else if (method != "POST") {
    return git_unreadable(std::string(to_string(r.service)) + " takes POST, not " + std::string(method.substr(0, 16)));
  }

  for (const auto& [name, value] : headers) {
    if (git_iequal(name, "Git-Protocol")) {
      std::string_view v = value;
      for (size_t start = 0; start <= v.size();) {
        size_t end = v.find(':', start);
        if (end == std::string_view::npos) end = v.size();
        const std::string_view item = v.substr(start, end - start);
        if (item.size() == 9 && item.substr(0, 8) == "version=" && item[8] >= '0' && item[8] <= '9')
          r.protocol_version = std::max(r.protocol_version, item[8] - '0');
        start = end + 1;
      }
    } else if (git_iequal(name, "Content-Encoding")) {
      if (!value.empty() && !git_iequal(value, "identity")) r.encoded_body = true;
    }
  }
  return r;
}

const GitRule* match_git_host(const std::vector<GitRule>& rules, const CanonicalHost& h, uint16_t port) {
  for (const auto& r : rules)
    if (r.matches_host(h, port)) return &r;
  return nullptr;
}

GitAccess judge_git_access(const std::vector<GitRule>& rules, const CanonicalHost& h, uint16_t port,
                           const GitRequest& request) {
  GitAccess out;
  if (request.service == GitService::None || match_git_host(rules, h, port) == nullptr) return out;
  out.decision = GitAccess::Decision::Deny;
  if (request.service == GitService::Unreadable) {
    out.reason = "sluice: git request refused: " + request.error;
    return out;
  }
  if (request.service == GitService::DumbInfoRefs) {
    out.reason = "sluice: dumb-HTTP git is not allowed (" + request.repo + ")";
    return out;
  }
  const GitRule* rule = nullptr;
  std::vector<std::string> listed;
  for (const auto& r : rules) {
    if (!r.matches_host(h, port)) continue;
    if (r.matches_repo(request.repo)) {
      rule = &r;
      break;
    }
    listed.insert(listed.end(), r.repos.begin(), r.repos.end());
  }
  if (rule == nullptr) {
    out.reason = "sluice: repository " + request.repo + " is not allowed; allowed: " + git_join(listed);
    return out;
  }
  out.rule = rule;
  switch (request.service) {
    case GitService::InfoRefsUploadPack:
    case GitService::UploadPack:
      if (!rule->fetch) {
        out.reason = "sluice: fetching " + request.repo + " is not allowed";
        return out;
      }
      break;
    case GitService::InfoRefsReceivePack:
    case GitService::ReceivePack:
      if (rule->push.empty()) {
        out.reason = "sluice: pushing to " + request.repo + " is not allowed";
        return out;
      }
      if (request.service == GitService::ReceivePack && request.encoded_body) {
        out.reason = "sluice: a compressed push (Content-Encoding) cannot be checked";
        return out;
      }
      out.needs_push_check = request.service == GitService::ReceivePack;
      break;
    default: return out;
  }
  out.decision = GitAccess::Decision::Allow;
  return out;
}

PushJudgment judge_push(const GitRule& rule, const ReceivePackRequest& request) {
  PushJudgment j;
  std::string whole;  // a refusal of the push as a whole
  if (request.push_cert && !rule.push_cert)
    whole = "sluice: signed pushes (push certificates) are not allowed";
  else if (!request.push_options.empty() && !rule.push_options)
    whole = "sluice: push options are not allowed";
  std::string first_ref;  // the first command refused on its own
  for (const auto& cmd : request.commands) {
    RefVerdict v;
    v.ref = cmd.ref;
    const bool tag = cmd.ref.compare(0, 10, "refs/tags/") == 0;
    if (!whole.empty())
      v.reason = whole;
    else if (tag && !rule.tags)
      v.reason = std::string("sluice: ") +
                 (cmd.is_delete()   ? "deleting"
                  : cmd.is_create() ? "creating"
                                    : "updating") +
                 " tag " + cmd.ref + " is not allowed";
    else if (cmd.is_delete() && !rule.deletes)
      v.reason = "sluice: deleting " + cmd.ref + " is not allowed";
    else if (!rule.allows_ref(cmd.ref))
      v.reason = "sluice: pushes to " + cmd.ref + " are not allowed; allowed: " + git_join(rule.push);
    v.allowed = v.reason.empty();
    if (!v.allowed && first_ref.empty()) first_ref = cmd.ref;
    if (!v.allowed && j.reason.empty()) j.reason = v.reason;
    j.refs.push_back(std::move(v));
  }
  if (!whole.empty() && j.reason.empty()) j.reason = whole;
  j.allowed = j.reason.empty();
  if (!j.allowed)
    for (auto& v : j.refs)
      if (v.allowed) {
        v.allowed = false;
        v.reason = "sluice: not pushed: " + first_ref + " in the same push was refused";
      }
  return j;
}

std::string pkt_line(std::string_view payload) {
  static const char kHex[] = "0123456789abcdef";
  const size_t len = std::min(payload.size(), kPktLineMax - 4) + 4;
  std::string out;
  out.reserve(len);
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(len >> shift) & 0xf];
  out.append(payload.substr(0, len - 4));
  return out;
}

GitResponse push_refusal_response(const ReceivePackRequest& request, const PushJudgment& judgment) {
  GitResponse out;
  if (!request.report_status()) {
    out.status = 403;
    out.content_type = "text/plain";
    out.body = (judgment.reason.empty() ? std::string("sluice: push refused") : judgment.reason) + "\n";
    return out;
  }
  std::string report = pkt_line("unpack ok\n");
  for (const auto& v : judgment.refs) {
    std::string line = "ng " + v.ref + " " + (v.reason.empty() ? std::string("sluice: refused") : v.reason);
    if (line.size() > kPktLineMax - 5) line.resize(kPktLineMax - 5);  // room for the LF
    report += pkt_line(line + "\n");
  }
  report += "0000";
  out.content_type = std::string(kReceivePackResultType);
  if (!request.side_band_64k()) {
    out.body = std::move(report);
    return out;
  }
  // send_sideband(): channel 1 packets of at most 65520 bytes (header and band byte included).
  constexpr size_t kChunk = kPktLineMax - 5;
  for (size_t at = 0; at < report.size(); at += kChunk) out.body += pkt_line("\x01" + report.substr(at, kChunk));
  out.body += "0000";
  return out;
}

}  // namespace sluice::rules
