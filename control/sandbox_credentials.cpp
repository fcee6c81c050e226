#include "control/sandbox_credentials.hpp"

#include "proxy/stand_in_table.hpp"
#include "rules/git_extra_headers.hpp"

namespace sluice::proxy {

using rules::Json;

void issue_sandbox_credentials(rules::ListenerConfig& listener, const rules::Policy& policy, const std::string& ca_pem,
                               Json& answer) {
  if (!ca_pem.empty() && policy.inspects_anything()) answer.set("ca", Json::string(ca_pem));
  if (policy.credentials.empty()) return;
  listener.stand_ins = StandInTable::process().issue(listener.name, policy.credentials);
  Json list = Json::array();
  for (const auto& [name, stand_in] : listener.stand_ins) {
    Json e = Json::object();
    e.set("name", Json::string(name));
    e.set("stand_in", Json::string(stand_in));
    Json env = Json::array();
    for (const auto& c : policy.credentials)
      if (c->name == name) {
        for (const auto& var : c->env) env.push(Json::string(var));
        if (!c->secret_env.empty()) e.set("secret_env", Json::string(c->secret_env));
      }
    e.set("env", std::move(env));
    list.push(std::move(e));
  }
  answer.set("credentials", std::move(list));
  Json git = Json::array();
  for (const auto& h : rules::git_extra_headers(policy, listener.stand_ins)) {
    Json e = Json::object();
    e.set("url", Json::string(h.url));
    e.set("header", Json::string(h.header));
    git.push(std::move(e));
  }
  answer.set("git_config", std::move(git));
}

void forget_sandbox_credentials(const std::string& sandbox) { StandInTable::process().forget(sandbox); }

}  // namespace sluice::proxy
