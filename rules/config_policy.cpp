// The config loader's policies: default, on_error, mode, rules files, allow/deny, inspect,
// credentials and git rules.
#include <set>

#include "rules/config_loader.hpp"
#include "rules/host.hpp"
#include "rules/text_detail.hpp"

namespace sluice::rules::config_detail {

std::shared_ptr<Policy> Loader::policy(const std::string& name, const YAML::Node& n) {
  auto p = std::make_shared<Policy>();
  p->name = name;
  std::string what = "policy '" + name + "'";
  if (!check_map(n, what,
                 {"default", "allow", "deny", "rules", "on_error", "mode", "ssh_in_band_reason", "upstream_proxy",
                  "inspect", "inspect_exclude", "credentials", "git"}))
    return p;
  if (const auto& up = n["upstream_proxy"]) {
    if (up.IsScalar() && up.Scalar() == "direct")
      p->direct_upstream = true;
    else
      p->upstream_proxy = upstream_proxy(up, what + " upstream_proxy");
  }
  boolean(n["ssh_in_band_reason"], what + " ssh_in_band_reason", p->ssh_in_band_reason);
  if (n["default"]) {
    std::string d;
    if (string(n["default"], what + " default", d)) {
      if (d == "allow")
        p->default_action = Action::Allow;
      else if (d == "deny")
        p->default_action = Action::Deny;
      else if (d == "ask")
        p->default_action = Action::Ask;
      else
        error(n["default"], what + " default must be deny, allow or ask, not '" + d + "'");
    }
  }
  if (n["on_error"]) {
    std::string d;
    if (string(n["on_error"], what + " on_error", d)) {
      if (d == "allow")
        p->on_error = Action::Allow;
      else if (d == "deny")
        p->on_error = Action::Deny;
      else
        error(n["on_error"], what + " on_error must be deny or allow, not '" + d + "'");
    }
  }
  if (n["mode"]) {
    std::string m;
    if (string(n["mode"], what + " mode", m)) {
      if (m == "enforce")
        p->mode = Policy::Mode::Enforce;
      else if (m == "report")
        p->mode = Policy::Mode::Report;
      else
        error(n["mode"], what + " mode must be enforce or report, not '" + m + "'");
    }
  }
  std::vector<YAML::Node> rule_nodes;
  auto rule_names = string_list(n["rules"], what + " rules", &rule_nodes);
  std::set<std::string> seen_rules;
  for (size_t i = 0; i < rule_names.size(); ++i) {
    ScriptSource src;
    src.name = rule_names[i];
    if (src.name.empty()) {
      error(rule_nodes[i], what + " rules entry is empty");
      continue;
    }
    src.path = src.name.front() == '/' ? src.name : directory_of(file_) + src.name;
    if (!seen_rules.insert(src.path).second) {
      error(rule_nodes[i], what + " lists rules file '" + detail::printable(src.name) + "' twice");
      continue;
    }
    if (std::string why = read_file(src.path, src.text); !why.empty()) {
      error(rule_nodes[i], "cannot read rules file " + src.path + ": " + why);
      continue;
    }
    p->rules.push_back(std::move(src));
  }
  entries(n["allow"], what + " allow", p->allow, p->allow_paths);
  entries(n["deny"], what + " deny", p->deny, p->deny_paths);
  patterns(n["inspect"], what + " inspect", p->inspect);
  patterns(n["inspect_exclude"], what + " inspect_exclude", p->inspect_exclude);
  if (const auto& cs = n["credentials"]) gateway_credentials(cs, what + " credentials", *p);
  git_rules(n["git"], what + " git", p->git);
  return p;
}

// credentials: [{name, hosts: [patterns], secret: SECRET, inject: TEMPLATE | replace, env: [VARS]}]
void Loader::gateway_credentials(const YAML::Node& list, const std::string& what, Policy& p) {
  if (!list.IsSequence()) return error(list, what + " must be a list");
  std::set<std::string> names;
  for (const auto& item : list) {
    if (!check_map(item, what + " entry",
                   {"name", "hosts", "secret", "inject", "env", "replace_body", "replace_body_max_bytes"}))
      continue;
    auto c = std::make_shared<GatewayCredential>();
    if (!item["name"] || !string(item["name"], what + " name", c->name) || c->name.empty()) {
      error(item, what + " entry needs name: NAME");
      continue;
    }
    const std::string w = what + " '" + c->name + "'";
    if (!names.insert(c->name).second) error(item["name"], w + " is named twice");
    patterns(item["hosts"], w + " hosts", c->hosts);
    if (c->hosts.empty()) error(item, w + " needs hosts: [patterns] (where the secret may go)");
    if (!item["secret"]) {
      error(item, w + " needs secret: {env: VAR}, {file: PATH} or {command: [ARGV]}");
      continue;
    }
    if (item["secret"].IsMap() && item["secret"]["env"] && item["secret"]["env"].IsScalar())
      c->secret_env = item["secret"]["env"].Scalar();
    if (auto s = secret(item["secret"], w + " secret", /*allow_command=*/true)) {
      if (s->empty())
        error(item["secret"], w + " secret is empty");
      else
        c->secret = std::move(*s);
    }
    std::string inject;
    if (!item["inject"] || !string(item["inject"], w + " inject", inject)) {
      if (!item["inject"]) error(item, w + " needs inject: 'Header: ... {secret}' or replace");
      continue;
    }
    if (inject == "replace") {
      c->replace = true;
    } else if (auto t = parse_inject_template(inject)) {
      c->header_name = t->first;
      c->header_template = t->second;
    } else {
      error(item["inject"], w + ": " + t.error());
    }
    boolean(item["replace_body"], w + " replace_body", c->replace_body);
    positive(item["replace_body_max_bytes"], w + " replace_body_max_bytes", c->replace_body_max_bytes,
             static_cast<long long>(kMaxReplaceBodyMax));
    if (c->replace_body && !c->replace)
      error(item["replace_body"], w + " replace_body goes with inject: replace");
    else if (item["replace_body_max_bytes"] && !c->replace_body)
      error(item["replace_body_max_bytes"], w + " replace_body_max_bytes needs replace_body: true");
    else if (c->replace_body && !c->secret.empty() && !stand_in_keeps_length(c->secret))
      error(item["replace_body"], w + " replace_body needs a secret of at least 24 characters after its prefix "
                                      "(its stand-in must be as long as the secret, so a body keeps its length)");
    std::vector<YAML::Node> env_nodes;
    c->env = string_list(item["env"], w + " env", &env_nodes);
    for (size_t i = 0; i < c->env.size(); ++i)
      if (c->env[i].empty() || c->env[i].find_first_of("= ") != std::string::npos)
        error(env_nodes[i], w + " env entry '" + detail::printable(c->env[i]) + "' is not a variable name");
    p.credentials.push_back(std::move(c));
  }
}

// git: [{host:, repos: [owner/name globs], push: [ref globs], fetch:, tags:, delete:,
// push_options:, push_cert:}] (rules/git_guard.hpp).
void Loader::git_rules(const YAML::Node& list, const std::string& what, std::vector<GitRule>& out) {
  if (!list) return;
  if (!list.IsSequence()) return error(list, what + " must be a list");
  for (const auto& item : list) {
    if (!check_map(item, what + " entry",
                   {"host", "repos", "push", "fetch", "tags", "delete", "push_options", "push_cert"}))
      continue;
    std::string host;
    if (!item["host"]) {
      error(item, what + " entry needs host: PATTERN");
      continue;
    }
    if (!string(item["host"], what + " host", host)) continue;
    if (!item["repos"]) {
      error(item, what + " entry needs repos: [owner/name, ...]");
      continue;
    }
    std::vector<YAML::Node> repo_nodes, push_nodes;
    auto repos = string_list(item["repos"], what + " repos", &repo_nodes);
    auto push = string_list(item["push"], what + " push", &push_nodes);
    bool bad = false;
    for (size_t i = 0; i < repos.size(); ++i)
      if (auto why = git_repo_glob_problem(repos[i]); !why.empty()) {
        error(repo_nodes[i], what + " repos: " + why + ", not '" + detail::printable(repos[i]) + "'");
        bad = true;
      }
    for (size_t i = 0; i < push.size(); ++i)
      if (auto why = git_ref_glob_problem(push[i]); !why.empty()) {
        error(push_nodes[i], what + " push: " + why + ", not '" + detail::printable(push[i]) + "'");
        bad = true;
      }
    if (repos.empty() && item["repos"].IsSequence()) {
      error(item["repos"], what + " repos is empty (list owner/name globs)");
      bad = true;
    }
    if (auto pattern = parse_pattern(host); !pattern) {
      error(item["host"], what + " host: " + pattern.error());
      bad = true;
    }
    if (bad) continue;
    auto rule = make_git_rule(host, std::move(repos), std::move(push));
    if (!rule) {
      error(item, what + ": " + rule.error());
      continue;
    }
    boolean(item["fetch"], what + " fetch", rule->fetch);
    boolean(item["tags"], what + " tags", rule->tags);
    boolean(item["delete"], what + " delete", rule->deletes);
    boolean(item["push_options"], what + " push_options", rule->push_options);
    boolean(item["push_cert"], what + " push_cert", rule->push_cert);
    out.push_back(std::move(rule.value()));
  }
}

}  // namespace sluice::rules::config_detail
