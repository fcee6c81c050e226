#include "sandbox-glue/proxy_env.hpp"

namespace sluice::glue {

EnvList proxy_environment(uint16_t port, const std::string& sluice) {
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const std::string no_proxy = "localhost,127.0.0.1,::1";
  EnvList env = {
      {"HTTP_PROXY", url},
      {"HTTPS_PROXY", url},
      {"ALL_PROXY", url},
      {"http_proxy", url},
      {"https_proxy", url},
      {"all_proxy", url},
      {"NO_PROXY", no_proxy},
      {"no_proxy", no_proxy},
      {"GRPC_PROXY", url},
      {"grpc_proxy", url},
      {"npm_config_proxy", url},
      {"npm_config_https_proxy", url},
      {"PIP_PROXY", url},
      {"DOCKER_HTTP_PROXY", url},
      {"DOCKER_HTTPS_PROXY", url},
      {"CLOUDSDK_PROXY_TYPE", "http"},
      {"CLOUDSDK_PROXY_ADDRESS", "127.0.0.1"},
      {"CLOUDSDK_PROXY_PORT", std::to_string(port)},
      // ssh (and git over ssh) cannot use a proxy by itself: relay through SOCKS5, so that a
      // policy's in-band reason (ssh_in_band_reason) reaches ssh as a disconnect message.
      {"GIT_SSH_COMMAND",
       "ssh -o ProxyCommand='" + sluice + " connect --proxy socks5h://127.0.0.1:" + std::to_string(port) + " %h %p'"},
      {"SLUICE_SANDBOX", "1"},
  };
  return env;
}

}  // namespace sluice::glue
