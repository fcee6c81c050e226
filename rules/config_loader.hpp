// Private to rules/: the YAML config loader, split by section over config*.cpp.
// Every error carries file:line:column; all errors are collected.
#pragma once
#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rules/config.hpp"

namespace sluice::rules::config_detail {

// One error, one line: control bytes in a quoted value (yaml-cpp quotes even a newline raw)
// become \xNN.
std::string one_line(const std::string& message);

// Paths in a config (rules, secrets, CA files) are relative to the config file's directory.
std::string directory_of(const std::string& file);

// "" on success, else why the file could not be read. Regular files only, at most 1 MiB.
std::string read_file(const std::string& path, std::string& out);

class Loader {
 public:
  Loader(std::string file, bool policy_file) : file_(std::move(file)), policy_file_(policy_file) {}
  std::vector<ConfigError> errors;

  std::shared_ptr<Config> load(const YAML::Node& root);

  // ---- values (config_loader.cpp) ----
  void error(const YAML::Node& at, const std::string& message);
  // Every key of `map` must be one of `known`; with `any_key`, only repeated keys are errors.
  bool check_map(const YAML::Node& map, const std::string& what, std::initializer_list<const char*> known,
                 bool any_key = false);
  bool string(const YAML::Node& n, const std::string& what, std::string& out);
  void boolean(const YAML::Node& n, const std::string& what, bool& out);
  std::vector<std::string> string_list(const YAML::Node& n, const std::string& what, std::vector<YAML::Node>* nodes);
  // An allow or deny list: host patterns ("github.com", "10.0.0.0/8"), path-scoped strings
  // ("github.com/myorg/") and maps ({host:, path:, methods: [...]}).
  void entries(const YAML::Node& list, const std::string& what, HostSet& hosts, std::vector<PathEntry>& paths);
  // A list of host patterns only (inspect, inspect_exclude, credential hosts).
  void patterns(const YAML::Node& list, const std::string& what, HostSet& hosts);

  // A positive integer no larger than `max`.
  template <class T>
  void positive(const YAML::Node& n, const std::string& what, T& out, long long max) {
    whole_number(n, what, out, 1, max, "a positive integer");
  }
  // The same with 0 allowed (where 0 turns something off).
  template <class T>
  void non_negative(const YAML::Node& n, const std::string& what, T& out, long long max) {
    whole_number(n, what, out, 0, max, "an integer from 0");
  }
  // An integer from `min` to `max`, written in digits only; `kind` names the range in errors.
  template <class T>
  void whole_number(const YAML::Node& n, const std::string& what, T& out, long long min, long long max,
                    const char* kind) {
    if (!n) return;
    if (!n.IsScalar()) return error(n, what + " must be " + kind);
    const std::string& s = n.Scalar();
    long long v = 0;
    bool ok = !s.empty() && s.size() <= 18;
    for (char c : s) ok = ok && c >= '0' && c <= '9';
    if (ok) v = std::stoll(s);
    if (!ok || v < min || v > max)
      return error(n, what + " must be " + kind + " up to " + std::to_string(max) + ", not '" + s + "'");
    out = static_cast<T>(v);
  }

  // ---- policies (config_policy.cpp) ----
  std::shared_ptr<Policy> policy(const std::string& name, const YAML::Node& n);
  void gateway_credentials(const YAML::Node& list, const std::string& what, Policy& p);
  void git_rules(const YAML::Node& list, const std::string& what, std::vector<GitRule>& out);

  // ---- secrets and the sections that hold them (config_secrets.cpp) ----
  // A string, {env: VAR} or {file: PATH} (or {command: [ARGV]}); its value is never quoted in an error.
  std::optional<std::string> secret(const YAML::Node& n, const std::string& what, bool allow_command = false);
  std::shared_ptr<const UpstreamProxy> upstream_proxy(const YAML::Node& n, const std::string& what);
  std::optional<Credentials> credentials(const YAML::Node& n, const std::string& what);
  void tls(const YAML::Node& t, TlsConfig& out);

 private:
  // ---- the top-level sections (config.cpp) ----
  void listener(const YAML::Node& n, Config& cfg, std::set<std::string>& names, std::set<std::string>& addrs);
  void policies(const YAML::Node& ps, Config& cfg);
  void listeners(const YAML::Node& root, Config& cfg);
  void resolver(const YAML::Node& r, ResolverConfig& out);
  void limits(const YAML::Node& l, Limits& out);
  void control(const YAML::Node& c, Config& cfg);
  void transparent(const YAML::Node& t, TransparentConfig& out);
  void try_rules(const Config& cfg);

  std::string file_;
  bool policy_file_;
  std::vector<YAML::Node> policy_refs_;
};

}  // namespace sluice::rules::config_detail
