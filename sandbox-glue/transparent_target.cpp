#include "sandbox-glue/transparent_target.hpp"

namespace sluice::glue {

std::optional<std::string> transparent_connect_target(const rules::IpAddr& dst, uint16_t port,
                                                      const rules::FakeIpMap& map,
                                                      const rules::TransparentConfig& cfg) {
  const std::string p = std::to_string(port);
  if (cfg.fake_ipv4.contains(dst) || cfg.fake_ipv6.contains(dst)) {
    auto name = map.name_of(dst);
    if (!name) return std::nullopt;
    return *name + ":" + p;
  }
  if (dst.v6) return "[" + dst.to_string() + "]:" + p;
  return dst.to_string() + ":" + p;
}

std::string transparent_resolv_conf() {
  return "# sluice --transparent: the jail's DNS stub (answers from the policy, never the network)\n"
         "nameserver 127.0.0.1\n"
         "options attempts:2 timeout:2\n";
}

}  // namespace sluice::glue
