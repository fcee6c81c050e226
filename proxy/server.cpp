#include "proxy/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

std::string Server::start(std::shared_ptr<const rules::Config> config, int workers) {
  config_ = std::move(config);
  if (std::string err = log_.open(config_->log.path); !err.empty()) return err;
  shared_.log = &log_;
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
  auto rules = build_rules(*config_, static_cast<size_t>(workers));
  if (!rules) return "rules: " + rules.error();
  for (const auto& lc : config_->listeners) {
    auto bound = bind_listener(lc, workers);
    if (!bound) {
      for (auto& l : listeners_) release_listener(l);
      listeners_.clear();
      return bound.error();
    }
    listeners_.push_back(std::move(bound.value()));
  }
  for (int i = 0; i < workers; ++i) {
    auto w = std::make_unique<Worker>(i, shared_, config_, rules.value()[static_cast<size_t>(i)]);
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

std::string Server::reload(std::shared_ptr<const rules::Config> config) {
  const auto& old = *config_;
  bool listeners_same = old.listeners.size() == config->listeners.size();
  for (size_t i = 0; listeners_same && i < old.listeners.size(); ++i)
    listeners_same = same_socket(old.listeners[i], config->listeners[i]);
  if (!listeners_same) return "listener addresses changed: restart sluice to apply them";
  if (old.resolver.servers != config->resolver.servers || old.resolver.timeout_ms != config->resolver.timeout_ms)
    return "resolver settings changed: restart sluice to apply them";
  auto rules = build_rules(*config, workers_.size());
  if (!rules) return "rules: " + rules.error();
  if (old.log.path != config->log.path) {
    if (std::string err = log_.open(config->log.path); !err.empty()) return err;
  }
  config_ = config;
  for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->set_config(config, rules.value()[i]);
  return "";
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
  for (auto& w : workers_) w->stop(config_->limits.drain_timeout_ms);
  // Closing our copies now (workers close theirs) refuses new connections during the drain.
  for (auto& l : listeners_) release_listener(l);
  for (auto& w : workers_) w->join();
  workers_.clear();
  log_.stop();
}

}  // namespace sluice::proxy
