#include "rules/remembered.hpp"

#include "rules/host_set.hpp"
#include "rules/json.hpp"

namespace sluice::rules {

const char* to_string(Remember r) {
  switch (r) {
    case Remember::Once: return "once";
    case Remember::Session: return "session";
    case Remember::Always: return "always";
  }
  return "?";
}

std::optional<Remember> parse_remember(std::string_view s) {
  if (s == "once") return Remember::Once;
  if (s == "session") return Remember::Session;
  if (s == "always") return Remember::Always;
  return std::nullopt;
}

std::string Remembered::key(std::string_view policy, std::string_view host, uint16_t port) {
  std::string k;
  k.reserve(policy.size() + host.size() + 8);
  k.append(policy).push_back('\0');
  k.append(host).push_back(':');
  k += std::to_string(port);
  return k;
}

const RememberedAnswer* Remembered::find(std::string_view policy, std::string_view host, uint16_t port) const {
  if (answers_.empty()) return nullptr;
  auto it = answers_.find(key(policy, host, port));
  return it == answers_.end() ? nullptr : &it->second;
}

void Remembered::put(RememberedAnswer a) {
  std::string k = key(a.policy, a.host, a.port);
  answers_[k] = std::move(a);
}

std::vector<RememberedAnswer> Remembered::forget(const HostPattern& pattern, std::string_view policy) {
  HostSet one;
  one.add(pattern);
  std::vector<RememberedAnswer> removed;
  for (auto it = answers_.begin(); it != answers_.end();) {
    const RememberedAnswer& a = it->second;
    auto host = canonicalize_host(a.host);
    bool hit = (policy.empty() || a.policy == policy) && host && one.match(host.value(), a.port) != nullptr;
    if (!hit) {
      ++it;
      continue;
    }
    removed.push_back(a);
    it = answers_.erase(it);
  }
  return removed;
}

std::vector<RememberedAnswer> Remembered::all() const {
  std::vector<RememberedAnswer> out;
  for (const auto& [k, a] : answers_) out.push_back(a);
  return out;
}

bool Remembered::has_always() const {
  for (const auto& [k, a] : answers_)
    if (a.scope == Remember::Always) return true;
  return false;
}

std::string Remembered::to_state_json() const {
  Json list = Json::array();
  for (const auto& [k, a] : answers_) {
    if (a.scope != Remember::Always) continue;
    Json e = Json::object();
    e.set("policy", Json::string(a.policy));
    e.set("host", Json::string(a.host));
    e.set("port", Json::number(a.port));
    e.set("verdict", Json::string(to_string(a.action)));
    e.set("at", Json::string(a.at));
    list.push(std::move(e));
  }
  // One entry per line: the file stays readable and diffable.
  std::string out = "{\"version\":1,\"remembered\":[";
  const auto& items = list.items();
  for (size_t i = 0; i < items.size(); ++i) {
    out += i ? ",\n  " : "\n  ";
    items[i].dump_to(out);
  }
  out += items.empty() ? "]}\n" : "\n]}\n";
  return out;
}

Result<std::vector<RememberedAnswer>> Remembered::parse_state(std::string_view text, const std::string& file) {
  auto fail = [&](const std::string& what) { return Err{file + ": " + what}; };
  auto parsed = Json::parse(text);
  if (!parsed) return fail(parsed.error());
  const Json& root = parsed.value();
  if (!root.is_object()) return fail("expected a JSON object");
  const Json* version = root.find("version");
  if (version == nullptr || version->as_integer(1, 1) != 1) return fail("\"version\" must be 1");
  const Json* list = root.find("remembered");
  if (list == nullptr || !list->is_array()) return fail("\"remembered\" must be an array");
  for (const auto& [k, v] : root.members())
    if (k != "version" && k != "remembered") return fail("unknown key \"" + k + "\"");
  std::vector<RememberedAnswer> out;
  for (size_t i = 0; i < list->items().size(); ++i) {
    const Json& e = list->items()[i];
    std::string where = "remembered[" + std::to_string(i) + "]";
    if (!e.is_object()) return fail(where + " must be an object");
    RememberedAnswer a;
    a.scope = Remember::Always;
    const Json* policy = e.find("policy");
    const Json* host = e.find("host");
    const Json* port = e.find("port");
    const Json* verdict = e.find("verdict");
    const Json* at = e.find("at");
    if (policy == nullptr || !policy->is_string() || policy->as_string().empty())
      return fail(where + ".policy must be a non-empty string");
    if (host == nullptr || !host->is_string()) return fail(where + ".host must be a string");
    auto canonical = canonicalize_host(host->as_string());
    if (!canonical || canonical->text != host->as_string())
      return fail(where + ".host must be a host in canonical form, not \"" + host->as_string() + "\"");
    auto p = port ? port->as_integer(1, 65535) : std::nullopt;
    if (!p) return fail(where + ".port must be a number from 1 to 65535");
    if (verdict == nullptr || !verdict->is_string() ||
        (verdict->as_string() != "allow" && verdict->as_string() != "deny"))
      return fail(where + ".verdict must be \"allow\" or \"deny\"");
    if (at != nullptr && !at->is_string()) return fail(where + ".at must be a string");
    for (const auto& [k, v] : e.members())
      if (k != "policy" && k != "host" && k != "port" && k != "verdict" && k != "at")
        return fail(where + ": unknown key \"" + k + "\"");
    a.policy = policy->as_string();
    a.host = host->as_string();
    a.port = static_cast<uint16_t>(*p);
    a.action = verdict->as_string() == "allow" ? Action::Allow : Action::Deny;
    if (at) a.at = at->as_string();
    out.push_back(std::move(a));
  }
  return out;
}

Verdict overlay_remembered(const Verdict& v, const Remembered* remembered, std::string_view host, uint16_t port) {
  if (v.action != Action::Ask || remembered == nullptr) return v;
  const RememberedAnswer* a = remembered->find(v.policy, host, port);
  if (a == nullptr) return v;
  Verdict out = v;
  out.action = a->action;
  out.reason = a->action == Action::Allow ? Reason::RememberedAllow : Reason::RememberedDeny;
  out.rule = to_string(a->scope);
  return out;
}

}  // namespace sluice::rules
