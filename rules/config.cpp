// YAML config loading: every error carries file:line:column, all errors are
// collected, and nothing is returned half-built.
#include "rules/config.hpp"

#include <sys/stat.h>

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "rules/host.hpp"
#include "rules/ip.hpp"
#include "rules/lua_policy.hpp"
#include "rules/text_detail.hpp"

namespace sluice::rules {

const Policy* Config::policy(const std::string& name) const {
  auto it = policies.find(name);
  return it == policies.end() ? nullptr : it->second.get();
}

const UpstreamProxy* Config::upstream_for(const Policy* p) const {
  if (p && p->direct_upstream) return nullptr;
  if (p && p->upstream_proxy) return p->upstream_proxy.get();
  return upstream_proxy.get();
}

std::string ConfigError::to_string() const {
  // One error, one line: yaml-cpp quotes the offending byte raw, even a newline.
  std::string msg;
  for (unsigned char c : message) {
    if (c >= 0x20 && c != 0x7f) {
      msg += static_cast<char>(c);
      continue;
    }
    static const char* hex = "0123456789abcdef";
    msg += "\\x";
    msg += hex[c >> 4];
    msg += hex[c & 15];
  }
  if (line <= 0) return file + ": " + msg;
  if (column <= 0) return file + ":" + std::to_string(line) + ": " + msg;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + msg;
}

namespace {

std::string join_methods(const std::vector<std::string>& m) {
  std::string out;
  for (const auto& x : m) out += (out.empty() ? "" : ",") + x;
  return out;
}

constexpr size_t kMaxScriptBytes = 1024 * 1024;

// Rule paths are relative to the directory of the config file.
std::string directory_of(const std::string& file) {
  size_t slash = file.rfind('/');
  if (slash == std::string::npos) return "";
  return file.substr(0, slash + 1);
}

// "" on success, else why the file could not be read. Regular files only, and
// at most kMaxScriptBytes: a rule path naming /dev/zero or a FIFO must not hang a load.
std::string read_file(const std::string& path, std::string& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::strerror(errno);
  out.assign(kMaxScriptBytes + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (in.bad()) return std::strerror(errno ? errno : EIO);
  out.resize(static_cast<size_t>(in.gcount()));
  if (out.size() > kMaxScriptBytes) return "larger than 1 MiB";
  return "";
}

class Loader {
 public:
  Loader(std::string file, bool policy_file) : file_(std::move(file)), policy_file_(policy_file) {}
  std::vector<ConfigError> errors;

  void error(const YAML::Node& at, const std::string& message) {
    const YAML::Mark m = at.Mark();
    errors.push_back({file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, one_line(message)});
  }

  // Messages quote values from the file; a control byte in one must not break the line.
  static std::string one_line(const std::string& message) {
    std::string out;
    for (unsigned char c : message) {
      if (c < 0x20 || c == 0x7f) {
        static const char kHex[] = "0123456789abcdef";
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
      } else {
        out += static_cast<char>(c);
      }
    }
    return out;
  }

  // Every key of `map` must be one of `known`.
  // With `any_key`, only repeated keys are errors.
  bool check_map(const YAML::Node& map, const std::string& what, std::initializer_list<const char*> known,
                 bool any_key = false) {
    if (!map.IsMap()) {
      error(map, what + " must be a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : map) {
      std::string key = kv.first.Scalar();
      // yaml-cpp keeps both entries of a repeated key and lookups see only one: refuse it.
      if (!seen.insert(key).second) error(kv.first, "duplicate key '" + key + "' in " + what);
      bool ok = false;
      for (const char* k : known) ok = ok || key == k;
      if (any_key) continue;
      if (!ok) {
        std::string list;
        for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
        error(kv.first, "unknown key '" + key + "' in " + what + " (expected one of: " + list + ")");
      }
    }
    return true;
  }

  bool string(const YAML::Node& n, const std::string& what, std::string& out) {
    if (!n.IsScalar()) {
      error(n, what + " must be a string");
      return false;
    }
    out = n.Scalar();
    return true;
  }

  void boolean(const YAML::Node& n, const std::string& what, bool& out) {
    if (!n) return;
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
      out = n.Scalar() == "true";
      return;
    }
    error(n, what + " must be true or false");
  }

  // A positive integer no larger than `max`.
  template <class T>
  void positive(const YAML::Node& n, const std::string& what, T& out, long long max) {
    if (!n) return;
    if (!n.IsScalar()) return error(n, what + " must be a positive integer");
    const std::string& s = n.Scalar();
    long long v = 0;
    bool ok = !s.empty() && s.size() <= 18;
    for (char c : s) ok = ok && c >= '0' && c <= '9';
    if (ok) v = std::stoll(s);
    if (!ok || v <= 0 || v > max)
      return error(n, what + " must be a positive integer up to " + std::to_string(max) + ", not '" + s + "'");
    out = static_cast<T>(v);
  }

  std::vector<std::string> string_list(const YAML::Node& n, const std::string& what, std::vector<YAML::Node>* nodes) {
    std::vector<std::string> out;
    if (!n) return out;
    if (!n.IsSequence()) {
      error(n, what + " must be a list");
      return out;
    }
    for (const auto& item : n) {
      std::string s;
      if (string(item, what + " entry", s)) {
        out.push_back(s);
        if (nodes) nodes->push_back(item);
      }
    }
    return out;
  }

  // An allow or deny list: host patterns ("github.com", "10.0.0.0/8"), path-scoped strings
  // ("github.com/myorg/") and maps ({host:, path:, methods: [...]}).
  void entries(const YAML::Node& list, const std::string& what, HostSet& hosts, std::vector<PathEntry>& paths) {
    if (!list) return;
    if (!list.IsSequence()) {
      error(list, what + " must be a list");
      return;
    }
    for (const auto& item : list) {
      if (item.IsMap()) {
        if (!check_map(item, what + " entry", {"host", "path", "methods"})) continue;
        if (!item["host"] || !item["host"].IsScalar()) {
          error(item, what + " entry needs host: PATTERN");
          continue;
        }
        std::string path = item["path"] && item["path"].IsScalar() ? item["path"].Scalar() : "";
        if (item["path"] && !item["path"].IsScalar()) {
          error(item["path"], what + " entry path must be a string like /repos/myorg/");
          continue;
        }
        std::vector<YAML::Node> method_nodes;
        auto methods = string_list(item["methods"], what + " entry methods", &method_nodes);
        if (path.empty() && methods.empty()) {
          error(item, what + " entry needs path: or methods: (a host alone is a plain string entry)");
          continue;
        }
        std::string source = item["host"].Scalar() + path + (methods.empty() ? "" : " [" + join_methods(methods) + "]");
        auto e = make_path_entry(item["host"].Scalar(), path, std::move(methods), std::move(source));
        if (!e)
          error(item, e.error());
        else
          paths.push_back(std::move(e.value()));
        continue;
      }
      if (!item.IsScalar()) {
        error(item, what + " entries must be strings or {host:, path:, methods:} maps");
        continue;
      }
      const std::string text = item.Scalar();
      auto parsed = parse_pattern(text);
      if (parsed) {
        hosts.add(std::move(parsed.value()));
        continue;
      }
      // Not a host pattern; with a '/' after a host it is a path-scoped entry (a CIDR such as
      // 10.0.0.0/8 parsed above as a pattern).
      if (const size_t slash = text.find('/'); slash != std::string::npos && slash > 0 && !cidr_like(text)) {
        if (auto e = parse_path_entry(text)) {
          paths.push_back(std::move(e.value()));
          continue;
        } else if (parse_pattern(text.substr(0, slash))) {
          error(item, e.error());
          continue;
        }
      }
      error(item, parsed.error());
    }
  }

  std::shared_ptr<Policy> policy(const std::string& name, const YAML::Node& n) {
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
  void gateway_credentials(const YAML::Node& list, const std::string& what, Policy& p) {
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
  void git_rules(const YAML::Node& list, const std::string& what, std::vector<GitRule>& out) {
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

  // A list of host patterns only (inspect, inspect_exclude).
  void patterns(const YAML::Node& list, const std::string& what, HostSet& hosts) {
    std::vector<YAML::Node> nodes;
    auto texts = string_list(list, what, &nodes);
    for (size_t i = 0; i < texts.size(); ++i) {
      auto parsed = parse_pattern(texts[i]);
      if (!parsed)
        error(nodes[i], what + ": " + parsed.error());
      else
        hosts.add(std::move(parsed.value()));
    }
  }

  void tls(const YAML::Node& t, TlsConfig& out) {
    if (!check_map(t, "tls", {"ca_cert", "ca_key", "upstream_ca", "leaf_cache"})) return;
    for (auto [key, dest] : {std::pair{"ca_cert", &out.ca_cert}, std::pair{"ca_key", &out.ca_key}}) {
      if (!t[key] || !string(t[key], std::string("tls ") + key, *dest)) continue;
      if (dest->empty())
        error(t[key], std::string("tls ") + key + " is empty");
      else if (dest->front() != '/')
        *dest = directory_of(file_) + *dest;
    }
    if (t["ca_cert"].IsDefined() != t["ca_key"].IsDefined())
      error(t, "tls needs both ca_cert and ca_key (make them with `sluice ca init DIR`)");
    std::vector<YAML::Node> nodes;
    out.upstream_ca = string_list(t["upstream_ca"], "tls upstream_ca", &nodes);
    for (auto& f : out.upstream_ca)
      if (!f.empty() && f.front() != '/') f = directory_of(file_) + f;
    positive(t["leaf_cache"], "tls leaf_cache", out.leaf_cache, 1 << 20);
  }

  // A secret: a string, {env: VAR} or {file: PATH} (one line; a final newline is dropped).
  // Its value is never quoted in an error.
  std::optional<std::string> secret(const YAML::Node& n, const std::string& what, bool allow_command = false) {
    if (n.IsScalar() && !n.IsNull()) return n.Scalar();
    if (allow_command && n.IsMap() && n.size() == 1 && n["command"]) {
      std::vector<YAML::Node> nodes;
      auto argv = string_list(n["command"], what + " command", &nodes);
      if (argv.empty()) {
        error(n["command"], what + " command must be a non-empty list: [PROGRAM, ARGS...]");
        return std::nullopt;
      }
      // Runs now (at load and at each reload), outside any jail; a failure fails the load.
      auto out = run_secret_command(argv);
      if (!out) {
        error(n["command"], what + ": " + out.error());
        return std::nullopt;
      }
      return out.value();
    }
    if (!n.IsMap() || n.size() != 1 || !(n["env"] || n["file"])) {
      error(n, what + " must be a string, {env: VARIABLE} or {file: PATH}" +
                   std::string(allow_command ? " or {command: [ARGV]}" : ""));
      return std::nullopt;
    }
    std::string source;
    if (const auto& e = n["env"]) {
      if (!string(e, what + " env", source)) return std::nullopt;
      const char* v = std::getenv(source.c_str());
      if (v == nullptr || *v == '\0') {
        error(e, what + ": environment variable " + detail::printable(source) + " is not set");
        return std::nullopt;
      }
      return std::string(v);
    }
    const auto& f = n["file"];
    if (!string(f, what + " file", source)) return std::nullopt;
    std::string path = !source.empty() && source.front() == '/' ? source : directory_of(file_) + source;
    std::string text;
    if (std::string why = read_file(path, text); !why.empty()) {
      error(f, what + ": cannot read " + path + ": " + why);
      return std::nullopt;
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
  }

  // upstream_proxy: URL, or {url: URL, username:, password: SECRET, bypass: [patterns]}.
  std::shared_ptr<const UpstreamProxy> upstream_proxy(const YAML::Node& n, const std::string& what) {
    if (n.IsMap()) {
      if (!check_map(n, what, {"url", "username", "password", "bypass"})) return nullptr;
      if (!n["url"]) {
        error(n, what + " needs a url");
        return nullptr;
      }
    }
    // Bound once: assigning to a YAML::Node would overwrite the node it refers to.
    const YAML::Node url_node = n.IsMap() ? n["url"] : n;
    std::string url;
    if (!string(url_node, what, url)) return nullptr;
    auto parsed = parse_upstream_proxy_url(url);
    if (!parsed) {
      error(url_node, what + ": " + parsed.error());
      return nullptr;
    }
    auto p = std::make_shared<UpstreamProxy>(std::move(parsed.value()));
    if (!n.IsMap()) return p;
    if (n["username"] || n["password"]) {
      if (p->auth) error(n, what + ": credentials both in the url and as username/password");
      if (!n["username"] || !n["password"]) {
        error(n, what + " needs both username and password");
        return nullptr;
      }
      Credentials c;
      if (!string(n["username"], what + " username", c.username)) return nullptr;
      auto pass = secret(n["password"], what + " password");
      if (!pass) return nullptr;
      c.password = std::move(*pass);
      if (c.username.empty() || c.username.size() > 255 || c.password.empty() || c.password.size() > 255) {
        error(n, what + " username and password must be 1 to 255 bytes long");
        return nullptr;
      }
      if (c.username.find(':') != std::string::npos) {
        error(n["username"], what + " username must not contain ':'");
        return nullptr;
      }
      p->auth = std::move(c);
    }
    auto bypass = std::make_shared<HostSet>();
    std::vector<YAML::Node> nodes;
    auto items = string_list(n["bypass"], what + " bypass", &nodes);
    for (size_t i = 0; i < items.size(); ++i) {
      auto pat = parse_pattern(items[i]);
      if (!pat)
        error(nodes[i], what + " bypass: " + pat.error());
      else
        bypass->add(std::move(pat.value()));
    }
    if (!bypass->empty()) p->bypass = std::move(bypass);
    return p;
  }

  // auth: {username: NAME, password: SECRET}; both 1..255 bytes (the RFC 1929 limit).
  std::optional<Credentials> credentials(const YAML::Node& n, const std::string& what) {
    if (!check_map(n, what, {"username", "password"})) return std::nullopt;
    Credentials c;
    bool ok = true;
    for (auto [key, out] : {std::pair{"username", &c.username}, std::pair{"password", &c.password}}) {
      const YAML::Node& v = n[key];
      if (!v) {
        error(n, what + " needs a " + key);
        ok = false;
        continue;
      }
      if (!v.IsScalar() || v.IsNull()) {
        error(v, what + " " + key + " must be a string");
        ok = false;
        continue;
      }
      *out = v.Scalar();
      if (out->empty() || out->size() > 255) {
        error(v, what + " " + key + " must be 1 to 255 bytes long");
        ok = false;
      }
    }
    if (ok && c.username.find(':') != std::string::npos) {
      error(n["username"], what + " username must not contain ':' (HTTP Basic splits on it)");
      ok = false;
    }
    if (!ok) return std::nullopt;
    return c;
  }

  void listener(const YAML::Node& n, Config& cfg, std::set<std::string>& names, std::set<std::string>& addrs) {
    if (!check_map(n, "listener", {"name", "unix", "tcp", "mode", "policy", "auth"})) return;
    ListenerConfig l;
    if (!n["name"])
      error(n, "listener needs a name");
    else if (string(n["name"], "listener name", l.name)) {
      bool ok = !l.name.empty();
      for (char c : l.name)
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
      if (!ok)
        error(n["name"], "listener name '" + l.name + "' may only use letters, digits, '_', '.', '-'");
      else if (!names.insert(l.name).second)
        error(n["name"], "duplicate listener name '" + l.name + "'");
    }
    bool has_unix = static_cast<bool>(n["unix"]), has_tcp = static_cast<bool>(n["tcp"]);
    if (has_unix == has_tcp) error(n, "listener '" + l.name + "' needs exactly one of unix: or tcp:");
    if (has_unix && string(n["unix"], "unix", l.path)) {
      l.kind = ListenerConfig::Kind::Unix;
      if (l.path.empty())
        error(n["unix"], "unix path is empty");
      else if (!addrs.insert("unix:" + l.path).second)
        error(n["unix"], "unix path " + l.path + " used twice");
    }
    if (has_tcp) {
      std::string spec;
      if (string(n["tcp"], "tcp", spec)) {
        l.kind = ListenerConfig::Kind::Tcp;
        auto addr = parse_tcp_listen_address(spec);
        if (!addr) {
          error(n["tcp"],
                "tcp must be IP:PORT or [IPv6]:PORT (e.g. 127.0.0.1:3128), not '" + detail::printable(spec) + "'");
        } else {
          l.host = addr->host;
          l.port = addr->port;
          // Compared in canonical form, so "[::1]:80" and "[0:0::1]:80" collide. Port 0
          // (ephemeral) never collides.
          std::string key = "tcp:[" + l.host + "]:" + std::to_string(l.port);
          if (l.port != 0 && !addrs.insert(key).second) error(n["tcp"], "address " + spec + " used twice");
        }
      }
    }
    if (n["mode"]) {
      std::string m;
      if (!has_unix)
        error(n["mode"], "mode applies to unix listeners only");
      else if (string(n["mode"], "mode", m)) {
        bool ok = !m.empty() && m.size() <= 4;
        for (char c : m) ok = ok && c >= '0' && c <= '7';
        if (!ok)
          error(n["mode"], "mode must be an octal string like \"0660\", not '" + m + "'");
        else
          l.mode = static_cast<uint32_t>(std::stoul(m, nullptr, 8));
      }
    }
    if (n["policy"]) string(n["policy"], "policy", l.policy);
    if (n["auth"]) l.auth = credentials(n["auth"], "listener '" + l.name + "' auth");
    policy_refs_.push_back(n["policy"] ? n["policy"] : n);
    cfg.listeners.push_back(l);
  }

  std::shared_ptr<Config> load(const YAML::Node& root) {
    auto cfg = std::make_shared<Config>();
    cfg->source = file_;
    if (!root || root.IsNull()) {
      errors.push_back(
          {file_, 0, 0, policy_file_ ? "empty policy file" : "empty config: it needs at least listeners:"});
      return nullptr;
    }
    if (!check_map(
            root, "the config",
            {"listeners", "policies", "resolver", "limits", "log", "control", "upstream_proxy", "transparent", "tls"}))
      return nullptr;
    if (const auto& up = root["upstream_proxy"]) cfg->upstream_proxy = upstream_proxy(up, "upstream_proxy");
    if (const auto& ps = root["policies"]) {
      if (!ps.IsMap())
        error(ps, "policies must be a mapping of name: policy");
      else if (check_map(ps, "policies", {}, /*any_key=*/true))
        for (const auto& kv : ps) {
          if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
            error(kv.first, "a policy name must be a non-empty string");
            continue;
          }
          cfg->policies[kv.first.Scalar()] = policy(kv.first.Scalar(), kv.second);
        }
    }
    std::set<std::string> names, addrs;
    const auto& ls = root["listeners"];
    if (!ls) {
      if (!policy_file_) error(root, "listeners: is required");
    } else if (!ls.IsSequence() || ls.size() == 0)
      error(ls, "listeners must be a non-empty list");
    else
      for (const auto& l : ls) listener(l, *cfg, names, addrs);
    for (size_t i = 0; i < cfg->listeners.size(); ++i) {
      const auto& name = cfg->listeners[i].policy;
      if (cfg->policies.count(name)) continue;
      if (name == "default") {
        // A listener with no policy and no "default" defined: deny everything, explicitly.
        auto p = std::make_shared<Policy>();
        p->name = "default";
        cfg->policies["default"] = p;
        continue;
      }
      error(policy_refs_[i], "listener '" + cfg->listeners[i].name + "' uses undefined policy '" + name + "'");
    }
    if (const auto& r = root["resolver"];
        r && check_map(r, "resolver", {"servers", "timeout_ms", "check_addresses", "allow_private", "deny_cidrs"})) {
      boolean(r["check_addresses"], "resolver check_addresses", cfg->resolver.check_addresses);
      boolean(r["allow_private"], "resolver allow_private", cfg->resolver.allow_private);
      std::vector<YAML::Node> cidr_nodes;
      auto cidrs = string_list(r["deny_cidrs"], "resolver deny_cidrs", &cidr_nodes);
      for (size_t i = 0; i < cidrs.size(); ++i) {
        auto c = Cidr::parse(cidrs[i]);
        if (!c)
          error(cidr_nodes[i],
                "resolver deny_cidrs entry must be a CIDR block like 10.0.0.0/8 (no host bits set), not '" +
                    detail::printable(cidrs[i]) + "'");
        else
          cfg->resolver.deny_cidrs.push_back(*c);
      }
      std::vector<YAML::Node> nodes;
      auto servers = string_list(r["servers"], "resolver servers", &nodes);
      for (size_t i = 0; i < servers.size(); ++i) {
        auto hp = split_host_port(servers[i]);
        if (!hp || !IpAddr::parse(hp->host))
          error(nodes[i],
                "resolver server must be IP:PORT (e.g. 127.0.0.1:53), not '" + detail::printable(servers[i]) + "'");
        else
          cfg->resolver.servers.push_back(servers[i]);
      }
      positive(r["timeout_ms"], "resolver timeout_ms", cfg->resolver.timeout_ms, 600000);
    }
    if (const auto& l = root["limits"];
        l &&
        check_map(l, "limits",
                  {"header_timeout_ms", "connect_timeout_ms", "idle_timeout_ms", "drain_timeout_ms",
                   "keepalive_timeout_ms", "response_timeout_ms", "request_body_timeout_ms", "tunnel_idle_timeout_ms",
                   "max_header_bytes", "max_headers", "max_request_line_bytes", "max_connections",
                   "max_connections_per_listener", "lua_instruction_budget", "lua_memory_kb", "ask_timeout_ms"})) {
      auto& lim = cfg->limits;
      positive(l["header_timeout_ms"], "header_timeout_ms", lim.header_timeout_ms, 3600000);
      positive(l["connect_timeout_ms"], "connect_timeout_ms", lim.connect_timeout_ms, 3600000);
      positive(l["idle_timeout_ms"], "idle_timeout_ms", lim.idle_timeout_ms, 86400000);
      // The named waits follow idle_timeout_ms unless set themselves.
      for (auto [key, field] : {std::pair{"keepalive_timeout_ms", &lim.keepalive_timeout_ms},
                                std::pair{"response_timeout_ms", &lim.response_timeout_ms},
                                std::pair{"request_body_timeout_ms", &lim.request_body_timeout_ms},
                                std::pair{"tunnel_idle_timeout_ms", &lim.tunnel_idle_timeout_ms}}) {
        *field = lim.idle_timeout_ms;
        positive(l[key], key, *field, 86400000);
      }
      positive(l["drain_timeout_ms"], "drain_timeout_ms", lim.drain_timeout_ms, 3600000);
      positive(l["max_header_bytes"], "max_header_bytes", lim.max_header_bytes, 16 * 1024 * 1024);
      positive(l["max_connections"], "max_connections", lim.max_connections, 10000000);
      positive(l["max_headers"], "max_headers", lim.max_headers, 10000);
      positive(l["max_request_line_bytes"], "max_request_line_bytes", lim.max_request_line_bytes, 1024 * 1024);
      positive(l["max_connections_per_listener"], "max_connections_per_listener", lim.max_connections_per_listener,
               10000000);
      positive(l["lua_instruction_budget"], "lua_instruction_budget", lim.lua.instruction_budget, 1000000000);
      size_t kb = lim.lua.memory_bytes / 1024;
      positive(l["lua_memory_kb"], "lua_memory_kb", kb, 4 * 1024 * 1024);
      if (kb < 256)
        error(l["lua_memory_kb"], "lua_memory_kb must be at least 256");
      else
        lim.lua.memory_bytes = kb * 1024;
      positive(l["ask_timeout_ms"], "ask_timeout_ms", lim.ask_timeout_ms, 86400000);
    }
    if (const auto& c = root["control"]; c && check_map(c, "control", {"unix", "state_file", "sandbox_dir"})) {
      auto& ctl = cfg->control;
      for (auto [key, out] : {std::pair{"unix", &ctl.unix_path}, std::pair{"state_file", &ctl.state_file},
                              std::pair{"sandbox_dir", &ctl.sandbox_dir}}) {
        if (!c[key]) continue;
        if (string(c[key], std::string("control ") + key, *out) && out->empty())
          error(c[key], std::string("control ") + key + " is empty");
      }
      if (!c["unix"]) error(c, "control needs unix: PATH (the control socket)");
      for (const auto& l : cfg->listeners)
        if (l.kind == ListenerConfig::Kind::Unix && l.path == ctl.unix_path)
          error(c["unix"], "control socket " + ctl.unix_path + " is also listener '" + l.name + "'");
    }
    if (const auto& t = root["transparent"];
        t && check_map(t, "transparent", {"fake_ipv4", "fake_ipv6", "max_names", "dns_ttl_s"})) {
      auto& tc = cfg->transparent;
      for (auto [key, out, v6] :
           {std::tuple{"fake_ipv4", &tc.fake_ipv4, false}, std::tuple{"fake_ipv6", &tc.fake_ipv6, true}}) {
        const auto& n = t[key];
        std::string text;
        if (!n || !string(n, std::string("transparent ") + key, text)) continue;
        auto c = Cidr::parse(text);
        std::string problem = !c                 ? "must be a CIDR block (no host bits set)"
                              : c->base.v6 != v6 ? std::string("must be an ") + (v6 ? "IPv6" : "IPv4") + " block"
                                                 : fake_range_problem(*c);
        if (!problem.empty())
          error(n, std::string("transparent ") + key + " " + problem + ", not '" + detail::printable(text) + "'");
        else
          *out = *c;
      }
      positive(t["max_names"], "transparent max_names", tc.max_names, 1 << 20);
      positive(t["dns_ttl_s"], "transparent dns_ttl_s", tc.dns_ttl_s, 86400);
    }
    if (const auto& t = root["tls"]) tls(t, cfg->tls);
    if (const auto& lg = root["log"]; lg && check_map(lg, "log", {"path"})) {
      if (lg["path"]) string(lg["path"], "log path", cfg->log.path);
    }
    if (errors.empty()) try_rules(*cfg);
    return errors.empty() ? cfg : nullptr;
  }

 private:
  // Compiles each policy's scripts and runs their top level once, in a state of
  // its own, so a script that cannot load is reported here with its file:line.
  void try_rules(const Config& cfg) {
    for (const auto& [name, policy] : cfg.policies) {
      if (policy->rules.empty()) continue;
      LuaPolicy::LoadError e;
      if (LuaPolicy::load(policy->rules, cfg.limits.lua, LuaEnv{}, &e)) continue;
      const std::string& path = policy->rules[std::min(e.script, policy->rules.size() - 1)].path;
      errors.push_back({path, e.line, 0, one_line(e.message)});
    }
  }

  std::string file_;
  bool policy_file_;
  std::vector<YAML::Node> policy_refs_;
};

}  // namespace

ConfigLoad load_config_text(const std::string& text, const std::string& file_name, bool policy_file) {
  ConfigLoad out;
  Loader loader(file_name, policy_file);
  try {
    YAML::Node root = YAML::Load(text);
    out.config = loader.load(root);
  } catch (const YAML::Exception& e) {
    loader.errors.push_back(
        {file_name, e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0, e.msg});
  }
  out.errors = std::move(loader.errors);
  if (!out.errors.empty()) out.config.reset();
  return out;
}

ConfigLoad load_config_file(const std::string& path, bool policy_file) {
  std::ifstream in(path);
  if (!in) {
    ConfigLoad out;
    out.errors.push_back({path, 0, 0, std::string("cannot read: ") + std::strerror(errno)});
    return out;
  }
  std::stringstream ss;
  errno = 0;
  ss << in.rdbuf();
  if (in.bad() || (errno != 0 && ss.str().empty())) {  // e.g. a directory: it opens, then reads fail
    ConfigLoad out;
    out.errors.push_back({path, 0, 0, std::string("cannot read: ") + std::strerror(errno ? errno : EIO)});
    return out;
  }
  return load_config_text(ss.str(), path, policy_file);
}

std::vector<std::string> rule_files(const Config& config) {
  std::set<std::string> paths;
  for (const auto& [_, policy] : config.policies)
    for (const auto& s : policy->rules) paths.insert(s.path);
  return {paths.begin(), paths.end()};
}

Result<HostPort> parse_tcp_listen_address(std::string_view spec) {
  auto fail = [&] {
    return Err{"expected IP:PORT or [IPv6]:PORT (e.g. 127.0.0.1:3128), not '" + detail::printable(spec) + "'"};
  };
  auto a = split_authority(spec, false);
  if (!a || !a->has_port) return fail();
  auto ip = IpAddr::parse(a->host);
  auto port = detail::parse_port(a->port);  // 0 asks for an ephemeral port
  if (!ip || !port || ip->v6 != a->bracketed) return fail();
  return HostPort{ip->to_string(), static_cast<uint16_t>(*port)};
}

// A host pattern, else (a '/' after a host) a path-scoped entry such as github.com/myorg/.
std::optional<std::string> add_flag_entry(const std::string& text, const char* flag, HostSet& hosts,
                                          std::vector<PathEntry>& paths) {
  auto parsed = parse_pattern(text);
  if (parsed) {
    hosts.add(std::move(parsed.value()));
    return std::nullopt;
  }
  const size_t slash = text.find('/');
  if (slash != std::string::npos && slash > 0 && !cidr_like(text) && parse_pattern(text.substr(0, slash))) {
    auto e = parse_path_entry(text);
    if (!e) return std::string(flag) + ": " + e.error();
    paths.push_back(std::move(e.value()));
    return std::nullopt;
  }
  return std::string(flag) + ": " + parsed.error();
}

Result<std::shared_ptr<Policy>> make_policy(const std::string& name, Action default_action,
                                            const std::vector<std::string>& allow,
                                            const std::vector<std::string>& deny) {
  auto p = std::make_shared<Policy>();
  p->name = name;
  p->default_action = default_action;
  for (const auto& a : allow)
    if (auto err = add_flag_entry(a, "--allow", p->allow, p->allow_paths)) return Err{*err};
  for (const auto& d : deny)
    if (auto err = add_flag_entry(d, "--deny", p->deny, p->deny_paths)) return Err{*err};
  return p;
}

}  // namespace sluice::rules
