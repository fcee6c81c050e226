// The YAML loader: a full good file, then one row per error kind with its exact
// line:column, then several errors at once.
#include <doctest/doctest.h>

#include <string>

#include "rules/config.hpp"

using namespace sluice::rules;

namespace {

Verdict judge(const Config& cfg, const std::string& policy, const std::string& host, uint16_t port) {
  const Policy* p = cfg.policy(policy);
  REQUIRE(p != nullptr);
  return p->judge(canonicalize_host(host).value(), port);
}

std::string all_errors(const ConfigLoad& load) {
  std::string out;
  for (const auto& e : load.errors) out += e.to_string() + "\n";
  return out;
}

}  // namespace

TEST_CASE("a full config file loads with every value") {
  const std::string path = std::string(SLUICE_TEST_DATA) + "/full.yaml";
  ConfigLoad load = load_config_file(path);
  INFO(all_errors(load));
  REQUIRE(load.errors.empty());
  REQUIRE(load.config);
  const Config& cfg = *load.config;
  CHECK(cfg.source == path);

  REQUIRE(cfg.listeners.size() == 4);
  const auto& l0 = cfg.listeners[0];
  CHECK(l0.name == "agent1");
  CHECK(l0.kind == ListenerConfig::Kind::Unix);
  CHECK(l0.path == "/run/sluice/agent1.sock");
  CHECK(l0.mode == 0600);
  CHECK(l0.policy == "agents");
  const auto& l1 = cfg.listeners[1];
  CHECK(l1.kind == ListenerConfig::Kind::Tcp);
  CHECK(l1.host == "127.0.0.1");
  CHECK(l1.port == 3128);
  CHECK(l1.policy == "default");
  REQUIRE(l1.auth.has_value());
  CHECK(l1.auth->username == "agent");
  CHECK(l1.auth->password == "s3cret:with-colon");
  CHECK_FALSE(l0.auth.has_value());
  CHECK(cfg.listeners[2].host == "::1");
  CHECK(cfg.listeners[2].port == 0);
  CHECK(cfg.listeners[3].path == "sockets/rel.sock");  // relative paths stay as written

  // "default" is used but not defined: an implicit deny-everything policy.
  REQUIRE(cfg.policies.size() == 4);
  const Policy* def = cfg.policy("default");
  REQUIRE(def != nullptr);
  CHECK(def->allow.empty());
  CHECK(def->deny.empty());
  CHECK(def->default_action == Action::Deny);
  CHECK(cfg.policy("agents")->ssh_in_band_reason);
  CHECK_FALSE(cfg.policy("open")->ssh_in_band_reason);
  CHECK(cfg.policy("nope") == nullptr);

  CHECK(sluice::rules::to_string(judge(cfg, "agents", "api.github.com", 443).reason) == "allowed-by-rule");
  CHECK(sluice::rules::to_string(judge(cfg, "agents", "api.example.com", 80).reason) == "not-in-allowlist");
  CHECK(sluice::rules::to_string(judge(cfg, "agents", "x.evil.example", 443).reason) == "denied-by-rule");
  CHECK(judge(cfg, "agents", "2001:db8::1", 443).rule == "[2001:db8::1]:443");
  CHECK(sluice::rules::to_string(judge(cfg, "open", "anything.test", 22).reason) == "default-allow");
  CHECK(sluice::rules::to_string(judge(cfg, "open", "169.254.169.254", 80).reason) == "denied-by-rule");
  CHECK(sluice::rules::to_string(judge(cfg, "default", "github.com", 443).reason) == "not-in-allowlist");
  const Policy* agents = cfg.policy("agents");
  REQUIRE(agents->rules.size() == 1);
  CHECK(agents->rules[0].name == "full.lua");
  CHECK(agents->rules[0].path == std::string(SLUICE_TEST_DATA) + "/full.lua");
  CHECK(agents->rules[0].text.find("function on_connect(c)") != std::string::npos);
  CHECK(agents->on_error == Action::Allow);
  CHECK(agents->mode == Policy::Mode::Report);
  CHECK(cfg.policy("open")->rules.empty());

  CHECK(cfg.resolver.servers == std::vector<std::string>{"127.0.0.1:5353", "[::1]:53"});
  CHECK(cfg.resolver.timeout_ms == 2500);
  CHECK(cfg.limits.header_timeout_ms == 5000);
  CHECK(cfg.limits.connect_timeout_ms == 7000);
  CHECK(cfg.limits.idle_timeout_ms == 300000);
  CHECK(cfg.limits.drain_timeout_ms == 3000);
  CHECK(cfg.limits.max_header_bytes == 32768);
  CHECK(cfg.limits.max_connections == 500);
  CHECK(cfg.limits.lua.instruction_budget == 123456);
  CHECK(cfg.limits.lua.memory_bytes == 4096 * 1024);
  CHECK(cfg.log.path == "/var/log/sluice/decisions.log");
  CHECK(cfg.limits.ask_timeout_ms == 30000);
  CHECK(cfg.control.unix_path == "/run/sluice/control.sock");
  CHECK(cfg.control.state_path() == "/var/lib/sluice/state.json");
  CHECK(cfg.control.sandbox_path() == "/run/sluice/sandboxes");
  CHECK(judge(cfg, "asking", "new.example", 443).action == Action::Ask);
  CHECK(sluice::rules::to_string(judge(cfg, "asking", "new.example", 443).reason) == "ask-by-default");
  CHECK(sluice::rules::to_string(judge(cfg, "asking", "known.example", 443).reason) == "allowed-by-rule");
}

TEST_CASE("a minimal config takes every default") {
  ConfigLoad load = load_config_text("listeners:\n  - name: a\n    tcp: 127.0.0.1:3128\n", "min.yaml");
  INFO(all_errors(load));
  REQUIRE(load.config);
  const Config& cfg = *load.config;
  CHECK(cfg.source == "min.yaml");
  CHECK(cfg.listeners[0].policy == "default");
  CHECK(cfg.listeners[0].mode == 0660);
  CHECK(cfg.policy("default") != nullptr);
  CHECK(cfg.resolver.servers.empty());
  CHECK(cfg.resolver.timeout_ms == 5000);
  CHECK(cfg.limits.header_timeout_ms == 10000);
  CHECK(cfg.limits.connect_timeout_ms == 10000);
  CHECK(cfg.limits.idle_timeout_ms == 600000);
  CHECK(cfg.limits.drain_timeout_ms == 10000);
  CHECK(cfg.limits.max_header_bytes == 65536);
  CHECK(cfg.limits.max_connections == 10000);
  CHECK(cfg.log.path == "-");
  CHECK(cfg.limits.ask_timeout_ms == 60000);
  CHECK_FALSE(cfg.control.enabled());
  CHECK(cfg.control.state_path().empty());
  CHECK(cfg.transparent.fake_ipv4.to_string() == "198.18.0.0/15");
  CHECK(cfg.transparent.fake_ipv6.to_string() == "fd73:6c75:6963:6500::/64");
  CHECK(cfg.transparent.max_names == 65536);
  CHECK(cfg.transparent.dns_ttl_s == 5);
}

TEST_CASE("transparent: the fake ranges, name bound and TTL are read") {
  ConfigLoad load = load_config_text(
      "listeners:\n  - name: a\n    tcp: 127.0.0.1:3128\n"
      "transparent:\n  fake_ipv4: 10.99.0.0/16\n  fake_ipv6: \"fd00:1:2:3::/64\"\n  max_names: 100\n  dns_ttl_s: 30\n",
      "t.yaml");
  INFO(all_errors(load));
  REQUIRE(load.config);
  const auto& t = load.config->transparent;
  CHECK(t.fake_ipv4.to_string() == "10.99.0.0/16");
  CHECK(t.fake_ipv6.to_string() == "fd00:1:2:3::/64");
  CHECK(t.max_names == 100);
  CHECK(t.dns_ttl_s == 30);
}

TEST_CASE("tls: the CA files, upstream roots and cache size are read; relative paths follow the file") {
  ConfigLoad load = load_config_text(R"(listeners:
  - {name: a, tcp: 127.0.0.1:3128}
policies:
  default:
    inspect: [api.test, "*.corp.test"]
    inspect_exclude: [pinned.corp.test]
tls:
  ca_cert: ca/ca.crt
  ca_key: /etc/sluice/ca.key
  upstream_ca: [roots.pem, /abs/other.pem]
  leaf_cache: 50
  session_cache: 20
)",
                                     "/etc/sluice/sluice.yaml");
  INFO(all_errors(load));
  REQUIRE(load.config);
  const auto& t = load.config->tls;
  CHECK(t.ca_cert == "/etc/sluice/ca/ca.crt");
  CHECK(t.ca_key == "/etc/sluice/ca.key");
  CHECK(t.upstream_ca == std::vector<std::string>{"/etc/sluice/roots.pem", "/abs/other.pem"});
  CHECK(t.leaf_cache == 50);
  CHECK(t.session_cache == 20);
  const auto* p = load.config->policy("default");
  REQUIRE(p != nullptr);
  auto h = [](const char* text) { return sluice::rules::canonicalize_host(text).value(); };
  CHECK(p->inspects(h("api.test"), 443));
  CHECK(p->inspects(h("x.corp.test"), 443));
  CHECK_FALSE(p->inspects(h("pinned.corp.test"), 443));  // excluded
  CHECK_FALSE(p->inspects(h("other.test"), 443));
  CHECK(p->inspects_anything());
}

TEST_CASE("tls session_cache: 1000 unless set; 0 (no upstream session kept) and the ceiling are accepted") {
  const std::string L = "listeners: [{name: a, tcp: \"127.0.0.1:1\"}]\n";
  for (auto [tls, expected] :
       {std::pair{"", 1000}, std::pair{"tls: {leaf_cache: 5}\n", 1000}, std::pair{"tls: {session_cache: 0}\n", 0},
        std::pair{"tls: {session_cache: 1}\n", 1}, std::pair{"tls: {session_cache: 1048576}\n", 1048576}}) {
    CAPTURE(tls);
    ConfigLoad load = load_config_text(L + tls, "t.yaml");
    INFO(all_errors(load));
    REQUIRE(load.config);
    CHECK(load.config->tls.session_cache == size_t(expected));
  }
}

TEST_CASE("control: the state file and sandbox directory default next to the socket") {
  ConfigLoad load =
      load_config_text("listeners: [{name: a, tcp: \"127.0.0.1:1\"}]\ncontrol: {unix: /r/c.sock}\n", "t.yaml");
  INFO(all_errors(load));
  REQUIRE(load.config);
  CHECK(load.config->control.enabled());
  CHECK(load.config->control.state_path() == "/r/c.sock.state.json");
  CHECK(load.config->control.sandbox_path() == "/r/c.sock.sandboxes");
}

TEST_CASE("a defined default policy is the one used") {
  ConfigLoad load = load_config_text(
      "listeners: [{name: a, tcp: \"127.0.0.1:1\"}]\npolicies:\n  default: {default: allow}\n", "t.yaml");
  REQUIRE(load.config);
  CHECK(load.config->policy("default")->default_action == Action::Allow);
}

TEST_CASE("policy files: listeners are optional") {
  ConfigLoad load = load_config_text("policies:\n  default:\n    allow: [github.com]\n", "p.yaml", true);
  INFO(all_errors(load));
  REQUIRE(load.config);
  CHECK(load.config->listeners.empty());
  CHECK(load.config->policy("default")->allow.size() == 1);
  CHECK_FALSE(load_config_text("policies:\n  default:\n    allow: [\"*\"]\n", "p.yaml", true).config);
}

TEST_CASE("config errors: one row per kind, with line:column") {
  const std::string L = "listeners:\n  - name: a\n    tcp: 127.0.0.1:3128\n";  // lines 1-3, valid
  struct Row {
    std::string text;
    int line, column;
    const char* message;  // a substring
  };
  const Row rows[] = {
      // Unknown keys, at every level.
      {L + "bogus: 1\n", 4, 1, "unknown key 'bogus' in the config (expected one of: listeners, policies"},
      {L + "    polcy: x\n", 4, 5, "unknown key 'polcy' in listener"},
      {L + "policies:\n  p:\n    alow: [x.test]\n", 6, 5, "unknown key 'alow' in policy 'p'"},
      {L + "resolver:\n  server: []\n", 5, 3, "unknown key 'server' in resolver"},
      {L + "limits:\n  idle_timeout: 1\n", 5, 3, "unknown key 'idle_timeout' in limits"},
      {L + "log:\n  file: x\n", 5, 3, "unknown key 'file' in log"},
      {L + "transparent:\n  fake_ip: 10.0.0.0/8\n", 5, 3, "unknown key 'fake_ip' in transparent"},
      {L + "transparent:\n  fake_ipv4: 10.0.0.1/8\n", 5, 14, "transparent fake_ipv4 must be a CIDR block"},
      {L + "transparent:\n  fake_ipv4: \"fd00::/64\"\n", 5, 14, "transparent fake_ipv4 must be an IPv4 block"},
      {L + "transparent:\n  fake_ipv6: 10.0.0.0/8\n", 5, 14, "transparent fake_ipv6 must be an IPv6 block"},
      {L + "transparent:\n  fake_ipv4: 10.0.0.0/31\n", 5, 14, "prefix from /8 to /30"},
      {L + "transparent:\n  fake_ipv4: 127.0.0.0/16\n", 5, 14, "must not overlap loopback"},
      {L + "transparent:\n  fake_ipv4: 96.0.0.0/3\n", 5, 14, "prefix from /8 to /30"},
      {L + "transparent:\n  fake_ipv6: \"fd00::/48\"\n", 5, 14, "prefix from /64 to /120"},
      {L + "transparent:\n  fake_ipv6: \"::/64\"\n", 5, 14, "must not overlap loopback"},
      {L + "transparent:\n  max_names: 0\n", 5, 14, "transparent max_names must be a positive integer"},
      {L + "transparent:\n  dns_ttl_s: 86401\n", 5, 14, "transparent dns_ttl_s must be a positive integer up to 86400"},
      {L + "transparent: [x]\n", 4, 14, "transparent must be a mapping"},
      {L + "tls:\n  ca: x\n", 5, 3, "unknown key 'ca' in tls"},
      {L + "tls:\n  ca_cert: /x.crt\n", 5, 3, "tls needs both ca_cert and ca_key"},
      {L + "tls:\n  ca_cert: \"\"\n  ca_key: /k\n", 5, 12, "tls ca_cert is empty"},
      {L + "tls:\n  upstream_ca: /x.crt\n", 5, 16, "tls upstream_ca must be a list"},
      {L + "tls:\n  leaf_cache: 0\n", 5, 15, "tls leaf_cache must be a positive integer"},
      {L + "tls:\n  session_cache: -1\n", 5, 18, "tls session_cache must be an integer from 0 up to 1048576, not '-1'"},
      {L + "tls:\n  session_cache: 1048577\n", 5, 18, "tls session_cache must be an integer from 0 up to 1048576"},
      {L + "tls:\n  session_cache: 1.5\n", 5, 18, "not '1.5'"},
      {L + "tls:\n  session_cache: lots\n", 5, 18, "not 'lots'"},
      {L + "tls:\n  session_cache: [1]\n", 5, 18, "tls session_cache must be an integer from 0"},
      {L + "policies:\n  p:\n    inspect: [\"bad host!\"]\n", 6, 15, "policy 'p' inspect: "},
      {L + "policies:\n  p:\n    inspect_exclude: x.test\n", 6, 22, "policy 'p' inspect_exclude must be a list"},
      {L + "listeners: []\n", 4, 1, "duplicate key 'listeners' in the config"},
      // Shapes and types.
      {"hello\n", 1, 1, "the config must be a mapping"},
      {"policies: {}\n", 1, 1, "listeners: is required"},
      {"listeners:\n  name: a\n", 2, 3, "listeners must be a non-empty list"},
      {"listeners: []\n", 1, 12, "listeners must be a non-empty list"},
      {"listeners:\n  - just-a-string\n", 2, 5, "listener must be a mapping"},
      {L + "policies: [a]\n", 4, 11, "policies must be a mapping"},
      {L + "policies:\n  p: [x.test]\n", 5, 6, "policy 'p' must be a mapping"},
      {L + "policies:\n  p:\n    allow: {x: y}\n", 6, 12, "policy 'p' allow must be a list"},
      {L + "policies:\n  p:\n    deny: x.test\n", 6, 11, "policy 'p' deny must be a list"},
      {L + "policies:\n  p:\n    allow: [[x]]\n", 6, 13,
       "policy 'p' allow entries must be strings or {host:, path:, methods:} maps"},
      {L + "policies:\n  p:\n    default: maybe\n", 6, 14, "default must be deny, allow or ask, not 'maybe'"},
      // The control socket.
      {L + "control:\n  socket: /x\n", 5, 3, "unknown key 'socket' in control"},
      {L + "control:\n  state_file: /x\n", 5, 3, "control needs unix: PATH"},
      {L + "control: /x\n", 4, 10, "control must be a mapping"},
      {L + "control:\n  unix: \"\"\n", 5, 9, "control unix is empty"},
      {L + "control:\n  unix: [a]\n", 5, 9, "control unix must be a string"},
      {"listeners:\n  - {name: a, unix: /s}\ncontrol: {unix: /s}\n", 3, 17, "control socket /s is also listener 'a'"},
      {L + "limits:\n  ask_timeout_ms: 0\n", 5, 19, "ask_timeout_ms must be a positive integer"},
      {L + "resolver:\n  servers: 127.0.0.1:53\n", 5, 12, "resolver servers must be a list"},
      {L + "log:\n  path: [a]\n", 5, 9, "log path must be a string"},
      {L + "log: stdout\n", 4, 6, "log must be a mapping"},
      // Numbers: positive integers only, with a ceiling.
      {L + "limits:\n  header_timeout_ms: 10s\n", 5, 22, "header_timeout_ms must be a positive integer"},
      {L + "limits:\n  connect_timeout_ms: -5\n", 5, 23, "not '-5'"},
      {L + "limits:\n  idle_timeout_ms: 0\n", 5, 20, "idle_timeout_ms must be a positive integer"},
      {L + "limits:\n  drain_timeout_ms: 1.5\n", 5, 21, "drain_timeout_ms must be a positive integer"},
      {L + "limits:\n  max_header_bytes: 99999999999\n", 5, 21, "max_header_bytes must be a positive integer up to"},
      {L + "limits:\n  max_connections: {n: 1}\n", 5, 20, "max_connections must be a positive integer"},
      {L + "resolver:\n  timeout_ms: \"\"\n", 5, 15, "resolver timeout_ms must be a positive integer"},
      // Patterns: the error points at the list item.
      {L + "policies:\n  p:\n    allow:\n      - github.com\n      - \"a.*.b\"\n", 8, 9,
       "bad pattern \"a.*.b\": '*' is only allowed as a whole first label"},
      {L + "policies:\n  p:\n    deny: [ok.test, \"10.0.0.1/8\"]\n", 6, 21,
       "bad pattern \"10.0.0.1/8\": not a CIDR block"},
      {L + "policies:\n  p:\n    allow: [\"x.test:99999\"]\n", 6, 13, "port must be a number from 1 to 65535"},
      // Listeners.
      {L + "  - name: a\n    tcp: 127.0.0.1:3129\n", 4, 11, "duplicate listener name 'a'"},
      {L + "  - name: b c\n    tcp: 127.0.0.1:3129\n", 4, 11, "listener name 'b c' may only use"},
      {L + "  - tcp: 127.0.0.1:3129\n", 4, 5, "listener needs a name"},
      {L + "  - name: \"b\\x01\"\n    tcp: 127.0.0.1:3129\n", 4, 11, "listener name 'b\\x01' may only use"},
      {L + "  - name: b\n    tcp: 127.0.0.1:3128\n", 5, 10, "address 127.0.0.1:3128 used twice"},
      {"listeners:\n  - {name: a, tcp: \"[::1]:80\"}\n  - {name: b, tcp: \"[0::1]:80\"}\n", 3, 20,
       "address [0::1]:80 used twice"},
      {"listeners:\n  - {name: a, unix: /s}\n  - {name: b, unix: /s}\n", 3, 21, "unix path /s used twice"},
      {L + "  - name: b\n    unix: /s\n    tcp: 127.0.0.1:1\n", 4, 5,
       "listener 'b' needs exactly one of unix: or tcp:"},
      {L + "  - name: b\n", 4, 5, "listener 'b' needs exactly one of unix: or tcp:"},
      {L + "  - name: b\n    unix: \"\"\n", 5, 11, "unix path is empty"},
      {"listeners:\n  - name: a\n    tcp: nowhere\n", 3, 10, "tcp must be IP:PORT or [IPv6]:PORT"},
      {"listeners:\n  - name: a\n    tcp: 127.0.0.1:65536\n", 3, 10, "not '127.0.0.1:65536'"},
      {"listeners:\n  - name: a\n    tcp: ::1:80\n", 3, 10, "tcp must be"},
      {"listeners:\n  - name: a\n    tcp: localhost:80\n", 3, 10, "tcp must be"},
      {L + "    mode: \"0660\"\n", 4, 11, "mode applies to unix listeners only"},
      {"listeners:\n  - name: a\n    unix: /s\n    mode: \"0999\"\n", 4, 11, "mode must be an octal string"},
      {"listeners:\n  - name: a\n    unix: /s\n    mode: rw\n", 4, 11, "mode must be an octal string"},
      {L + "    policy: nope\n", 4, 13, "listener 'a' uses undefined policy 'nope'"},
      {L + "resolver:\n  servers: [\"127.0.0.1:53\", dns.google:53]\n", 5, 29,
       "resolver server must be IP:PORT (e.g. 127.0.0.1:53), not 'dns.google:53'"},
      {L + "resolver:\n  servers: [\"8.8.8.8\"]\n", 5, 13, "not '8.8.8.8'"},
      // Listener credentials and policy switches.
      {L + "    auth: agent:secret\n", 4, 11, "listener 'a' auth must be a mapping"},
      {L + "    auth: {username: u}\n", 4, 11, "listener 'a' auth needs a password"},
      {L + "    auth: {password: p}\n", 4, 11, "listener 'a' auth needs a username"},
      {L + "    auth: {username: u, password: p, realm: r}\n", 4, 38, "unknown key 'realm' in listener 'a' auth"},
      {L + "    auth: {username: [u], password: p}\n", 4, 22, "listener 'a' auth username must be a string"},
      {L + "    auth: {username: u, password: ~}\n", 4, 35, "listener 'a' auth password must be a string"},
      {L + "    auth: {username: \"\", password: p}\n", 4, 22, "username must be 1 to 255 bytes long"},
      {L + "    auth: {username: u, password: " + std::string(256, 'x') + "}\n", 4, 35,
       "password must be 1 to 255 bytes long"},
      {L + "    auth: {username: \"a:b\", password: p}\n", 4, 22, "username must not contain ':'"},
      {L + "policies:\n  p:\n    ssh_in_band_reason: yes\n", 6, 25, "ssh_in_band_reason must be true or false"},
      // YAML itself.
      {"listeners: [\n", 2, 1, "end of sequence flow not found"},
      {"listeners:\n  - name: a\n   tcp: x\n", 3, 4, "end of sequence not found"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    ConfigLoad load = load_config_text(row.text, "t.yaml");
    INFO(all_errors(load));
    CHECK_FALSE(load.config);
    REQUIRE(load.errors.size() >= 1);
    const ConfigError& e = load.errors.front();
    CHECK(e.file == "t.yaml");
    CHECK(e.line == row.line);
    CHECK(e.column == row.column);
    CHECK(e.message.find(row.message) != std::string::npos);
    CHECK(e.to_string() == "t.yaml:" + std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message);
  }
}

TEST_CASE("config errors without a position") {
  struct Row {
    std::string text;
    const char* message;
  };
  const Row rows[] = {
      {"", "empty config"},
      {"# only a comment\n", "empty config"},
      {"~\n", "empty config"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.text);
    ConfigLoad load = load_config_text(row.text, "t.yaml");
    CHECK_FALSE(load.config);
    REQUIRE(load.errors.size() == 1);
    CHECK(load.errors[0].line == 0);
    CHECK(load.errors[0].message.find(row.message) != std::string::npos);
    CHECK(load.errors[0].to_string() == "t.yaml: " + load.errors[0].message);
  }
  // A message quoting a raw control byte (yaml-cpp does, for bad escapes) still prints as one line.
  ConfigError raw{"t.yaml", 3, 1, "unknown escape character: \n"};
  CHECK(raw.to_string() == "t.yaml:3:1: unknown escape character: \\x0a");
  ConfigLoad bad_escape = load_config_text("- a\n- \"b\\\n\"\n", "t.yaml", true);
  REQUIRE_FALSE(bad_escape.errors.empty());
  CHECK(bad_escape.errors[0].to_string().find('\n') == std::string::npos);
  ConfigLoad missing = load_config_file("/nonexistent/sluice.yaml");
  CHECK_FALSE(missing.config);
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].to_string() == "/nonexistent/sluice.yaml: cannot read: No such file or directory");
  ConfigLoad dir = load_config_file(SLUICE_TEST_DATA);
  CHECK_FALSE(dir.config);
  REQUIRE(dir.errors.size() == 1);
  CHECK(dir.errors[0].to_string() == std::string(SLUICE_TEST_DATA) + ": cannot read: Is a directory");
}

TEST_CASE("config errors are all collected") {
  const std::string text =
      "listeners:\n"                             // 1
      "  - name: a\n"                            // 2
      "    tcp: 127.0.0.1:99999\n"               // 3
      "    policy: missing\n"                    // 4
      "  - name: a\n"                            // 5
      "    unix: /s\n"                           // 6
      "policies:\n"                              // 7
      "  p:\n"                                   // 8
      "    allow: [\"*\", ok.test, \"x*.y\"]\n"  // 9
      "limits:\n"                                // 10
      "  idle_timeout_ms: 0\n"                   // 11
      "  bogus: 1\n";                            // 12
  ConfigLoad load = load_config_text(text, "t.yaml");
  CHECK_FALSE(load.config);
  const std::string got = all_errors(load);
  INFO(got);
  CHECK(load.errors.size() == 7);
  for (const char* want :
       {"t.yaml:9:13: bad pattern \"*\"", "t.yaml:9:27: bad pattern \"x*.y\"", "t.yaml:3:10: tcp must be",
        "t.yaml:5:11: duplicate listener name 'a'", "t.yaml:4:13: listener 'a' uses undefined policy 'missing'",
        "t.yaml:12:3: unknown key 'bogus' in limits", "t.yaml:11:20: idle_timeout_ms must be"})
    CHECK(got.find(want) != std::string::npos);
}

TEST_CASE("the named waits follow idle_timeout_ms unless set, and are checked like the other limits") {
  const std::string head =
      "listeners:\n  - name: a\n    tcp: 127.0.0.1:0\n    policy: p\npolicies:\n  p: {default: deny}\n";
  ConfigLoad follows =
      load_config_text(head + "limits:\n  idle_timeout_ms: 1234\n  response_timeout_ms: 99\n", "t.yaml");
  INFO(all_errors(follows));
  REQUIRE(follows.config);
  const auto& l = follows.config->limits;
  CHECK(l.keepalive_timeout_ms == 1234);
  CHECK(l.request_body_timeout_ms == 1234);
  CHECK(l.tunnel_idle_timeout_ms == 1234);
  CHECK(l.response_timeout_ms == 99);
  ConfigLoad defaults = load_config_text(head, "t.yaml");
  REQUIRE(defaults.config);
  CHECK(defaults.config->limits.tunnel_idle_timeout_ms == 600000);
  ConfigLoad bad = load_config_text(head + "limits:\n  tunnel_idle_timeout_ms: 0\n", "t.yaml");
  CHECK_FALSE(bad.config);
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].line == 8);
  CHECK(bad.errors[0].message.find("tunnel_idle_timeout_ms") != std::string::npos);
}
