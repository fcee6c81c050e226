// `sluice serve`: the daemon front end. SIGHUP or a change to a rule file
// reloads; TERM/INT drain and exit.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <uv.h>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/flag_config.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/file_watch.hpp"
#include "proxy/json.hpp"
#include "proxy/server.hpp"
#include "rules/config.hpp"

namespace sluice::cli {

namespace {

const char* kServeUsage =
    "usage: sluice serve --config FILE [--workers N]\n"
    "       sluice serve --listen ADDR... [--allow PATTERN]... [--deny PATTERN]...\n"
    "                    [--default deny|allow] [--dns-server IP:PORT]... [--log PATH|-] [--workers N]\n"
    "\n"
    "Runs the proxy. Every listener speaks HTTP (CONNECT and plain requests) and SOCKS5\n"
    "(first byte 0x05; CONNECT only, names resolved by sluice). Every connection is judged:\n"
    "deny entries win, then the policy's Lua rules (docs/lua-api.md), then allow entries,\n"
    "then the policy default.\n"
    "\n"
    "  --config FILE         YAML configuration (docs/configuration.md)\n"
    "  --listen ADDR         unix:PATH or HOST:PORT (repeatable; listeners are named\n"
    "                        listener1, listener2, ... and use the policy 'default')\n"
    "  --allow PATTERN       allow entry: host, *.host (subdomains only), host:port,\n"
    "                        IP, CIDR, [v6]:port (repeatable)\n"
    "  --deny PATTERN        deny entry, same syntax; deny wins (repeatable)\n"
    "  --default deny|allow  what happens to hosts in neither list (default: deny)\n"
    "  --dns-server IP:PORT  DNS server to use instead of /etc/resolv.conf (repeatable)\n"
    "  --log PATH|-          JSON-lines decision log; '-' is stdout (default: -)\n"
    "  --workers N           event-loop threads (default: one per core)\n"
    "\n"
    "Signals: SIGHUP reloads --config (a bad file is reported and the old config stays);\n"
    "a change to any rule script the config names reloads it the same way.\n"
    "SIGTERM/SIGINT stop accepting, let open connections finish up to\n"
    "limits.drain_timeout_ms, and exit 0.\n";

struct Daemon {
  proxy::Server server;
  std::string config_path;
  uv_signal_t hup{}, term{}, intr{};
  std::unique_ptr<proxy::FileWatch> rule_watch;  // the rule scripts of the config in force
  bool stopping = false;
};

void log_reload(proxy::Server& server, const char* trigger, bool ok, const std::string& error) {
  proxy::JsonLine j;
  j.str("ts", proxy::DecisionLog::now_iso8601()).str("event", "reload").str("trigger", trigger).boolean("ok", ok);
  if (!ok) j.str("error", error);
  server.log().write(j.done());
}

void watch_rules(Daemon* d) {
  if (!d->rule_watch) return;
  if (std::string err = d->rule_watch->watch(rules::rule_files(d->server.config())); !err.empty())
    std::fprintf(stderr, "sluice: %s (rule changes there need SIGHUP)\n", err.c_str());
}

// `trigger`: "signal" (SIGHUP) or "rule-file" (a watched script changed).
void reload(Daemon* d, const char* trigger) {
  if (d->config_path.empty()) {
    std::fprintf(stderr, "sluice: reload ignored: started without --config\n");
    return log_reload(d->server, trigger, false, "started without --config");
  }
  auto load = rules::load_config_file(d->config_path);
  if (!load.errors.empty()) {
    for (const auto& e : load.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "sluice: reload failed; the previous config stays in force\n");
    return log_reload(d->server, trigger, false, load.errors.front().to_string());
  }
  if (std::string err = d->server.reload(load.config); !err.empty()) {
    std::fprintf(stderr, "sluice: reload failed: %s; the previous config stays in force\n", err.c_str());
    return log_reload(d->server, trigger, false, err);
  }
  std::fprintf(stderr, "sluice: reloaded %s (%s)\n", d->config_path.c_str(),
               std::strcmp(trigger, "signal") == 0 ? "SIGHUP" : "a rule file changed");
  log_reload(d->server, trigger, true, "");
  watch_rules(d);
}

void on_hup(uv_signal_t* h, int) { reload(static_cast<Daemon*>(h->data), "signal"); }

void on_stop(uv_signal_t* h, int signum) {
  auto* d = static_cast<Daemon*>(h->data);
  if (d->stopping) return;
  d->stopping = true;
  std::fprintf(stderr, "sluice: %s received, draining connections (up to %d ms)\n",
               signum == SIGINT ? "SIGINT" : "SIGTERM", d->server.config().limits.drain_timeout_ms);
  uv_close(reinterpret_cast<uv_handle_t*>(&d->hup), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&d->term), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&d->intr), nullptr);
  if (d->rule_watch) d->rule_watch->close();
}

}  // namespace

int serve_main(int argc, char** argv) {
  Args a = parse_args(argc, argv, 1,
                      {"--config", "--listen", "--allow", "--deny", "--default", "--dns-server", "--log", "--workers"},
                      {"--help", "-h"});
  if (a.has("--help") || a.has("-h")) {
    std::fputs(kServeUsage, stdout);
    return 0;
  }
  if (!a.error.empty() || !a.positional.empty()) {
    std::fprintf(stderr, "sluice serve: %s (see sluice serve --help)\n",
                 a.error.empty() ? ("unexpected argument " + a.positional.front()).c_str() : a.error.c_str());
    return 2;
  }
  int workers = 0;
  if (a.has("--workers")) {
    try {
      workers = std::stoi(a.one("--workers"));
    } catch (...) {
      workers = -1;
    }
    if (workers < 1 || workers > 256) {
      std::fprintf(stderr, "sluice serve: --workers must be a number from 1 to 256\n");
      return 2;
    }
  }

  auto d = std::make_unique<Daemon>();
  std::shared_ptr<rules::Config> config;
  if (a.has("--config")) {
    for (const char* f : {"--listen", "--allow", "--deny", "--default", "--dns-server", "--log"}) {
      if (a.has(f)) {
        std::fprintf(stderr, "sluice serve: %s cannot be combined with --config; put it in the file\n", f);
        return 2;
      }
    }
    d->config_path = a.one("--config");
    auto load = rules::load_config_file(d->config_path);
    if (!load.errors.empty()) {
      for (const auto& e : load.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
      return 2;
    }
    config = load.config;
  } else {
    auto built = config_from_flags(a);
    if (!built) {
      std::fprintf(stderr, "sluice serve: %s\n", built.error().c_str());
      return 2;
    }
    config = built.value();
  }

  std::signal(SIGPIPE, SIG_IGN);
  if (std::string err = d->server.start(config, workers); !err.empty()) {
    std::fprintf(stderr, "sluice serve: %s\n", err.c_str());
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  for (auto [sig, h, cb] : {std::tuple{SIGHUP, &d->hup, &on_hup}, std::tuple{SIGTERM, &d->term, &on_stop},
                            std::tuple{SIGINT, &d->intr, &on_stop}}) {
    uv_signal_init(&loop, h);
    h->data = d.get();
    uv_signal_start(h, cb, sig);
  }
  if (!d->config_path.empty()) {
    Daemon* daemon = d.get();
    d->rule_watch = std::make_unique<proxy::FileWatch>(&loop, [daemon] { reload(daemon, "rule-file"); });
    watch_rules(daemon);
  }
  for (const auto& l : d->server.listeners())
    std::fprintf(stderr, "sluice: listening %s on %s\n", l.info->name.c_str(), l.info->address.c_str());
  std::fprintf(stderr, "sluice: ready\n");
  std::fflush(stderr);
  uv_run(&loop, UV_RUN_DEFAULT);
  d->rule_watch.reset();
  uv_loop_close(&loop);
  d->server.stop();
  std::fprintf(stderr, "sluice: stopped\n");
  return 0;
}

}  // namespace sluice::cli
