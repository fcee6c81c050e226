// `sluice check`: validate a config, or ask "would HOST[:PORT] be allowed, and why?".
#include <cstdio>
#include <string>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "rules/config.hpp"
#include "rules/host.hpp"

namespace sluice::cli {

namespace {

const char* kCheckUsage =
    "usage: sluice check --config FILE [--listener NAME] [HOST[:PORT]]\n"
    "\n"
    "Without HOST: validates FILE and prints a summary (exit 0), or every error as\n"
    "FILE:LINE:COLUMN: message (exit 2).\n"
    "With HOST: prints the verdict for a connection to HOST:PORT (default port 443)\n"
    "through listener NAME (needed when the config has several listeners with\n"
    "different policies) and the rule that decided. Exit 0 allow, 1 deny, 2 error.\n";

}  // namespace

int check_main(int argc, char** argv) {
  Args a = parse_args(argc, argv, 1, {"--config", "--listener"}, {"--help", "-h"});
  if (a.has("--help") || a.has("-h")) {
    std::fputs(kCheckUsage, stdout);
    return 0;
  }
  if (!a.error.empty()) {
    std::fprintf(stderr, "sluice check: %s (see sluice check --help)\n", a.error.c_str());
    return 2;
  }
  if (!a.has("--config")) {
    std::fprintf(stderr, "sluice check: --config FILE is required (see sluice check --help)\n");
    return 2;
  }
  if (a.positional.size() > 1) {
    std::fprintf(stderr, "sluice check: one HOST[:PORT] at a time\n");
    return 2;
  }
  auto load = rules::load_config_file(a.one("--config"));
  if (!load.errors.empty()) {
    for (const auto& e : load.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 2;
  }
  const rules::Config& cfg = *load.config;
  if (a.positional.empty()) {
    std::printf("%s: OK (%zu listeners, %zu policies)\n", cfg.source.c_str(), cfg.listeners.size(),
                cfg.policies.size());
    return 0;
  }

  // Which policy: the named listener's, or the only one the listeners use.
  std::string policy_name;
  if (a.has("--listener")) {
    for (const auto& l : cfg.listeners)
      if (l.name == a.one("--listener")) policy_name = l.policy;
    if (policy_name.empty()) {
      std::fprintf(stderr, "sluice check: no listener named '%s' in %s\n", a.one("--listener").c_str(),
                   cfg.source.c_str());
      return 2;
    }
  } else {
    for (const auto& l : cfg.listeners) {
      if (policy_name.empty()) policy_name = l.policy;
      else if (policy_name != l.policy) {
        std::fprintf(stderr, "sluice check: listeners use different policies; pick one with --listener NAME\n");
        return 2;
      }
    }
  }
  const rules::Policy* policy = cfg.policy(policy_name);
  if (policy == nullptr) {
    std::fprintf(stderr, "sluice check: policy '%s' is not defined\n", policy_name.c_str());
    return 2;
  }

  std::string target = a.positional.front();
  std::string raw_host = target;
  uint16_t port = 443;
  bool bracketed_only = target.size() > 1 && target.front() == '[' && target.back() == ']';
  bool has_port = !bracketed_only && target.find(':') != std::string::npos &&
                  (target.front() == '[' || target.find(':') == target.rfind(':'));
  if (has_port) {
    auto hp = rules::split_host_port(target);
    if (!hp) {
      std::fprintf(stderr, "sluice check: %s\n", hp.error().c_str());
      return 2;
    }
    raw_host = hp->host;
    port = hp->port;
  }
  auto host = rules::canonicalize_host(raw_host);
  if (!host) {
    std::fprintf(stderr, "sluice check: %s\n", host.error().c_str());
    return 2;
  }
  rules::Verdict v = policy->judge(host.value(), port);
  std::string shown = (host->kind == rules::HostKind::Ip && host->addr.v6 ? "[" + host->text + "]" : host->text) +
                      ":" + std::to_string(port);
  std::printf("%s %s: policy \"%s\", rule \"%s\" (%s)\n", rules::to_string(v.action), shown.c_str(),
              v.policy.c_str(), v.rule.c_str(), v.reason.c_str());
  return v.allowed() ? 0 : 1;
}

}  // namespace sluice::cli
