#include "cli/flag_config.hpp"

#include "rules/host.hpp"
#include "rules/ip.hpp"

namespace sluice::cli {

rules::Result<std::shared_ptr<rules::Config>> config_from_flags(const Args& a) {
  auto cfg = std::make_shared<rules::Config>();
  cfg->source = "<flags>";
  int n = 0;
  for (const auto& spec : a.all("--listen")) {
    rules::ListenerConfig l;
    l.name = "listener" + std::to_string(++n);
    if (spec.rfind("unix:", 0) == 0) {
      l.kind = rules::ListenerConfig::Kind::Unix;
      l.path = spec.substr(5);
      if (l.path.empty()) return rules::Err{"--listen unix: needs a path"};
    } else {
      auto hp = rules::parse_tcp_listen_address(spec);
      if (!hp) return rules::Err{"--listen " + spec + ": expected unix:PATH or IP:PORT (e.g. 127.0.0.1:3128)"};
      l.kind = rules::ListenerConfig::Kind::Tcp;
      l.host = hp->host;
      l.port = hp->port;
    }
    cfg->listeners.push_back(l);
  }
  if (cfg->listeners.empty()) return rules::Err{"no listener: give --listen ADDR or --config FILE"};
  std::string def = a.one("--default", "deny");
  if (def != "deny" && def != "allow" && def != "ask")
    return rules::Err{"--default must be deny, allow or ask, not " + def};
  auto policy = rules::make_policy("default",
                                   def == "allow" ? rules::Action::Allow
                                   : def == "ask" ? rules::Action::Ask
                                                  : rules::Action::Deny,
                                   a.all("--allow"), a.all("--deny"));
  if (!policy) return rules::Err{policy.error()};
  cfg->policies["default"] = policy.value();
  for (const auto& s : a.all("--dns-server")) {
    auto hp = rules::split_host_port(s);
    if (!hp || !rules::IpAddr::parse(hp->host)) return rules::Err{"--dns-server " + s + ": expected IP:PORT"};
    cfg->resolver.servers.push_back(s);
  }
  cfg->log.path = a.one("--log", "-");
  return cfg;
}

}  // namespace sluice::cli
