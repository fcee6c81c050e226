#include "proxy/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "proxy/json.hpp"

namespace sluice::proxy {

namespace {

// The socket a listener is bound to; its policy may change on reload.
bool same_socket(const rules::ListenerConfig& a, const rules::ListenerConfig& b) {
  return a.name == b.name && a.kind == b.kind && a.path == b.path && a.host == b.host && a.port == b.port &&
         a.mode == b.mode;
}

}  // namespace

Server::~Server() { stop(); }

rules::Result<std::vector<std::shared_ptr<rules::WorkerRules>>> Server::build_rules(const rules::Config& config,
                                                                                    size_t workers) {
  std::vector<std::shared_ptr<rules::WorkerRules>> out;
  for (size_t i = 0; i < workers; ++i) {
    auto built = runtime_.build(config);
    if (!built) return rules::Err{built.error()};
    out.push_back(built.value());
  }
  return out;
}

rules::Result<std::vector<std::shared_ptr<rules::WorkerRules>>> Server::build_rules(const rules::Config& config) {
  return build_rules(config, workers_.size());
}

std::string Server::start(std::shared_ptr<const rules::Config> config, int workers, int loop_probe_ms) {
  set_config_ptr(config);
  log_.set_tap(&events_);
  if (std::string err = log_.open(config->log.path); !err.empty()) return err;
  shared_.log = &log_;
  shared_.asks = &asks_;
  shared_.loop_probe_ms = loop_probe_ms;
  shared_.self_addresses = interface_addresses();
  // sluice.log(level, message) from any worker's scripts.
  runtime_.set_log_sink([log = &log_](const rules::LuaLogRecord& r) {
    if (!log->enabled()) return;
    JsonLine j;
    j.str("ts", DecisionLog::now_iso8601()).str("event", "lua-log").num("conn", static_cast<int64_t>(r.conn));
    j.str("script", r.script).str("level", r.level).str("message", r.message);
    log->write(j.done());
  });
  if (workers <= 0) workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto rules = build_rules(*config, static_cast<size_t>(workers));
  if (!rules) return "rules: " + rules.error();
  auto inspector = inspector_for(*config);
  if (!inspector) return inspector.error();
  set_inspector(inspector.value());
  for (const auto& lc : config->listeners) {
    auto bound = bind_listener(lc, workers);
    if (!bound) {
      for (auto& l : listeners_) release_listener(l);
      listeners_.clear();
      return bound.error();
    }
    listeners_.push_back(std::move(bound.value()));
  }
  rules_ = rules.value();
  for (int i = 0; i < workers; ++i) {
    auto w = std::make_unique<Worker>(i, shared_, config, rules_[static_cast<size_t>(i)]);
    if (std::string err = w->prepare(listeners_); !err.empty()) {
      workers_.clear();
      for (auto& l : listeners_) release_listener(l);
      listeners_.clear();
      return err;
    }
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) w->start();
  return "";
}

std::string Server::reload_blocker(const rules::Config& old, const rules::Config& next,
                                   const std::vector<std::string>& ignore) {
  auto kept = [&](const rules::Config& c) {
    std::vector<const rules::ListenerConfig*> out;
    for (const auto& l : c.listeners)
      if (std::find(ignore.begin(), ignore.end(), l.name) == ignore.end()) out.push_back(&l);
    return out;
  };
  auto a = kept(old), b = kept(next);
  bool listeners_same = a.size() == b.size();
  for (size_t i = 0; listeners_same && i < a.size(); ++i) listeners_same = same_socket(*a[i], *b[i]);
  if (!listeners_same) return "listener addresses changed: restart sluice to apply them";
  if (old.resolver.servers != next.resolver.servers || old.resolver.timeout_ms != next.resolver.timeout_ms)
    return "resolver settings changed: restart sluice to apply them";
  if (old.control.unix_path != next.control.unix_path || old.control.state_path() != next.control.state_path() ||
      old.control.sandbox_path() != next.control.sandbox_path())
    return "control settings changed: restart sluice to apply them";
  return "";
}

std::string Server::reload(std::shared_ptr<const rules::Config> config) {
  const auto current = this->config();
  if (std::string err = reload_blocker(*current, *config); !err.empty()) return err;
  auto rules = build_rules(*config, workers_.size());
  if (!rules) return "rules: " + rules.error();
  auto inspector = inspector_for(*config);
  if (!inspector) return inspector.error();
  set_inspector(inspector.value());
  if (current->log.path != config->log.path) {
    if (std::string err = log_.open(config->log.path); !err.empty()) return err;
  }
  apply(std::move(config), std::move(rules.value()));
  return "";
}

tls::InspectorSettings inspector_settings(const rules::TlsConfig& t) {
  return {t.ca_cert, t.ca_key, t.upstream_ca, t.leaf_cache, t.session_cache};
}

rules::Result<std::shared_ptr<tls::Inspector>> Server::inspector_for(const rules::Config& config) const {
  const rules::TlsConfig& t = config.tls;
  if (!t.has_ca()) {
    if (preset_inspector_) return preset_inspector_;
    for (const auto& [name, p] : config.policies)
      if (p && !p->inspect.empty())
        return rules::Err{"policy '" + name +
                          "' inspects hosts (inspect:) but no CA is configured: set tls: {ca_cert, ca_key} (make them "
                          "with `sluice ca init DIR`)"};
    return std::shared_ptr<tls::Inspector>();
  }
  tls::InspectorSettings s = inspector_settings(t);
  if (auto current = inspector(); current && current->settings() == s) return current;
  std::string error;
  auto made = tls::Inspector::load(s, error);
  if (!made) return rules::Err{"tls: " + error};
  return made;
}

void Server::set_inspector(std::shared_ptr<tls::Inspector> inspector) {
  std::lock_guard lock(shared_.inspector_mu);
  shared_.inspector = std::move(inspector);
}

std::shared_ptr<tls::Inspector> Server::inspector() const {
  std::lock_guard lock(shared_.inspector_mu);
  return shared_.inspector;
}

std::vector<std::shared_ptr<rules::WorkerRules>> Server::apply(std::shared_ptr<const rules::Config> config,
                                                               std::vector<std::shared_ptr<rules::WorkerRules>> rules) {
  std::vector<std::shared_ptr<rules::WorkerRules>> old;
  if (rules.size() == workers_.size() && !rules.empty()) old = std::exchange(rules_, std::move(rules));
  set_config_ptr(config);
  for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->set_config(config, rules_[i]);
  return old;
}

void Server::add_listener(BoundListener l) {
  for (auto& w : workers_) w->add_listener(l);
  listeners_.push_back(std::move(l));
}

void Server::add_sandbox_listener(BoundListener l) {
  if (workers_.empty() || l.fds.size() != 1) return add_listener(std::move(l));
  workers_[next_owner_++ % workers_.size()]->own_listener(l.fds.front(), l.info);
  l.fds.clear();  // the worker closes it; release_listener() still removes the socket file
  listeners_.push_back(std::move(l));
}

bool Server::remove_listener(const std::string& name) {
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (it->info->name != name) continue;
    it->info->removed = true;
    for (auto& w : workers_) w->remove_listener(name);
    release_listener(*it);  // workers close their own copies
    listeners_.erase(it);
    return true;
  }
  return false;
}

void Server::collect_metrics(std::function<void(WorkerMetrics, std::vector<LoopMax>)> done) {
  struct Gather {
    std::mutex mu;
    size_t left;
    WorkerMetrics total;
    std::vector<LoopMax> lag_max;
    std::function<void(WorkerMetrics, std::vector<LoopMax>)> done;
  };
  auto g = std::make_shared<Gather>();
  g->left = workers_.size();
  g->lag_max.assign(workers_.size(), LoopMax{});
  g->done = std::move(done);
  if (workers_.empty()) return g->done(std::move(g->total), std::move(g->lag_max));
  for (size_t i = 0; i < workers_.size(); ++i) {
    bool posted = workers_[i]->snapshot_metrics([g, i](const WorkerMetrics& m) {
      bool last;
      {
        std::lock_guard lock(g->mu);
        g->total.merge(m);
        g->lag_max[i] = m.loop_max;
        last = --g->left == 0;
      }
      if (last) g->done(std::move(g->total), std::move(g->lag_max));
    });
    if (!posted) {
      bool last;
      {
        std::lock_guard lock(g->mu);
        last = --g->left == 0;
      }
      if (last) g->done(std::move(g->total), std::move(g->lag_max));
    }
  }
}

std::vector<int> Server::open_channels(const std::string& listener, std::string* error) {
  std::shared_ptr<const ListenerInfo> info;
  for (const auto& l : listeners_)
    if (l.info->name == listener) info = l.info;
  if (!info) {
    *error = "no listener named " + listener;
    return {};
  }
  std::vector<int> far_ends;
  for (auto& w : workers_) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      *error = std::string("socketpair: ") + std::strerror(errno);
      for (int fd : far_ends) ::close(fd);
      return {};
    }
    w->adopt_channel(sv[0], info);
    far_ends.push_back(sv[1]);
  }
  return far_ends;
}

void Server::stop() {
  if (stopped_ || workers_.empty()) return;
  stopped_ = true;
  // No answer may reach a worker from now on; connections still asking are drained.
  asks_.set_answerable(false);
  asks_.close();
  const int drain_ms = config()->limits.drain_timeout_ms;
  for (auto& w : workers_) w->stop(drain_ms);
  // Closing our copies now (workers close theirs) refuses new connections during the drain.
  for (auto& l : listeners_) release_listener(l);
  for (auto& w : workers_) w->join();
  workers_.clear();
  log_.stop();
}

}  // namespace sluice::proxy
