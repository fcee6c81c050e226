#include "proxy/decision.hpp"

#include "proxy/decision_log.hpp"
#include "proxy/json.hpp"
#include "proxy/metrics.hpp"
#include "proxy/net_address.hpp"

namespace sluice::proxy {

void log_decision(WorkerContext& worker, const ClientInfo& client, Decision& d, Outcome outcome) {
  if (d.logged) return;
  d.logged = true;
  worker.metrics().decided(client.listener->name, d, outcome);
  if (outcome.denied && worker.log().denials_enabled()) {
    std::string target = d.host.empty() ? "?" : d.host;
    if (d.port != 0) target += ":" + std::to_string(d.port);
    std::string via = d.kind == ConnKind::Socks ? ", socks" : "";
    std::string what = d.verdict.hook.empty() ? "rule" : "script";
    worker.log().denial(
        "sluice: denied " + target + " (" +
        std::string(rules::to_string(d.error == rules::Reason::None ? d.verdict.reason : d.error)) +
        (d.verdict.rule.empty() || d.verdict.rule == "default" ? "" : ", " + what + " \"" + d.verdict.rule + "\"") +
        via + (d.verdict.message.empty() ? "" : ": " + d.verdict.message) + ")");
  }
  if (!worker.log().wanted()) return;
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "decision").num("conn", static_cast<int64_t>(client.id));
  j.str("listener", client.listener->name);
  if (client.peer.known) {
    JsonLine p;
    p.num("pid", client.peer.pid).num("uid", client.peer.uid).num("gid", client.peer.gid);
    j.raw("peer", p.done());
  }
  j.str("client", client.addr);
  if (d.kind != ConnKind::None) j.str("kind", to_string(d.kind));
  if (!d.method.empty()) j.str("method", d.method);
  if (!d.host.empty()) j.str("host", d.host);
  if (d.port != 0) j.num("port", d.port);
  if (!d.url.empty()) j.str("url", d.url);
  if (d.verdict.reason != rules::Reason::None) {
    j.str("verdict", rules::to_string(d.verdict.action)).str("reason", rules::to_string(d.verdict.reason));
    j.str("rule", d.verdict.rule).str("policy", d.verdict.policy);
    if (!d.verdict.hook.empty()) j.str("hook", d.verdict.hook);
    if (!d.verdict.message.empty()) j.str("message", d.verdict.message);
    if (!d.verdict.error.empty()) j.str("lua_error", d.verdict.error);
    if (d.verdict.would_deny) j.boolean("would_deny", true);
  } else {
    j.str("verdict", "deny");
  }
  if (d.error != rules::Reason::None) j.str("error", rules::to_string(d.error));
  if (!d.addr.empty()) j.str("addr", d.addr);
  if (!d.address_class.empty()) j.str("address_class", d.address_class);
  if (!d.parent.empty()) j.str("parent", d.parent);
  if (!d.host_replaced.empty()) j.str("host_replaced", d.host_replaced);
  if (!d.original_dst.empty()) j.str("original_dst", d.original_dst);
  if (d.reused) j.boolean("reused", true);
  if (d.inspected) j.str("tls", "inspected");
  if (!d.tls_error.empty()) j.str("tls_error", d.tls_error);
  if (d.tls_resumed) j.boolean("tls_resumed", true);
  if (!d.credential.empty()) j.str("credential", d.credential);
  if (!d.git.empty()) j.raw("git", d.git);
  if (d.in_band_reason) j.boolean("in_band_reason", true);
  if (d.question != 0) j.num("question", static_cast<int64_t>(d.question));
  if (d.ask_ms >= 0) j.real("ask_ms", d.ask_ms);
  if (d.dns_ms >= 0) j.real("dns_ms", d.dns_ms);
  if (d.connect_ms >= 0) j.real("connect_ms", d.connect_ms);
  j.num(outcome.key, outcome.value);
  worker.log().write(j.done());
}

void log_close(WorkerContext& worker, const ClientInfo& client, uint64_t bytes_up, uint64_t bytes_down,
               uint64_t requests, Termination cause) {
  worker.metrics().closed(client.listener->name, bytes_up, bytes_down, cause);
  if (!worker.log().wanted()) return;
  JsonLine j;
  j.str("ts", DecisionLog::now_iso8601()).str("event", "close").num("conn", static_cast<int64_t>(client.id));
  j.str("listener", client.listener->name);
  if (!client.addr.empty()) j.str("client", client.addr);
  j.num("bytes_up", static_cast<int64_t>(bytes_up)).num("bytes_down", static_cast<int64_t>(bytes_down));
  j.num("duration_ms", static_cast<int64_t>(uv_now(worker.loop()) - client.started_ms));
  j.num("requests", static_cast<int64_t>(requests));
  j.str("cause", termination_text(cause == Termination::None ? Termination::ProxyError : cause));
  worker.log().write(j.done());
}

std::string denial_message(const rules::Verdict& v, const rules::CanonicalHost& host, uint16_t port) {
  std::string target = host_port_text(host, port);
  if (v.reason == rules::Reason::NoPolicy) return "sluice: listener has no policy; every request is denied";
  std::string script = "script \"" + v.rule + "\" (" + v.hook + ") of policy \"" + v.policy + "\"";
  if (v.reason == rules::Reason::DeniedByScript)
    return "sluice: " + target + " denied by " + script + (v.message.empty() ? "" : ": " + v.message);
  if (v.reason == rules::Reason::AskByScript)
    return "sluice: " + target + " needs a person's confirmation (" + script +
           " answered ask), and none can be asked here, so it is denied" + (v.message.empty() ? "" : ": " + v.message);
  if (v.reason == rules::Reason::ScriptError)
    return "sluice: " + target + " denied: " + script +
           " failed and the policy's on_error is deny; the decision log has the error";
  if (v.reason == rules::Reason::AskTimeout)
    return "sluice: nobody answered whether " + target + " may be reached (policy \"" + v.policy +
           "\" asks); answer with `sluice ctl allow ID`, or add \"" + host.text + "\" to its allow list";
  if (v.reason == rules::Reason::AskDenied)
    return "sluice: " + target + " was denied when asked (answer: deny " + v.rule + ")";
  if (v.reason == rules::Reason::RememberedDeny)
    return "sluice: " + target + " was denied by an earlier answer (remembered: " + v.rule + "); `sluice ctl forget " +
           host.text + ":" + std::to_string(port) + "` to be asked again";
  if (v.reason == rules::Reason::AskUnavailable)
    return "sluice: " + target + " needs an answer (policy \"" + v.policy +
           "\" asks) and nobody can be asked here (no terminal, no control socket); add \"" + host.text +
           "\" to its allow list to allow it";
  if (v.reason == rules::Reason::NeedsInspection && v.message == "git")
    return "sluice: " + target + " is guarded by the git rule for \"" + v.rule + "\" of policy \"" + v.policy +
           "\", and a tunnel shows sluice no git requests; TLS inspection would: give sluice a CA (tls: ca_cert, "
           "ca_key; `sluice ca init DIR`; `sluice run` makes its own), or narrow the rule's host (e.g. " +
           v.rule + ":443) (docs/tls.md)";
  if (v.reason == rules::Reason::NeedsInspection)
    return "sluice: " + target + " is decided by path-scoped entries (\"" + v.rule + "\" of policy \"" + v.policy +
           "\"), and a tunnel shows sluice no paths; TLS inspection would: give sluice a CA (tls: ca_cert, ca_key; "
           "`sluice ca init DIR`; `sluice run` makes its own), or allow or deny the host as a whole (docs/tls.md)";
  if (v.reason == rules::Reason::AmbiguousPath)
    return "sluice: the request path to " + target + " is refused: " + v.message +
           "; path-scoped entries of policy \"" + v.policy +
           "\" decide this host, and origins read such a path "
           "differently";
  if (v.reason == rules::Reason::DeniedByRule)
    return "sluice: " + target + " denied by rule \"" + v.rule + "\" in the deny list of policy \"" + v.policy +
           "\"; remove that entry to allow it";
  return "sluice: " + target + " is not in the allow list of policy \"" + v.policy + "\" (default deny); add \"" +
         host.text + "\" or \"" + host.text + ":" + std::to_string(port) + "\" to its allow list to allow it";
}

}  // namespace sluice::proxy
