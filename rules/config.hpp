// The configuration model and its YAML loader. Errors carry file:line:column.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rules/credentials.hpp"
#include "rules/fake_ip.hpp"
#include "rules/host.hpp"
#include "rules/ip.hpp"
#include "rules/lua_sandbox.hpp"
#include "rules/policy.hpp"
#include "rules/remembered.hpp"

namespace sluice::rules {

struct ListenerConfig {
  enum class Kind { Unix, Tcp };
  std::string name;
  Kind kind = Kind::Tcp;
  std::string path;      // Unix
  std::string host;      // Tcp: IP literal ("127.0.0.1", "::1")
  uint16_t port = 0;     // Tcp
  uint32_t mode = 0660;  // Unix socket file mode
  std::string policy = "default";
  // When set, every client must present these (SOCKS5 username/password, or HTTP
  // Proxy-Authorization Basic); without them SOCKS offers no method and HTTP gets 407.
  std::optional<Credentials> auth;
  // The credential gateway: the stand-in this listener's sandbox was given per credential
  // name (`sluice run` makes them per run). Empty: stand-ins are not honoured here.
  std::vector<std::pair<std::string, std::string>> stand_ins;
};

struct ResolverConfig {
  std::vector<std::string> servers;  // "IP:PORT" or "[v6]:PORT"; empty: system resolv.conf
  int timeout_ms = 5000;
  // The resolved-address check (rules/address_class.hpp): on by default.
  bool check_addresses = true;
  bool allow_private = false;
  std::vector<Cidr> deny_cidrs;
};

struct Limits {
  int header_timeout_ms = 10000;
  int connect_timeout_ms = 10000;
  int idle_timeout_ms = 600000;
  // Each named wait; unset, each is idle_timeout_ms (the one timeout of earlier versions).
  int keepalive_timeout_ms = 600000;     // a kept-alive client connection waiting for its next request
  int response_timeout_ms = 600000;      // a forwarded request waiting for its response head
  int request_body_timeout_ms = 600000;  // a client silent while its request body is still due
  int tunnel_idle_timeout_ms = 600000;   // a tunnel (CONNECT, SOCKS5, upgraded) with no byte either way
  int drain_timeout_ms = 10000;
  size_t max_header_bytes = 65536;
  size_t max_headers = 100;                 // header fields in one request head (431 beyond)
  size_t max_request_line_bytes = 8192;     // request-target length (414 beyond)
  size_t max_connections = 10000;           // open client connections, whole process (503 beyond)
  size_t max_connections_per_listener = 0;  // per listener; 0 = only the process-wide cap
  LuaLimits lua;                            // lua_instruction_budget, lua_memory_kb: per hook call, per state
  int ask_timeout_ms = 60000;               // how long a connection waits for an answer to "ask"
};

// The control API (docs/control-api.md): a unix socket, mode 0600, never bound into a jail.
struct ControlConfig {
  std::string unix_path;    // empty: no control socket
  std::string state_file;   // remembered `always` answers; empty: <unix_path>.state.json
  std::string sandbox_dir;  // where POST /v1/sandboxes makes sockets; empty: <unix_path>.sandboxes
  bool enabled() const { return !unix_path.empty(); }
  std::string state_path() const { return state_file.empty() && enabled() ? unix_path + ".state.json" : state_file; }
  std::string sandbox_path() const { return sandbox_dir.empty() ? unix_path + ".sandboxes" : sandbox_dir; }
};

// TLS inspection (docs/tls.md): the CA that signs leaves, and the upstream trust.
struct TlsConfig {
  std::string ca_cert, ca_key;           // PEM files; both or neither
  std::vector<std::string> upstream_ca;  // extra roots for upstream verification (private CAs)
  size_t leaf_cache = 1000;              // leaves kept (LRU)
  size_t session_cache = 1000;           // upstream targets whose TLS session is kept; 0: none
  bool has_ca() const { return !ca_cert.empty(); }
};

struct LogConfig {
  std::string path = "-";  // "-" is stdout; "" disables
};

struct Config {
  std::string source;  // file path, or "<flags>"
  std::vector<ListenerConfig> listeners;
  std::map<std::string, std::shared_ptr<const Policy>> policies;
  ResolverConfig resolver;
  Limits limits;
  LogConfig log;
  ControlConfig control;
  // The global parent proxy (`upstream_proxy:`), used by every policy without its own.
  std::shared_ptr<const UpstreamProxy> upstream_proxy;
  TransparentConfig transparent;  // used by `sluice run --transparent`
  TlsConfig tls;
  // Answers to asks that are remembered (session and always); replaced, never changed, by
  // the control plane. Null: none.
  std::shared_ptr<const Remembered> remembered;

  const Policy* policy(const std::string& name) const;
  // The parent proxy that carries connections allowed by `policy` (null: dial directly).
  const UpstreamProxy* upstream_for(const Policy* policy) const;
};

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;  // "file:line:column: message" ("file:line: message" without a column)
};

struct ConfigLoad {
  std::shared_ptr<Config> config;  // null when errors is non-empty
  std::vector<ConfigError> errors;
};

// `policy_file`: a file for `sluice run --policy`: listeners are optional (the
// launcher makes its own), everything else is checked as usual.
// Rule scripts are read (relative to the config file's directory), compiled and
// their top level run once, so a broken script is a config error with its
// file:line.
ConfigLoad load_config_file(const std::string& path, bool policy_file = false);
ConfigLoad load_config_text(const std::string& text, const std::string& file_name, bool policy_file = false);

// "IP:PORT" or "[IPv6]:PORT" for a TCP listener; port 0 asks for an ephemeral port.
Result<HostPort> parse_tcp_listen_address(std::string_view spec);

// The paths of every rule script the config reads (to watch them for changes).
std::vector<std::string> rule_files(const Config& config);

// One --allow/--deny value: a host pattern into `hosts`, or a path-scoped entry
// ("github.com/myorg/") into `paths`. An error line (naming `flag`) when it is neither.
std::optional<std::string> add_flag_entry(const std::string& text, const char* flag, HostSet& hosts,
                                          std::vector<PathEntry>& paths);

// Builds a policy from flag-style lists ("--allow", "--deny"); used by serve and run.
Result<std::shared_ptr<Policy>> make_policy(const std::string& name, Action default_action,
                                            const std::vector<std::string>& allow,
                                            const std::vector<std::string>& deny);

}  // namespace sluice::rules
