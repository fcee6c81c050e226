// `sluice serve`: the daemon front end. SIGHUP or a change to a rule file
// reloads; TERM/INT drain and exit.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <uv.h>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/flag_config.hpp"
#include "cli/service_notify.hpp"
#include "control/control_plane.hpp"
#include "control/control_server.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/file_watch.hpp"
#include "proxy/json.hpp"
#include "proxy/server.hpp"
#include "rules/config.hpp"

namespace sluice::cli {

namespace {

struct Daemon {
  proxy::Server server;
  std::string config_path;
  std::unique_ptr<proxy::ControlPlane> plane;
  std::unique_ptr<proxy::ControlServer> control;
  uv_signal_t hup{}, term{}, intr{};
  std::unique_ptr<proxy::FileWatch> rule_watch;  // the rule scripts of the config in force
  bool stopping = false;
  ServiceNotifier notify;  // systemd Type=notify (packaging/sluice.service)
};

void watch_rules(Daemon* d) {
  if (!d->rule_watch) return;
  if (std::string err = d->rule_watch->watch(rules::rule_files(*d->server.config())); !err.empty())
    std::fprintf(stderr, "sluice: %s (rule changes there need SIGHUP)\n", err.c_str());
}

// `trigger`: "signal" (SIGHUP) or "rule-file" (a watched script changed). The same reload as
// POST /v1/reload, on the control plane's job thread (a big file takes a while).
void reload(Daemon* d, const char* trigger) {
  auto result = std::make_shared<proxy::ApiResult>();
  proxy::ControlPlane* plane = d->plane.get();
  std::string why = trigger;
  d->notify.reloading();
  d->control->off_loop([plane, result, why] { *result = plane->reload(why); },
                       [d, plane, result, why] {
                         d->notify.ready();  // a failed reload leaves the old config serving
                         if (result->status == 200) {
                           std::fprintf(stderr, "sluice: reloaded %s (%s)\n", plane->options().config_path.c_str(),
                                        why == "signal" ? "SIGHUP" : "a rule file changed");
                           return watch_rules(d);
                         }
                         const rules::Json* errors = result->body.find("errors");
                         if (errors != nullptr) {
                           for (const auto& e : errors->items()) std::fprintf(stderr, "%s\n", e.as_string().c_str());
                           std::fprintf(stderr, "sluice: reload failed; the previous config stays in force\n");
                           return;
                         }
                         std::fprintf(stderr, "sluice: reload failed: %s; the previous config stays in force\n",
                                      result->body.find("error")->as_string().c_str());
                       });
}

void on_hup(uv_signal_t* h, int) { reload(static_cast<Daemon*>(h->data), "signal"); }

void on_stop(uv_signal_t* h, int signum) {
  auto* d = static_cast<Daemon*>(h->data);
  if (d->stopping) return;
  d->stopping = true;
  d->notify.stopping();
  std::fprintf(stderr, "sluice: %s received, draining connections (up to %d ms)\n",
               signum == SIGINT ? "SIGINT" : "SIGTERM", d->server.config()->limits.drain_timeout_ms);
  uv_close(reinterpret_cast<uv_handle_t*>(&d->hup), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&d->term), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&d->intr), nullptr);
  if (d->rule_watch) d->rule_watch->close();
  d->control->close();  // the loop ends once its handles are closed
}

int serve_main(const Args& a) {
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
  int probe_ms = 0;
  if (a.has("--loop-probe-ms")) {
    try {
      probe_ms = std::stoi(a.one("--loop-probe-ms"));
    } catch (...) {
      probe_ms = -1;
    }
    if (probe_ms < 1 || probe_ms > 1000) {
      std::fprintf(stderr, "sluice serve: --loop-probe-ms must be a number from 1 to 1000\n");
      return 2;
    }
  }

  auto d = std::make_unique<Daemon>();
  std::shared_ptr<rules::Config> config;
  if (a.has("--config")) {
    for (const char* f : {"--listen", "--allow", "--deny", "--default", "--dns-server", "--log", "--control"}) {
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
    if (a.has("--control")) config->control.unix_path = a.one("--control");
  }

  std::signal(SIGPIPE, SIG_IGN);
  if (std::string err = d->server.start(config, workers, probe_ms); !err.empty()) {
    std::fprintf(stderr, "sluice serve: %s\n", err.c_str());
    return 1;
  }
  const rules::ControlConfig& ctl = config->control;
  d->plane = std::make_unique<proxy::ControlPlane>(
      d->server, proxy::ControlPlane::Options{d->config_path, ctl.state_path(), ctl.enabled() ? ctl.sandbox_path() : "",
                                              SLUICE_VERSION});
  if (std::string err = d->plane->start(); !err.empty()) {
    std::fprintf(stderr, "sluice serve: %s\n", err.c_str());
    d->server.stop();
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  // Without a control socket it still runs: reloads go through it, and it frees retired configs.
  d->control = std::make_unique<proxy::ControlServer>(&loop, *d->plane);
  if (ctl.enabled()) {
    if (std::string err = d->control->listen(ctl.unix_path); !err.empty()) {
      std::fprintf(stderr, "sluice serve: %s\n", err.c_str());
      d->control->close();
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_loop_close(&loop);
      d->server.stop();
      return 1;
    }
    // Someone can answer asks now: `sluice ctl pending` / `allow`, or any API client.
    d->server.asks().set_answerable(true);
  }
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
  if (ctl.enabled()) std::fprintf(stderr, "sluice: control socket on unix:%s\n", ctl.unix_path.c_str());
  std::fprintf(stderr, "sluice: ready\n");
  std::fflush(stderr);
  d->notify.ready();
  uv_run(&loop, UV_RUN_DEFAULT);
  d->rule_watch.reset();
  uv_loop_close(&loop);
  d->control->stop_jobs();
  d->server.stop();
  d->plane->stop();
  std::fprintf(stderr, "sluice: stopped\n");
  return 0;
}

}  // namespace

Subcommand serve_command(CLI::App& root) {
  auto c = std::make_shared<Command>(root, "serve", "run the proxy daemon");
  c->description(
       "Runs the proxy. Every listener speaks HTTP (CONNECT and plain requests) and SOCKS5\n"
       "(first byte 0x05; CONNECT only, names resolved by sluice). Every connection is judged:\n"
       "deny entries win, then the policy's Lua rules (docs/lua-api.md), then allow entries,\n"
       "then the policy default. Give --config FILE, or --listen ADDR with the flags that\n"
       "build a config (--allow, --deny, --default, --dns-server, --log, --control).")
      .value("--config", "FILE", "YAML configuration (docs/configuration.md)")
      .value("--listen", "ADDR",
             "unix:PATH or HOST:PORT (repeatable; listeners are named\n"
             "listener1, listener2, ... and use the policy 'default')",
             true)
      .value("--allow", "PATTERN",
             "allow entry: host, *.host (subdomains only), host:port,\nIP, CIDR, [v6]:port (repeatable)", true)
      .value("--deny", "PATTERN", "deny entry, same syntax; deny wins (repeatable)", true)
      .value("--default", "deny|allow|ask",
             "what happens to hosts in neither list (default: deny);\n"
             "ask holds the connection until someone answers through\n"
             "the control socket (sluice ctl pending / allow / deny)")
      .value("--dns-server", "IP:PORT", "DNS server to use instead of /etc/resolv.conf (repeatable)", true)
      .value("--log", "PATH|-", "JSON-lines decision log; '-' is stdout (default: -)")
      .value("--control", "PATH",
             "the control socket (mode 0600; with --config: control: {unix: PATH});\n"
             "sluice ctl and the HTTP API in docs/control-api.md use it")
      .value("--workers", "N", "event-loop threads (default: one per core)")
      .value("--loop-probe-ms", "MS",
             "measure each worker loop's lag with a timer every MS ms\n"
             "and each loop turn's CPU time (sluice_loop_lag_*,\n"
             "sluice_loop_busy_max_seconds in GET /v1/metrics; for benchmarks)")
      .footer(
          "Signals: SIGHUP reloads --config like POST /v1/reload (a bad file is reported and\n"
          "the old config stays; sandboxes made through the API are kept, live list changes\n"
          "are replaced by the file's lists); a change to any rule script the config names\n"
          "reloads it the same way.\n"
          "SIGTERM/SIGINT stop accepting, let open connections finish up to\n"
          "limits.drain_timeout_ms, and exit 0.");
  return {c, serve_main};
}

}  // namespace sluice::cli
