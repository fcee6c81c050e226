#include "sandbox-glue/transparent_target.hpp"

namespace sluice::glue {

std::optional<std::string> transparent_connect_target(const rules::IpAddr& dst, uint16_t port,
                                                      const rules::Cidr& fake_ipv4, const rules::Cidr& fake_ipv6,
                                                      const FakeNameLookup& name_of) {
  const std::string p = std::to_string(port);
  if (fake_ipv4.contains(dst) || fake_ipv6.contains(dst)) {
    auto name = name_of(dst);
    if (!name) return std::nullopt;
    return *name + ":" + p;
  }
  if (dst.v6) return "[" + dst.to_string() + "]:" + p;
  return dst.to_string() + ":" + p;
}

std::optional<std::string> transparent_connect_target(const rules::IpAddr& dst, uint16_t port,
                                                      const rules::FakeIpMap& map,
                                                      const rules::TransparentConfig& cfg) {
  return transparent_connect_target(dst, port, cfg.fake_ipv4, cfg.fake_ipv6,
                                    [&](const rules::IpAddr& a) { return map.name_of(a); });
}

std::string transparent_resolv_conf() {
  return "# sluice --transparent: the jail's DNS stub (answers from the policy, never the network)\n"
         "nameserver 127.0.0.1\n"
         "options attempts:2 timeout:2\n";
}

}  // namespace sluice::glue
