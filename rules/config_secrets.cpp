// The config loader's secrets and the sections that hold them: upstream_proxy (its password),
// listener auth, tls (the CA key's file). No error quotes a secret's value.
#include <cstdlib>

#include "rules/config_loader.hpp"
#include "rules/host.hpp"
#include "rules/text_detail.hpp"

namespace sluice::rules::config_detail {

// A secret: a string, {env: VAR} or {file: PATH} (one line; a final newline is dropped).
// Its value is never quoted in an error.
std::optional<std::string> Loader::secret(const YAML::Node& n, const std::string& what, bool allow_command) {
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
std::shared_ptr<const UpstreamProxy> Loader::upstream_proxy(const YAML::Node& n, const std::string& what) {
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
std::optional<Credentials> Loader::credentials(const YAML::Node& n, const std::string& what) {
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

void Loader::tls(const YAML::Node& t, TlsConfig& out) {
  if (!check_map(t, "tls", {"ca_cert", "ca_key", "upstream_ca", "leaf_cache", "session_cache"})) return;
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
  // 0: no upstream session is kept, so every upstream handshake is a full one.
  non_negative(t["session_cache"], "tls session_cache", out.session_cache, 1 << 20);
}

}  // namespace sluice::rules::config_detail
