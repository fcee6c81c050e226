// HTTP session, the credential gateway (docs/credentials.md): a stand-in the jail holds is
// honoured only inside inspected TLS to its credential's hosts, where sluice drops the
// client's own credentials and attaches the real secret; anywhere else it is refused.
#include <algorithm>
#include <cctype>

#include "proxy/decision_log.hpp"
#include "proxy/http_session.hpp"
#include "proxy/json.hpp"
#include "proxy/metrics.hpp"
#include "proxy/net_address.hpp"

namespace sluice::proxy {

namespace {
bool header_is(const std::string& name, std::string_view want) {
  if (name.size() != want.size()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(name[i])) != want[i]) return false;
  return true;
}
}  // namespace

// This sandbox's stand-ins, each with its credential: the listener names them, the policy
// holds the credentials (both fixed for the session's life).
void HttpSession::load_stand_ins() {
  stand_ins_loaded_ = true;
  const rules::Policy* policy = flow_.policy();
  if (listener_config_ != nullptr && policy != nullptr)
    stand_ins_ = rules::stand_ins_for(listener_config_->stand_ins, policy->credentials);
}

bool HttpSession::refuse_misused_stand_in() {
  if (!stand_ins_loaded_) load_stand_ins();
  if (stand_ins_.empty()) return false;
  const HttpHead& h = request_parser_.head();
  std::string where = "its URL";
  const rules::StandIn* s = rules::find_stand_in(h.target, stand_ins_);
  for (size_t i = 0; s == nullptr && i < h.headers.size(); ++i)
    if ((s = rules::find_stand_in_header(h.headers[i].second, stand_ins_)) != nullptr)
      where = "its " + h.headers[i].first + " header";
  if (s == nullptr) return false;
  const bool in_url = where == "its URL";
  if (inspected_ && !in_url && s->credential->hosts.match(host_, port_) != nullptr) return false;
  decision_->credential = s->credential->name;
  ++worker_.metrics().credential_misuse;
  const std::string why = !inspected_ ? "over plain HTTP" : in_url ? "in a URL" : "to a host it is not for";
  reply_and_close(rules::Reason::CredentialMisuse,
                  "sluice: the request to " + host_port_text(host_, port_) + " carries the stand-in for credential \"" +
                      s->credential->name + "\" in " + where + " (" + why +
                      "); sluice honours it only in headers of HTTPS requests to that credential's hosts");
  return true;
}

// An inspected request to a credential's host that presents its stand-in (the proof that it
// comes from the sandbox the stand-in was issued to): the client's own credentials go and
// the real secret comes (template), or the stand-in is swapped for it where it stands (replace).
void HttpSession::attach_credential() {
  if (!inspected_) return;
  if (!stand_ins_loaded_) load_stand_ins();
  auto& headers = request_parser_.head().headers;
  for (const auto& s : stand_ins_) {
    const rules::GatewayCredential& c = *s.credential;
    if (c.hosts.match(host_, port_) == nullptr) continue;
    const std::vector<rules::StandIn> one{s};
    auto holds = [&](const auto& kv) { return rules::find_stand_in_header(kv.second, one) != nullptr; };
    const bool presented = std::any_of(headers.begin(), headers.end(), holds);
    if (!presented) continue;
    if (c.replace) {
      for (auto& [name, value] : headers) value = rules::replace_stand_in(std::move(value), s.value, c.secret);
    } else {
      std::erase_if(headers, [](const auto& kv) {
        return header_is(kv.first, "authorization") || header_is(kv.first, "proxy-authorization") ||
               header_is(kv.first, "cookie");
      });
      std::erase_if(headers, holds);
      headers.emplace_back(c.header_name, rules::render_inject(c.header_template, c.secret));
    }
    decision_->credential += (decision_->credential.empty() ? "" : ",") + c.name;
  }
}

void HttpSession::guard_tunnel_bytes() {
  if (!stand_ins_loaded_) load_stand_ins();
  proxy::guard_tunnel_bytes(relay_, worker_, client_info_, host_, port_, stand_ins_);
}

void guard_tunnel_bytes(Relay& relay, WorkerContext& worker, const ClientInfo& client, const rules::CanonicalHost& host,
                        uint16_t port, std::vector<rules::StandIn> stand_ins) {
  if (stand_ins.empty()) return;
  relay.check_first_client_bytes(
      [&worker, &client, host, port, stand_ins = std::move(stand_ins)](std::string_view bytes) {
        const rules::StandIn* s = rules::find_stand_in_bytes(bytes, stand_ins);
        if (s == nullptr) return true;
        log_tunnel_misuse(worker, client, host, port, s->credential->name);
        return false;
      });
}

void log_tunnel_misuse(WorkerContext& worker, const ClientInfo& client, const rules::CanonicalHost& host, uint16_t port,
                       const std::string& credential) {
  ++worker.metrics().credential_misuse;
  if (worker.log().denials_enabled())
    worker.log().denial("sluice: denied " + host_port_text(host, port) + " (credential-misuse: the stand-in for \"" +
                        credential + "\" in an opaque tunnel)");
  if (!worker.log().wanted()) return;
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601())
      .str("event", "credential-misuse")
      .num("conn", static_cast<int64_t>(client.id));
  j.str("listener", client.listener->name).str("client", client.addr);
  j.str("host", host.text).num("port", port).str("credential", credential).str("where", "tunnel");
  worker.log().write(j.done());
}

}  // namespace sluice::proxy
