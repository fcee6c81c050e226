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

#include "rules/config_loader.hpp"
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
  const std::string msg = config_detail::one_line(message);
  if (line <= 0) return file + ": " + msg;
  if (column <= 0) return file + ":" + std::to_string(line) + ": " + msg;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + msg;
}

namespace config_detail {

void Loader::listener(const YAML::Node& n, Config& cfg, std::set<std::string>& names, std::set<std::string>& addrs) {
  if (!check_map(n, "listener", {"name", "unix", "tcp", "mode", "policy", "auth"})) return;
  ListenerConfig l;
  if (!n["name"])
    error(n, "listener needs a name");
  else if (string(n["name"], "listener name", l.name)) {
    bool ok = !l.name.empty();
    for (char c : l.name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
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

std::shared_ptr<Config> Loader::load(const YAML::Node& root) {
  auto cfg = std::make_shared<Config>();
  cfg->source = file_;
  if (!root || root.IsNull()) {
    errors.push_back({file_, 0, 0, policy_file_ ? "empty policy file" : "empty config: it needs at least listeners:"});
    return nullptr;
  }
  if (!check_map(
          root, "the config",
          {"listeners", "policies", "resolver", "limits", "log", "control", "upstream_proxy", "transparent", "tls"}))
    return nullptr;
  if (const auto& up = root["upstream_proxy"]) cfg->upstream_proxy = upstream_proxy(up, "upstream_proxy");
  if (const auto& ps = root["policies"]) policies(ps, *cfg);
  listeners(root, *cfg);
  if (const auto& r = root["resolver"]) resolver(r, cfg->resolver);
  if (const auto& l = root["limits"]) limits(l, cfg->limits);
  if (const auto& c = root["control"]) control(c, *cfg);
  if (const auto& t = root["transparent"]) transparent(t, cfg->transparent);
  if (const auto& t = root["tls"]) tls(t, cfg->tls);
  if (const auto& lg = root["log"]; lg && check_map(lg, "log", {"path"})) {
    if (lg["path"]) string(lg["path"], "log path", cfg->log.path);
  }
  if (errors.empty()) try_rules(*cfg);
  return errors.empty() ? cfg : nullptr;
}

void Loader::policies(const YAML::Node& ps, Config& cfg) {
  if (!ps.IsMap())
    error(ps, "policies must be a mapping of name: policy");
  else if (check_map(ps, "policies", {}, /*any_key=*/true))
    for (const auto& kv : ps) {
      if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
        error(kv.first, "a policy name must be a non-empty string");
        continue;
      }
      cfg.policies[kv.first.Scalar()] = policy(kv.first.Scalar(), kv.second);
    }
}

// Listeners after policies: each must name a defined one (or "default", made deny-all).
void Loader::listeners(const YAML::Node& root, Config& cfg) {
  std::set<std::string> names, addrs;
  const auto& ls = root["listeners"];
  if (!ls) {
    if (!policy_file_) error(root, "listeners: is required");
  } else if (!ls.IsSequence() || ls.size() == 0)
    error(ls, "listeners must be a non-empty list");
  else
    for (const auto& l : ls) listener(l, cfg, names, addrs);
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    const auto& name = cfg.listeners[i].policy;
    if (cfg.policies.count(name)) continue;
    if (name == "default") {
      // A listener with no policy and no "default" defined: deny everything, explicitly.
      auto p = std::make_shared<Policy>();
      p->name = "default";
      cfg.policies["default"] = p;
      continue;
    }
    error(policy_refs_[i], "listener '" + cfg.listeners[i].name + "' uses undefined policy '" + name + "'");
  }
}

void Loader::resolver(const YAML::Node& r, ResolverConfig& out) {
  if (!check_map(r, "resolver", {"servers", "timeout_ms", "check_addresses", "allow_private", "deny_cidrs"})) return;
  boolean(r["check_addresses"], "resolver check_addresses", out.check_addresses);
  boolean(r["allow_private"], "resolver allow_private", out.allow_private);
  std::vector<YAML::Node> cidr_nodes;
  auto cidrs = string_list(r["deny_cidrs"], "resolver deny_cidrs", &cidr_nodes);
  for (size_t i = 0; i < cidrs.size(); ++i) {
    auto c = Cidr::parse(cidrs[i]);
    if (!c)
      error(cidr_nodes[i], "resolver deny_cidrs entry must be a CIDR block like 10.0.0.0/8 (no host bits set), not '" +
                               detail::printable(cidrs[i]) + "'");
    else
      out.deny_cidrs.push_back(*c);
  }
  std::vector<YAML::Node> nodes;
  auto servers = string_list(r["servers"], "resolver servers", &nodes);
  for (size_t i = 0; i < servers.size(); ++i) {
    auto hp = split_host_port(servers[i]);
    if (!hp || !IpAddr::parse(hp->host))
      error(nodes[i],
            "resolver server must be IP:PORT (e.g. 127.0.0.1:53), not '" + detail::printable(servers[i]) + "'");
    else
      out.servers.push_back(servers[i]);
  }
  positive(r["timeout_ms"], "resolver timeout_ms", out.timeout_ms, 600000);
}

void Loader::limits(const YAML::Node& l, Limits& lim) {
  if (!check_map(l, "limits",
                 {"header_timeout_ms", "connect_timeout_ms", "idle_timeout_ms", "drain_timeout_ms",
                  "keepalive_timeout_ms", "response_timeout_ms", "request_body_timeout_ms", "tunnel_idle_timeout_ms",
                  "max_header_bytes", "max_headers", "max_request_line_bytes", "max_connections",
                  "max_connections_per_listener", "lua_instruction_budget", "lua_memory_kb", "ask_timeout_ms"}))
    return;
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

void Loader::control(const YAML::Node& c, Config& cfg) {
  if (!check_map(c, "control", {"unix", "state_file", "sandbox_dir"})) return;
  auto& ctl = cfg.control;
  for (auto [key, out] : {std::pair{"unix", &ctl.unix_path}, std::pair{"state_file", &ctl.state_file},
                          std::pair{"sandbox_dir", &ctl.sandbox_dir}}) {
    if (!c[key]) continue;
    if (string(c[key], std::string("control ") + key, *out) && out->empty())
      error(c[key], std::string("control ") + key + " is empty");
  }
  if (!c["unix"]) error(c, "control needs unix: PATH (the control socket)");
  for (const auto& l : cfg.listeners)
    if (l.kind == ListenerConfig::Kind::Unix && l.path == ctl.unix_path)
      error(c["unix"], "control socket " + ctl.unix_path + " is also listener '" + l.name + "'");
}

void Loader::transparent(const YAML::Node& t, TransparentConfig& tc) {
  if (!check_map(t, "transparent", {"fake_ipv4", "fake_ipv6", "max_names", "dns_ttl_s"})) return;
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

// Compiles each policy's scripts and runs their top level once, in a state of
// its own, so a script that cannot load is reported here with its file:line.
void Loader::try_rules(const Config& cfg) {
  for (const auto& [name, policy] : cfg.policies) {
    if (policy->rules.empty()) continue;
    LuaPolicy::LoadError e;
    if (LuaPolicy::load(policy->rules, cfg.limits.lua, LuaEnv{}, &e)) continue;
    const std::string& path = policy->rules[std::min(e.script, policy->rules.size() - 1)].path;
    errors.push_back({path, e.line, 0, one_line(e.message)});
  }
}

}  // namespace config_detail

using config_detail::Loader;

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
