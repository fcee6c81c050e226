// A daemon sandbox's part of the credential gateway (docs/credentials.md): when the control API
// makes a sandbox whose policy has `credentials:`, the daemon issues a stand-in per credential for
// it (proxy/stand_in_table.hpp) and answers the launcher with what the jail needs. Kept apart from
// the sandbox registry (control_plane.cpp calls these two functions only).
#pragma once
#include <string>

#include "rules/config.hpp"
#include "rules/json.hpp"
#include "rules/policy.hpp"

namespace sluice::proxy {

// Issues `listener`'s stand-ins (for `policy`'s credentials) into the process's stand-in table and
// into `listener.stand_ins`, and adds to `answer` (the create response) what `sluice run --daemon`
// exports into the jail: "credentials" [{name, stand_in, env, secret_env}], "git_config"
// [{url, header}] (stand-ins only), and "ca" (the inspection CA's certificate, `ca_pem`, when
// the policy inspects anything). The real secrets never go in it. No credentials: nothing added.
void issue_sandbox_credentials(rules::ListenerConfig& listener, const rules::Policy& policy, const std::string& ca_pem,
                               rules::Json& answer);
// The sandbox's stand-ins are no longer honoured or recognised anywhere.
void forget_sandbox_credentials(const std::string& sandbox);

}  // namespace sluice::proxy
