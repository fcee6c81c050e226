#include "control/control_plane.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <uv.h>

#include "control/sandbox_credentials.hpp"
#include "proxy/server.hpp"
#include "rules/dns_verdict.hpp"
#include "rules/host.hpp"
#include "rules/pattern.hpp"

namespace sluice::proxy {

using rules::Json;

namespace {

// Entries one list replacement may carry; far above the 100,000 the design asks for.
constexpr size_t kMaxListEntries = 2000000;
constexpr size_t kMaxSandboxName = 64;

uint64_t steady_ms() { return uv_hrtime() / 1000000; }

Json num(double v) { return Json::number(v); }
Json str(std::string s) { return Json::string(std::move(s)); }

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > kMaxSandboxName) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return n != "." && n != "..";
}

// A request body that must be a JSON object; on failure `err` is the 400 to send.
bool parse_object(const std::string& body, Json& out, ApiResult& err) {
  auto parsed = Json::parse(body);
  if (!parsed) {
    err = ApiResult::error(400, "bad JSON: " + parsed.error());
    return false;
  }
  if (!parsed->is_object()) {
    err = ApiResult::error(400, "the body must be a JSON object");
    return false;
  }
  out = std::move(parsed.value());
  return true;
}

// Every key of `o` must be one of `known`.
bool known_keys(const Json& o, std::initializer_list<const char*> known, ApiResult& err) {
  for (const auto& [k, v] : o.members()) {
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) {
      err = ApiResult::error(400, "unknown key \"" + k + "\"");
      return false;
    }
  }
  return true;
}

Json question_json(const Question& q) {
  Json j = Json::object();
  j.set("id", num(static_cast<double>(q.id)));
  j.set("policy", str(q.policy));
  j.set("host", str(q.host));
  j.set("port", num(q.port));
  Json ls = Json::array();
  for (const auto& l : q.listeners) ls.push(str(l));
  j.set("listeners", std::move(ls));
  Json ks = Json::array();
  for (const auto& k : q.kinds) ks.push(str(k));
  j.set("kinds", std::move(ks));
  j.set("waiting", num(static_cast<double>(q.waiting)));
  j.set("since", str(q.since));
  j.set("waited_ms", num(static_cast<double>(steady_ms() - q.since_ms)));
  if (!q.first_client.empty()) j.set("client", str(q.first_client));
  if (q.first_peer.known) {
    Json p = Json::object();
    p.set("pid", num(static_cast<double>(q.first_peer.pid)));
    p.set("uid", num(static_cast<double>(q.first_peer.uid)));
    p.set("gid", num(static_cast<double>(q.first_peer.gid)));
    j.set("peer", std::move(p));
  }
  return j;
}

Json answer_json(const rules::RememberedAnswer& a) {
  Json j = Json::object();
  j.set("policy", str(a.policy));
  j.set("host", str(a.host));
  j.set("port", num(a.port));
  j.set("verdict", str(rules::to_string(a.action)));
  j.set("remember", str(rules::to_string(a.scope)));
  j.set("at", str(a.at));
  return j;
}

}  // namespace

ApiResult ApiResult::error(int status, const std::string& message) {
  Json j = Json::object();
  j.set("error", Json::string(message));
  return {status, std::move(j)};
}

ControlPlane::ControlPlane(Server& server, Options options)
    : server_(server), options_(std::move(options)), started_ms_(steady_ms()) {
  base_ = server_.config();
  current_ = base_;
  for (const auto& [name, p] : base_->policies) policy_versions_[name] = 1;
  server_.asks().on_remembered_changed([this] { remembered_changed(); });
}

ControlPlane::~ControlPlane() { stop(); }

std::string ControlPlane::start() {
  if (options_.state_path.empty()) return "";
  std::ifstream in(options_.state_path);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    auto loaded = rules::Remembered::parse_state(ss.str(), options_.state_path);
    if (!loaded) return loaded.error() + " (fix or remove the file)";
    server_.asks().load_remembered(loaded.value());
  } else if (errno != ENOENT) {
    return options_.state_path + ": cannot read: " + std::strerror(errno);
  }
  state_writer_ = std::make_unique<StateFileWriter>(options_.state_path, [this](const std::string& err) {
    std::fprintf(stderr, "sluice: the state file keeps no answers: %s\n", err.c_str());  // the log may be off
    Json f = Json::object();
    f.set("what", str("state-file"));
    f.set("error", str(err));
    event("error", std::move(f));
  });
  std::lock_guard lock(mu_);
  apply_locked(compose_locked());
  return "";
}

void ControlPlane::stop() {
  server_.asks().on_remembered_changed(nullptr);
  if (state_writer_) state_writer_->flush();
  std::lock_guard lock(mu_);
  for (const auto& s : sandboxes_) {
    server_.remove_listener(s.listener.name);
    forget_sandbox_credentials(s.listener.name);
  }
  sandboxes_.clear();
}

std::shared_ptr<const rules::Config> ControlPlane::config() const {
  std::lock_guard lock(mu_);
  return current_;
}

void ControlPlane::event(const std::string& name, Json fields) {
  Json line = Json::object();
  line.set("ts", str(DecisionLog::now_iso8601()));
  line.set("event", str(name));
  for (auto& [k, v] : fields.members()) line.set(k, v);
  server_.log().write(line.dump());
}

// ---- composing and applying ------------------------------------------------------

std::shared_ptr<const rules::Config> ControlPlane::compose_locked() const {
  auto c = std::make_shared<rules::Config>(*base_);  // shallow: the policies are shared
  for (const auto& s : sandboxes_) c->listeners.push_back(s.listener);
  c->remembered = server_.asks().remembered();
  return c;
}

void ControlPlane::apply_locked(std::shared_ptr<const rules::Config> next,
                                std::vector<std::shared_ptr<rules::WorkerRules>> lua) {
  // The old snapshot waits in retired_ until no worker or connection holds it (sweep()).
  if (current_) retired_.push_back(std::move(current_));
  current_ = next;
  ++generation_;
  for (auto& old : server_.apply(std::move(next), std::move(lua))) retired_lua_.push_back(std::move(old));
}

ControlPlane::Dead ControlPlane::take_dead() {
  Dead dead;
  {
    std::lock_guard lock(mu_);
    for (auto it = retired_lua_.begin(); it != retired_lua_.end();) {
      if (it->use_count() == 1) {
        dead.lua.push_back(std::move(*it));
        it = retired_lua_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = retired_.begin(); it != retired_.end();) {
      // Only this list holds it: no worker can reach it any more, so the count cannot rise.
      if (it->use_count() == 1) {
        dead.configs.push_back(std::move(*it));
        it = retired_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return dead;
}

size_t ControlPlane::sweep() {
  Dead dead = take_dead();
  dead.configs.clear();  // destroyed here, outside the lock
  dead.lua.clear();
  std::lock_guard lock(mu_);
  return retired_.size();
}

void ControlPlane::remembered_changed() {
  std::shared_ptr<const rules::Remembered> r = server_.asks().remembered();
  if (state_writer_) state_writer_->save(r->to_state_json());
  std::lock_guard lock(mu_);
  apply_locked(compose_locked());
}

// ---- reading ---------------------------------------------------------------------

ApiResult ControlPlane::status() const {
  std::lock_guard lock(mu_);
  Json j = Json::object();
  j.set("version", str(options_.version));
  j.set("pid", num(::getpid()));
  j.set("uptime_s", num(static_cast<double>(steady_ms() - started_ms_) / 1000.0));
  j.set("workers", num(static_cast<double>(server_.worker_count())));
  Json cfg = Json::object();
  cfg.set("source", str(base_->source));
  cfg.set("generation", num(static_cast<double>(generation_)));
  j.set("config", std::move(cfg));
  Json conns = Json::object();
  conns.set("open", num(static_cast<double>(server_.active_connections())));
  j.set("connections", std::move(conns));
  Json listeners = Json::array();
  for (const auto& l : server_.listeners()) {
    Json e = Json::object();
    e.set("name", str(l.info->name));
    e.set("address", str(l.info->address));
    e.set("policy", str(l.config.policy));
    e.set("open", num(static_cast<double>(l.info->active.load())));
    bool sandbox = std::any_of(sandboxes_.begin(), sandboxes_.end(),
                               [&](const Sandbox& s) { return s.listener.name == l.info->name; });
    e.set("sandbox", Json::boolean(sandbox));
    listeners.push(std::move(e));
  }
  j.set("listeners", std::move(listeners));
  Json policies = Json::array();
  for (const auto& [name, p] : current_->policies) {
    Json e = Json::object();
    e.set("name", str(name));
    auto v = policy_versions_.find(name);
    e.set("version", num(v == policy_versions_.end() ? 1.0 : static_cast<double>(v->second)));
    e.set("default", str(rules::to_string(p->default_action)));
    e.set("allow", num(static_cast<double>(p->allow.size())));
    e.set("deny", num(static_cast<double>(p->deny.size())));
    policies.push(std::move(e));
  }
  j.set("policies", std::move(policies));
  Json asks = Json::object();
  asks.set("pending", num(static_cast<double>(server_.asks().pending_count())));
  asks.set("remembered", num(static_cast<double>(current_->remembered ? current_->remembered->size() : 0)));
  asks.set("answerable", Json::boolean(server_.asks().answerable()));
  asks.set("timeout_ms", num(current_->limits.ask_timeout_ms));
  if (!options_.state_path.empty()) asks.set("state_file", str(options_.state_path));
  j.set("asks", std::move(asks));
  Json events = Json::object();
  events.set("readers", num(server_.events().readers()));
  j.set("events", std::move(events));
  return ApiResult::ok(std::move(j));
}

ApiResult ControlPlane::pending() const {
  Json list = Json::array();
  for (const auto& q : server_.asks().pending()) list.push(question_json(q));
  Json j = Json::object();
  j.set("pending", std::move(list));
  return ApiResult::ok(std::move(j));
}

ApiResult ControlPlane::remembered() const {
  Json list = Json::array();
  for (const auto& a : server_.asks().remembered()->all()) list.push(answer_json(a));
  Json j = Json::object();
  j.set("remembered", std::move(list));
  return ApiResult::ok(std::move(j));
}

ApiResult ControlPlane::sandboxes() const {
  std::lock_guard lock(mu_);
  Json list = Json::array();
  for (const auto& s : sandboxes_) {
    Json e = Json::object();
    e.set("name", str(s.listener.name));
    e.set("policy", str(s.listener.policy));
    e.set("path", str(s.listener.path));
    list.push(std::move(e));
  }
  Json j = Json::object();
  j.set("sandboxes", std::move(list));
  return ApiResult::ok(std::move(j));
}

ApiResult ControlPlane::dns_verdict(const std::string& name, const std::string& host) {
  std::shared_ptr<const rules::Policy> policy;
  {
    std::lock_guard lock(mu_);
    for (const auto& l : current_->listeners)
      if (l.name == name) {
        auto it = current_->policies.find(l.policy);
        if (it != current_->policies.end()) policy = it->second;
      }
  }
  if (!policy) return ApiResult::error(404, "no sandbox named \"" + name + "\"");
  auto canonical = rules::canonicalize_host(host);
  if (!canonical.ok()) return ApiResult::error(400, "\"host\" is not a host name: " + canonical.error());
  rules::DnsVerdict v = rules::dns_verdict(*policy, canonical.value());
  if (!v.resolve || v.would_deny) {
    Json f = Json::object();
    f.set("sandbox", str(name));
    f.set("name", str(canonical->text));
    f.set("reason", str(v.reason));
    f.set("policy", str(policy->name));
    if (!v.rule.empty()) f.set("rule", str(v.rule));
    event(v.would_deny ? "dns-would-deny" : "dns-denied", std::move(f));
  }
  Json j = Json::object();
  j.set("name", str(canonical->text));
  j.set("resolve", Json::boolean(v.resolve));
  j.set("reason", str(v.reason));
  j.set("rule", str(v.rule));
  j.set("would_deny", Json::boolean(v.would_deny));
  j.set("policy", str(policy->name));
  return ApiResult::ok(std::move(j));
}

std::string ControlPlane::render_metrics(const WorkerMetrics& total, const std::vector<LoopMax>& lag_max,
                                         uint64_t readers_dropped) const {
  GlobalMetrics g;
  g.uptime_seconds = static_cast<double>(steady_ms() - started_ms_) / 1000.0;
  g.version = options_.version;
  g.workers = server_.worker_count();
  g.open_connections = server_.active_connections();
  {
    std::lock_guard lock(mu_);
    for (const auto& l : server_.listeners()) g.open_by_listener.emplace_back(l.info->name, l.info->active.load());
    for (const auto& [name, v] : policy_versions_)
      if (current_->policies.count(name)) g.policy_versions.emplace_back(name, v);
  }
  g.asks_pending = server_.asks().pending_count();
  g.questions_total = server_.asks().questions_total();
  g.answers = server_.asks().answer_counts();
  g.event_readers = server_.events().readers();
  g.event_readers_dropped = readers_dropped;
  g.events_dropped = server_.events().dropped();
  g.loop_max = lag_max;
  return render_prometheus(total, g);
}

// ---- asks ------------------------------------------------------------------------

ApiResult ControlPlane::answer(const std::string& id_text, const std::string& body, const std::string& by) {
  uint64_t id = 0;
  bool digits = !id_text.empty() && id_text.size() <= 18;
  for (char c : id_text) digits = digits && c >= '0' && c <= '9';
  if (!digits) return ApiResult::error(400, "a question id is a number, not \"" + id_text + "\"");
  id = std::stoull(id_text);
  Json o;
  ApiResult err;
  if (!parse_object(body, o, err)) return err;
  if (!known_keys(o, {"verdict", "remember"}, err)) return err;
  const Json* verdict = o.find("verdict");
  if (verdict == nullptr || !verdict->is_string() ||
      (verdict->as_string() != "allow" && verdict->as_string() != "deny"))
    return ApiResult::error(400, "\"verdict\" must be \"allow\" or \"deny\"");
  rules::Remember remember = rules::Remember::Once;
  if (const Json* r = o.find("remember")) {
    auto parsed = r->is_string() ? rules::parse_remember(r->as_string()) : std::nullopt;
    if (!parsed) return ApiResult::error(400, "\"remember\" must be \"once\", \"session\" or \"always\"");
    remember = *parsed;
  }
  return answer(id, verdict->as_string() == "allow" ? rules::Action::Allow : rules::Action::Deny, remember, by);
}

ApiResult ControlPlane::answer(uint64_t id, rules::Action action, rules::Remember remember, const std::string& by) {
  // Not under mu_: the broker calls remembered_changed(), which takes it.
  auto q = server_.asks().answer(id, AskAnswer{action, remember, by, 0});
  if (!q)
    return ApiResult::error(404, "no pending question " + std::to_string(id) + " (answered, expired, or never asked)");
  Json j = Json::object();
  j.set("id", num(static_cast<double>(q->id)));
  j.set("policy", str(q->policy));
  j.set("host", str(q->host));
  j.set("port", num(q->port));
  j.set("verdict", str(rules::to_string(action)));
  j.set("remember", str(rules::to_string(remember)));
  j.set("released", num(static_cast<double>(q->waiting)));
  j.set("persisted", Json::boolean(remember == rules::Remember::Always && !options_.state_path.empty()));
  return ApiResult::ok(std::move(j));
}

ApiResult ControlPlane::forget(const std::string& body) {
  Json o;
  ApiResult err;
  if (!parse_object(body, o, err)) return err;
  if (!known_keys(o, {"pattern", "policy"}, err)) return err;
  const Json* pattern = o.find("pattern");
  if (pattern == nullptr || !pattern->is_string()) return ApiResult::error(400, "\"pattern\" must be a host pattern");
  std::string policy;
  if (const Json* p = o.find("policy")) {
    if (!p->is_string()) return ApiResult::error(400, "\"policy\" must be a string");
    policy = p->as_string();
  }
  auto parsed = rules::parse_pattern(pattern->as_string());
  if (!parsed) return ApiResult::error(400, parsed.error());
  auto removed = server_.asks().forget(parsed.value(), policy);
  Json list = Json::array();
  for (const auto& a : removed) list.push(answer_json(a));
  Json j = Json::object();
  j.set("removed", std::move(list));
  return ApiResult::ok(std::move(j));
}

// ---- sandboxes -------------------------------------------------------------------

ApiResult ControlPlane::add_sandbox(const std::string& body, const PeerCred& peer) {
  Json o;
  ApiResult err;
  if (!parse_object(body, o, err)) return err;
  if (!known_keys(o, {"name", "policy", "lease"}, err)) return err;
  const Json* name = o.find("name");
  const Json* policy = o.find("policy");
  if (name == nullptr || !name->is_string() || !valid_name(name->as_string()))
    return ApiResult::error(400, "\"name\" must be 1 to 64 letters, digits, '_', '.' or '-'");
  std::string policy_name = "default";
  if (policy != nullptr) {
    if (!policy->is_string()) return ApiResult::error(400, "\"policy\" must be a string");
    policy_name = policy->as_string();
  }
  if (const Json* lease = o.find("lease"); lease != nullptr && !lease->is_bool())
    return ApiResult::error(400, "\"lease\" must be true or false");
  if (options_.sandbox_dir.empty()) return ApiResult::error(409, "this sluice makes no sandboxes (no control socket)");
  std::lock_guard lock(mu_);
  for (const auto& l : current_->listeners)
    if (l.name == name->as_string()) return ApiResult::error(409, "a listener named \"" + l.name + "\" exists");
  if (!current_->policies.count(policy_name)) return ApiResult::error(404, "no policy named \"" + policy_name + "\"");
  if (::mkdir(options_.sandbox_dir.c_str(), 0711) != 0 && errno != EEXIST)
    return ApiResult::error(500, "cannot create " + options_.sandbox_dir + ": " + std::strerror(errno));
  rules::ListenerConfig l;
  l.name = name->as_string();
  l.kind = rules::ListenerConfig::Kind::Unix;
  l.path = options_.sandbox_dir + "/" + l.name + ".sock";
  l.mode = 0600;
  l.policy = policy_name;
  auto bound = bind_listener(l, 1);
  if (!bound) return ApiResult::error(500, bound.error());
  // The socket belongs to whoever asked for it (a launcher running as another user).
  if (peer.known && static_cast<uid_t>(peer.uid) != ::geteuid())
    (void)::lchown(l.path.c_str(), static_cast<uid_t>(peer.uid), static_cast<gid_t>(peer.gid));
  Json issued = Json::object();  // stand-ins and the CA for the jail (never a secret)
  const auto inspector = server_.inspector();
  issue_sandbox_credentials(l, *current_->policies.at(policy_name), inspector ? inspector->ca_pem() : "", issued);
  sandboxes_.push_back(Sandbox{l});
  // The workers learn the listener's config before they accept on it (one inbox, in order).
  apply_locked(compose_locked());
  server_.add_listener(std::move(bound.value()));
  Json f = Json::object();
  f.set("action", str("added"));
  f.set("name", str(l.name));
  f.set("policy", str(l.policy));
  f.set("path", str(l.path));
  event("sandbox", f);
  Json j = Json::object();
  j.set("name", str(l.name));
  j.set("policy", str(l.policy));
  j.set("path", str(l.path));
  for (const auto& [k, v] : issued.members()) j.set(k, v);
  return ApiResult::ok(std::move(j), 201);
}

ApiResult ControlPlane::remove_sandbox(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it =
      std::find_if(sandboxes_.begin(), sandboxes_.end(), [&](const Sandbox& s) { return s.listener.name == name; });
  if (it == sandboxes_.end()) {
    for (const auto& l : base_->listeners)
      if (l.name == name)
        return ApiResult::error(409, "listener \"" + name + "\" comes from the config file; edit the file and restart");
    return ApiResult::error(404, "no sandbox named \"" + name + "\"");
  }
  server_.remove_listener(name);
  forget_sandbox_credentials(name);
  sandboxes_.erase(it);
  apply_locked(compose_locked());
  Json f = Json::object();
  f.set("action", str("removed"));
  f.set("name", str(name));
  event("sandbox", f);
  Json j = Json::object();
  j.set("name", str(name));
  j.set("removed", Json::boolean(true));
  return ApiResult::ok(std::move(j));
}

// ---- heavy changes ---------------------------------------------------------------

ApiResult ControlPlane::reload(const std::string& trigger) {
  std::lock_guard heavy(heavy_mu_);
  auto fail = [&](int status, const std::string& message, Json errors = Json()) {
    Json f = Json::object();
    f.set("trigger", str(trigger));
    f.set("ok", Json::boolean(false));
    f.set("error", str(message));
    event("reload", std::move(f));
    ApiResult r = ApiResult::error(status, message);
    if (!errors.is_null()) r.body.set("errors", std::move(errors));
    return r;
  };
  if (options_.config_path.empty()) return fail(409, "started without --config: nothing to reload");
  auto load = rules::load_config_file(options_.config_path);  // the slow part, outside mu_
  if (!load.errors.empty()) {
    Json errors = Json::array();
    for (const auto& e : load.errors) errors.push(str(e.to_string()));
    return fail(400, load.errors.front().to_string() + "", std::move(errors));
  }
  std::shared_ptr<const rules::Config> next = load.config;
  // New Lua states for every worker, also heavy: a script that fails to load changes nothing.
  auto lua = server_.build_rules(*next);
  if (!lua) return fail(400, "rules: " + lua.error());
  auto inspector = server_.inspector_for(*next);  // a new CA is loaded and checked here
  if (!inspector) return fail(400, inspector.error());
  std::lock_guard lock(mu_);
  std::vector<std::string> sandbox_names;
  for (const auto& s : sandboxes_) sandbox_names.push_back(s.listener.name);
  for (const auto& l : next->listeners)
    if (std::find(sandbox_names.begin(), sandbox_names.end(), l.name) != sandbox_names.end())
      return fail(409, "listener \"" + l.name + "\" in the file is a sandbox's name");
  if (std::string why = Server::reload_blocker(*base_, *next); !why.empty()) return fail(409, why);
  if (base_->log.path != next->log.path) {
    if (std::string err = server_.log().open(next->log.path); !err.empty()) return fail(500, err);
  }
  for (const auto& [name, p] : next->policies) ++policy_versions_[name];
  // A sandbox whose policy the new file lacks keeps its socket and denies everything.
  base_ = next;
  server_.set_inspector(inspector.value());
  apply_locked(compose_locked(), std::move(lua.value()));
  Json f = Json::object();
  f.set("trigger", str(trigger));
  f.set("ok", Json::boolean(true));
  f.set("source", str(options_.config_path));
  event("reload", std::move(f));
  Json j = Json::object();
  j.set("ok", Json::boolean(true));
  j.set("generation", num(static_cast<double>(generation_)));
  return ApiResult::ok(std::move(j));
}

ApiResult ControlPlane::replace_list(const std::string& policy, rules::PolicyList which, const std::string& body) {
  std::lock_guard heavy(heavy_mu_);
  uint64_t t0 = uv_hrtime();
  auto parsed = Json::parse(body);
  if (!parsed) return ApiResult::error(400, "bad JSON: " + parsed.error());
  // The body is the list itself, or {"entries": [...]}.
  const Json* list = &parsed.value();
  if (list->is_object()) {
    ApiResult err;
    if (!known_keys(*list, {"entries"}, err)) return err;
    list = list->find("entries");
  }
  if (list == nullptr || !list->is_array())
    return ApiResult::error(400, "the body must be a JSON array of patterns, or {\"entries\": [...]}");
  if (list->items().size() > kMaxListEntries)
    return ApiResult::error(400, "more than " + std::to_string(kMaxListEntries) + " entries");
  rules::HostSet set;
  for (size_t i = 0; i < list->items().size(); ++i) {
    const Json& e = list->items()[i];
    if (!e.is_string()) {
      ApiResult r = ApiResult::error(400, "entry " + std::to_string(i) + " is not a string");
      r.body.set("index", num(static_cast<double>(i)));
      return r;
    }
    auto p = rules::parse_pattern(e.as_string());
    if (!p) {
      ApiResult r = ApiResult::error(400, "entry " + std::to_string(i) + ": " + p.error());
      r.body.set("index", num(static_cast<double>(i)));
      return r;
    }
    set.add(std::move(p.value()));
  }
  size_t entries = set.size();
  std::shared_ptr<const rules::Policy> old;
  {
    std::lock_guard lock(mu_);
    auto it = base_->policies.find(policy);
    if (it == base_->policies.end()) return ApiResult::error(404, "no policy named \"" + policy + "\"");
    old = it->second;
  }
  // Copying the other list is as heavy as building this one: also outside mu_ (heavy_mu_
  // keeps `old` the policy in force until we commit).
  std::shared_ptr<const rules::Policy> next = rules::with_list(*old, which, std::move(set));
  double build_ms = static_cast<double>(uv_hrtime() - t0) / 1e6;
  uint64_t version;
  {
    std::lock_guard lock(mu_);
    auto base = std::make_shared<rules::Config>(*base_);
    base->policies[policy] = next;
    base_ = base;
    version = ++policy_versions_[policy];
    apply_locked(compose_locked());
  }
  old.reset();  // still held by retired snapshots; freed by sweep(), never on a worker
  Json f = Json::object();
  f.set("policy", str(policy));
  f.set("list", str(rules::to_string(which)));
  f.set("entries", num(static_cast<double>(entries)));
  f.set("version", num(static_cast<double>(version)));
  f.set("build_ms", num(std::round(build_ms * 10) / 10));
  event("policy", f);
  return ApiResult::ok(std::move(f));
}

}  // namespace sluice::proxy
