// HTTP session, the credential gateway (docs/credentials.md): a stand-in the jail holds is
// honoured only inside inspected TLS to its credential's hosts, where sluice drops the
// client's own credentials and attaches the real secret; anywhere else it is refused.
#include <algorithm>
#include <cctype>
#include <string_view>

#include "proxy/decision_log.hpp"
#include "proxy/http_session.hpp"
#include "proxy/json.hpp"
#include "proxy/metrics.hpp"
#include "proxy/net_address.hpp"
#include "proxy/stand_in_table.hpp"
#include "rules/git_guard.hpp"

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

// A stand-in the daemon issued to another sandbox (or, on a listener of no sandbox, to any):
// misuse wherever it appears, never honoured. Fills `found` (copied out of the table).
bool HttpSession::foreign_stand_in(rules::IssuedStandIn& found, std::string& where) const {
  StandInTable::View issued = StandInTable::process().view();
  if (!issued) return false;
  const std::string& self = client_info_.listener->name;
  const HttpHead& h = request_parser_.head();
  const rules::IssuedStandIn* s = issued->find(h.target, self);
  where = "its URL";
  for (size_t i = 0; s == nullptr && i < h.headers.size(); ++i)
    if ((s = issued->find_header(h.headers[i].second, self)) != nullptr)
      where = "its " + h.headers[i].first + " header";
  if (s == nullptr) return false;
  found = *s;
  return true;
}

// A stand-in a client put in its URL stays out of the decision log and the event stream.
void HttpSession::mask_in_logged_url(const std::string& stand_in, const std::string& credential) {
  const std::string mask = "<stand-in:" + credential + ">";
  std::string& url = decision_->url;
  for (size_t at = url.find(stand_in); at != std::string::npos; at = url.find(stand_in, at + mask.size()))
    url.replace(at, stand_in.size(), mask);
}

bool HttpSession::refuse_misused_stand_in() {
  if (!stand_ins_loaded_) load_stand_ins();
  if (stand_ins_.empty() && !StandInTable::process().any()) return false;
  std::string foreign_where;
  if (rules::IssuedStandIn f; foreign_stand_in(f, foreign_where)) {
    mask_in_logged_url(f.value, f.credential);
    decision_->credential = f.credential;
    ++worker_.metrics().credential_misuse;
    reply_and_close(
        rules::Reason::CredentialMisuse,
        "sluice: the request to " + host_port_text(host_, port_) + " carries the stand-in for credential \"" +
            f.credential + "\" in " + foreign_where +
            ", issued to another sandbox; sluice honours a stand-in only from the sandbox it was issued to");
    return true;
  }
  const HttpHead& h = request_parser_.head();
  std::string where = "its URL";
  const rules::StandIn* s = rules::find_stand_in(h.target, stand_ins_);
  for (size_t i = 0; s == nullptr && i < h.headers.size(); ++i)
    if ((s = rules::find_stand_in_header(h.headers[i].second, stand_ins_)) != nullptr)
      where = "its " + h.headers[i].first + " header";
  if (s == nullptr) return refuse_unreplaceable_body();
  const bool in_url = where == "its URL";
  if (inspected_ && !in_url && s->credential->hosts.match(host_, port_) != nullptr) return refuse_unreplaceable_body();
  mask_in_logged_url(s->value, s->credential->name);
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
  body_replace_.reset();
  if (!inspected_) return;
  if (!stand_ins_loaded_) load_stand_ins();
  start_body_replace();
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

// ---- replace_body: the request body's stand-ins become secrets ----------------------------
// Only on an inspected request to the credential's hosts, from the sandbox holding the stand-in
// (its own listener's stand-ins), like the header swap. The body streams: nothing is buffered
// beyond one stand-in's length, and since each stand-in is as long as its secret (the config
// checks it), a Content-Length stays true; a chunked body goes on chunked as it comes.

// The replace_body credentials for this request's host, and the smallest of their caps.
// git's own POST bodies (packs, negotiation) are left alone: the git guard reads pushes, and a
// pack is no place for a stand-in.
size_t HttpSession::body_replace_cap(std::vector<const rules::StandIn*>* which) const {
  if (!inspected_) return 0;
  size_t cap = 0;
  std::vector<const rules::StandIn*> found;
  for (const auto& s : stand_ins_) {
    const rules::GatewayCredential& c = *s.credential;
    if (!c.replace_body || c.hosts.match(host_, port_) == nullptr) continue;
    cap = cap == 0 ? c.replace_body_max_bytes : std::min(cap, c.replace_body_max_bytes);
    found.push_back(&s);
  }
  if (cap == 0) return 0;
  const HttpHead& h = request_parser_.head();
  const rules::GitService git = rules::classify_git_request(h.method, url_.path, h.headers).service;
  if (git == rules::GitService::UploadPack || git == rules::GitService::ReceivePack) return 0;
  if (which != nullptr) *which = std::move(found);
  return cap;
}

// Before dialing: a body sluice could not rewrite is refused, never sent with the stand-in in it.
bool HttpSession::refuse_unreplaceable_body() {
  std::vector<const rules::StandIn*> which;
  const size_t cap = body_replace_cap(&which);
  const HttpHead& h = request_parser_.head();
  const bool has_body = h.chunked || (h.has_content_length && h.content_length > 0);
  if (cap == 0 || !has_body) return false;
  std::string why;
  const std::string* enc = h.header("content-encoding");
  if (enc != nullptr && !header_is(*enc, "identity"))
    why = "its body is content-encoded (" + *enc + "), so sluice cannot replace stand-ins in it";
  else if (h.has_content_length && !h.chunked && h.content_length > cap)
    why = "its body (" + std::to_string(h.content_length) + " bytes) is over replace_body_max_bytes (" +
          std::to_string(cap) + ")";
  // A reload gave the credential a secret of another length than its stand-in (made before it).
  for (const rules::StandIn* s : which)
    if (why.empty() && s->value.size() != s->credential->secret.size())
      why = "the stand-in for credential \"" + s->credential->name +
            "\" is no longer as long as its secret (the secret changed on reload), so the body could not keep "
            "its length; make the sandbox again";
  if (why.empty()) return false;
  reply_and_close(rules::Reason::CredentialBodyRefused,
                  "sluice: the request to " + host_port_text(host_, port_) + " is refused: " + why);
  return true;
}

void HttpSession::start_body_replace() {
  std::vector<const rules::StandIn*> which;
  body_replace_max_ = body_replace_cap(&which);
  if (which.empty()) return;
  body_replace_ = std::make_unique<rules::BodyReplacer>();
  for (const rules::StandIn* s : which) body_replace_->add(s->value, s->credential->secret);
  if (body_replace_->empty()) body_replace_.reset();  // lengths differ: the config refuses that
}

void HttpSession::replace_in_body(const char* data, size_t n) {
  if (body_replace_->bytes_in() + n > body_replace_max_) {
    // A chunked body that grew past the cap: cut before any more of it goes on.
    body_replace_.reset();
    const std::string why = "sluice: the request body to " + host_port_text(host_, port_) +
                            " grew over replace_body_max_bytes (" + std::to_string(body_replace_max_) + ")";
    if (exchange_.response_started) return close_now(Termination::Refused);
    return reply_and_close(rules::Reason::CredentialBodyRefused, why);
  }
  std::string out = body_replace_->feed(std::string_view(data, n));
  if (!out.empty()) forward_request_body(out.data(), out.size());
}

void HttpSession::finish_body_replace() {
  std::string rest = body_replace_->finish();
  body_replace_.reset();
  if (!rest.empty()) forward_request_body(rest.data(), rest.size());
}

void HttpSession::guard_tunnel_bytes() {
  if (!stand_ins_loaded_) load_stand_ins();
  proxy::guard_tunnel_bytes(relay_, worker_, client_info_, host_, port_, stand_ins_);
}

void guard_tunnel_bytes(Relay& relay, WorkerContext& worker, const ClientInfo& client, const rules::CanonicalHost& host,
                        uint16_t port, std::vector<rules::StandIn> stand_ins) {
  if (stand_ins.empty() && !StandInTable::process().any()) return;  // other sandboxes' stand-ins
  relay.check_first_client_bytes(
      [&worker, &client, host, port, stand_ins = std::move(stand_ins)](std::string_view bytes) {
        if (const rules::StandIn* s = rules::find_stand_in_bytes(bytes, stand_ins)) {
          log_tunnel_misuse(worker, client, host, port, s->credential->name);
          return false;
        }
        std::string foreign;
        if (StandInTable::View issued = StandInTable::process().view())
          if (const rules::IssuedStandIn* f = issued->find_bytes(bytes, client.listener->name)) foreign = f->credential;
        if (foreign.empty()) return true;
        log_tunnel_misuse(worker, client, host, port, foreign);
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
