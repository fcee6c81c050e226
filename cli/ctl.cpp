// `sluice ctl`: talks to a running `sluice serve` through its control socket
// (docs/control-api.md), and edits a state file directly with --state.
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/control_client.hpp"
#include "control/state_file.hpp"
#include "rules/json.hpp"
#include "rules/pattern.hpp"
#include "rules/remembered.hpp"

namespace sluice::cli {

namespace {

using rules::Json;

int usage_error(const std::string& m) {
  std::fprintf(stderr, "sluice ctl: %s (see sluice ctl --help)\n", m.c_str());
  return 2;
}

int fail(const std::string& m) {
  std::fprintf(stderr, "sluice ctl: %s\n", m.c_str());
  return 1;
}

std::string text(const Json* j, const char* key) {
  const Json* v = j ? j->find(key) : nullptr;
  if (v == nullptr) return "";
  if (v->is_string()) return v->as_string();
  return v->dump();
}

// The response as JSON, or a printed error and false.
bool parse_reply(const ControlResponse& r, Json& out, int& code) {
  if (r.status == 0) {
    code = fail(r.error);
    return false;
  }
  auto j = Json::parse(r.body);
  if (!j) {
    code = fail("sluice answered " + std::to_string(r.status) + " with a body that is not JSON");
    return false;
  }
  out = std::move(j.value());
  if (r.status >= 300) {
    std::string msg = text(&out, "error");
    code = fail(msg.empty() ? "sluice answered " + std::to_string(r.status) : msg);
    if (const Json* errors = out.find("errors"))
      for (const auto& e : errors->items())
        if (e.is_string() && e.as_string() != msg) std::fprintf(stderr, "%s\n", e.as_string().c_str());
    return false;
  }
  return true;
}

std::string clock_of(const std::string& iso) {  // "2026-...T22:45:36.068Z" -> "22:45:36"
  auto t = iso.find('T');
  return t == std::string::npos ? iso : iso.substr(t + 1, 8);
}

std::string target_of(const Json& e) {
  std::string h = text(&e, "host");
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  std::string p = text(&e, "port");
  return p.empty() ? h : h + ":" + p;
}

// One event as one readable line.
std::string human_event(const Json& e) {
  std::string ev = text(&e, "event");
  std::string line = clock_of(text(&e, "ts")) + " ";
  char col[16];
  std::snprintf(col, sizeof col, "%-8s ", ev == "decision" ? text(&e, "verdict").c_str() : ev.c_str());
  line += col;
  if (ev == "decision") {
    line += text(&e, "listener") + " " + text(&e, "kind");
    if (!text(&e, "method").empty() && text(&e, "kind") == "http") line += " " + text(&e, "method");
    line += " " + (text(&e, "url").empty() ? target_of(e) : text(&e, "url"));
    std::string outcome = text(&e, "status");
    if (outcome.empty()) outcome = text(&e, "socks_reply").empty() ? "" : "socks " + text(&e, "socks_reply");
    line += "  " + outcome;
    std::string reason = text(&e, "error").empty() ? text(&e, "reason") : text(&e, "error");
    if (!reason.empty()) line += " " + reason;
    if (!text(&e, "rule").empty() && text(&e, "rule") != "default") line += " (" + text(&e, "rule") + ")";
    if (!text(&e, "question").empty()) line += " [question " + text(&e, "question") + "]";
  } else if (ev == "ask") {
    line += "#" + text(&e, "id") + " " + text(&e, "listener") + " wants " + target_of(e) + " (" + text(&e, "kind") +
            ", policy " + text(&e, "policy") + "): sluice ctl allow " + text(&e, "id") + " | deny " + text(&e, "id");
  } else if (ev == "answer") {
    line += "#" + text(&e, "id") + " " + target_of(e) + " " + text(&e, "verdict") + " " + text(&e, "remember") +
            " by " + text(&e, "by") + " (" + text(&e, "released") + " released)";
  } else if (ev == "ask-expired") {
    line += "#" + text(&e, "id") + " " + target_of(e) + " " + text(&e, "reason");
  } else if (ev == "close") {
    line += "conn " + text(&e, "conn") + " " + text(&e, "listener") + " up " + text(&e, "bytes_up") + " down " +
            text(&e, "bytes_down") + " " + text(&e, "duration_ms") + " ms";
  } else {
    // Anything else: its fields, except the two already shown.
    for (const auto& [k, v] : e.members()) {
      if (k == "ts" || k == "event") continue;
      line += k + "=" + (v.is_string() ? v.as_string() : v.dump()) + " ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
  }
  return line;
}

int cmd_status(ControlClient& c, bool json) {
  Json j;
  int code = 0;
  auto r = c.request("GET", "/v1/status");
  if (!parse_reply(r, j, code)) return code;
  if (json) {
    std::printf("%s\n", r.body.c_str());
    return 0;
  }
  const Json* conns = j.find("connections");
  std::printf("sluice %s, pid %s, up %s s, %s workers, %s connections open\n", text(&j, "version").c_str(),
              text(&j, "pid").c_str(), text(&j, "uptime_s").c_str(), text(&j, "workers").c_str(),
              text(conns, "open").c_str());
  std::printf("listeners:\n");
  if (const Json* ls = j.find("listeners"))
    for (const auto& l : ls->items())
      std::printf("  %-16s %-36s policy %-12s %s open%s\n", text(&l, "name").c_str(), text(&l, "address").c_str(),
                  text(&l, "policy").c_str(), text(&l, "open").c_str(),
                  text(&l, "sandbox") == "true" ? "  (sandbox)" : "");
  std::printf("policies:\n");
  if (const Json* ps = j.find("policies"))
    for (const auto& p : ps->items())
      std::printf("  %-16s version %-4s default %-5s allow %-8s deny %s\n", text(&p, "name").c_str(),
                  text(&p, "version").c_str(), text(&p, "default").c_str(), text(&p, "allow").c_str(),
                  text(&p, "deny").c_str());
  const Json* asks = j.find("asks");
  std::printf("asks: %s pending, %s remembered%s%s\n", text(asks, "pending").c_str(), text(asks, "remembered").c_str(),
              text(asks, "state_file").empty() ? "" : ", state file ", text(asks, "state_file").c_str());
  std::printf("events: %s readers\n", text(j.find("events"), "readers").c_str());
  return 0;
}

int cmd_pending(ControlClient& c, bool json) {
  Json j;
  int code = 0;
  auto r = c.request("GET", "/v1/pending");
  if (!parse_reply(r, j, code)) return code;
  if (json) {
    std::printf("%s\n", r.body.c_str());
    return 0;
  }
  const Json* list = j.find("pending");
  if (list == nullptr || list->items().empty()) {
    std::printf("no questions pending\n");
    return 0;
  }
  std::printf("%-6s %-40s %-12s %-8s %-9s %s\n", "ID", "TARGET", "POLICY", "WAITING", "WAITED", "SANDBOXES");
  for (const auto& q : list->items()) {
    std::string sandboxes;
    if (const Json* ls = q.find("listeners"))
      for (const auto& l : ls->items()) sandboxes += (sandboxes.empty() ? "" : ",") + l.as_string();
    std::printf("%-6s %-40s %-12s %-8s %-9s %s\n", text(&q, "id").c_str(), target_of(q).c_str(),
                text(&q, "policy").c_str(), text(&q, "waiting").c_str(), (text(&q, "waited_ms") + "ms").c_str(),
                sandboxes.c_str());
  }
  return 0;
}

int cmd_answer(ControlClient& c, const std::string& verdict, const Args& a) {
  if (a.positional.size() != 2) return usage_error(verdict + " needs one question ID (see sluice ctl pending)");
  if (a.has("--session") && a.has("--always")) return usage_error("--session or --always, not both");
  std::string remember = a.has("--always") ? "always" : a.has("--session") ? "session" : "once";
  Json body = Json::object();
  body.set("verdict", Json::string(verdict));
  body.set("remember", Json::string(remember));
  Json j;
  int code = 0;
  if (!parse_reply(c.request("POST", "/v1/pending/" + a.positional[1], body.dump()), j, code)) return code;
  std::printf("%s %s (%s): %s connection%s released\n", verdict == "allow" ? "allowed" : "denied", target_of(j).c_str(),
              remember.c_str(), text(&j, "released").c_str(), text(&j, "released") == "1" ? "" : "s");
  return 0;
}

void print_answers(const Json* list, const char* empty) {
  if (list == nullptr || list->items().empty()) {
    std::printf("%s\n", empty);
    return;
  }
  for (const auto& a : list->items())
    std::printf("%-12s %-40s %-6s %-8s %s\n", text(&a, "policy").c_str(), target_of(a).c_str(),
                text(&a, "verdict").c_str(), text(&a, "remember").c_str(), text(&a, "at").c_str());
}

// forget on a state file, without a daemon (sluice run --ask keeps one per user).
int forget_in_file(const std::string& path, const rules::HostPattern& pattern, const std::string& policy) {
  std::ifstream in(path);
  if (!in) return fail("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  auto loaded = rules::Remembered::parse_state(ss.str(), path);
  if (!loaded) return fail(loaded.error());
  rules::Remembered r;
  for (const auto& a : loaded.value()) r.put(a);
  auto removed = r.forget(pattern, policy);
  if (!removed.empty())
    if (std::string err = proxy::write_file_atomically(path, r.to_state_json()); !err.empty()) return fail(err);
  std::printf("forgot %zu answer%s\n", removed.size(), removed.size() == 1 ? "" : "s");
  return 0;
}

int ctl_main(const Args& a) {
  if (a.positional.empty()) return usage_error("no command");
  const std::string cmd = a.positional[0];
  const bool json = a.has("--json");
  auto only = [&](size_t n) { return a.positional.size() == n; };

  if (cmd == "forget") {
    if (!only(2)) return usage_error("forget needs one PATTERN");
    auto pattern = rules::parse_pattern(a.positional[1]);
    if (!pattern) return usage_error(pattern.error());
    if (a.has("--state")) return forget_in_file(a.one("--state"), pattern.value(), a.one("--policy"));
  }
  ControlClient c(a.one("--socket", default_control_socket()));
  Json j;
  int code = 0;
  if (cmd == "status" && only(1)) return cmd_status(c, json);
  if (cmd == "pending" && only(1)) return cmd_pending(c, json);
  if (cmd == "allow" || cmd == "deny") return cmd_answer(c, cmd, a);
  if (cmd == "metrics" && only(1)) {
    auto r = c.request("GET", "/v1/metrics");
    if (r.status != 200) return r.status == 0 ? fail(r.error) : fail("sluice answered " + std::to_string(r.status));
    std::fputs(r.body.c_str(), stdout);
    return 0;
  }
  if (cmd == "watch" && only(1)) {
    std::string err = c.stream("/v1/events", [&](const std::string& line) {
      if (json) {
        std::printf("%s\n", line.c_str());
      } else {
        auto e = Json::parse(line);
        std::printf("%s\n", e && e->is_object() ? human_event(e.value()).c_str() : line.c_str());
      }
      std::fflush(stdout);
      return true;
    });
    if (!err.empty()) return fail(err);
    return fail("sluice closed the event stream");
  }
  if (cmd == "remembered" && only(1)) {
    auto r = c.request("GET", "/v1/remembered");
    if (!parse_reply(r, j, code)) return code;
    if (json)
      std::printf("%s\n", r.body.c_str());
    else
      print_answers(j.find("remembered"), "no answers remembered");
    return 0;
  }
  if (cmd == "forget") {
    Json body = Json::object();
    body.set("pattern", Json::string(a.positional[1]));
    if (a.has("--policy")) body.set("policy", Json::string(a.one("--policy")));
    if (!parse_reply(c.request("POST", "/v1/forget", body.dump()), j, code)) return code;
    const Json* removed = j.find("removed");
    size_t n = removed ? removed->items().size() : 0;
    std::printf("forgot %zu answer%s\n", n, n == 1 ? "" : "s");
    if (n) print_answers(removed, "");
    return 0;
  }
  if (cmd == "reload" && only(1)) {
    if (!parse_reply(c.request("POST", "/v1/reload"), j, code)) return code;
    std::printf("reloaded\n");
    return 0;
  }
  if (cmd == "sandbox") {
    const std::string sub = a.positional.size() > 1 ? a.positional[1] : "";
    if (sub == "add" && only(3)) {
      Json body = Json::object();
      body.set("name", Json::string(a.positional[2]));
      body.set("policy", Json::string(a.one("--policy", "default")));
      auto r = c.request("POST", "/v1/sandboxes", body.dump());
      if (!parse_reply(r, j, code)) return code;
      // --json: the whole answer, with the sandbox's credential stand-ins and CA (never a secret).
      std::printf("%s\n", json ? r.body.c_str() : text(&j, "path").c_str());
      return 0;
    }
    if (sub == "rm" && only(3)) {
      if (!parse_reply(c.request("DELETE", "/v1/sandboxes/" + a.positional[2]), j, code)) return code;
      std::printf("removed %s\n", a.positional[2].c_str());
      return 0;
    }
    if (sub == "ls" && only(2)) {
      auto r = c.request("GET", "/v1/sandboxes");
      if (!parse_reply(r, j, code)) return code;
      if (json) {
        std::printf("%s\n", r.body.c_str());
        return 0;
      }
      for (const auto& s : j.find("sandboxes")->items())
        std::printf("%-20s %-12s %s\n", text(&s, "name").c_str(), text(&s, "policy").c_str(), text(&s, "path").c_str());
      return 0;
    }
    return usage_error("sandbox add NAME [--policy P] | sandbox rm NAME | sandbox ls");
  }
  return usage_error("unknown command or wrong arguments: " + cmd);
}

}  // namespace

Subcommand ctl_command(CLI::App& root) {
  auto c = std::make_shared<Command>(root, "ctl",
                                     "talk to a running sluice serve: status, metrics, watch, pending, allow, ...");
  c->description(
       "Talks to a running `sluice serve` through its control socket (default:\n"
       "$SLUICE_CONTROL, else /run/sluice/control.sock).\n"
       "\n"
       "commands:\n"
       "  status [--json]                  version, uptime, listeners, connections, policies\n"
       "  metrics                          the Prometheus text of GET /v1/metrics\n"
       "  watch [--json]                   print events as they happen, one line each\n"
       "  pending [--json]                 questions waiting for an answer\n"
       "  allow ID [--session|--always]    let question ID's connections through; remember it\n"
       "                                   until sluice restarts (--session) or for good (--always)\n"
       "  deny ID [--session|--always]     refuse them (403 ask-denied), optionally remembered\n"
       "  remembered [--json]              answers remembered (session and always)\n"
       "  forget PATTERN [--policy P]      drop remembered answers whose host:port PATTERN matches\n"
       "                                   (host, *.host, host:port, IP, CIDR); they are asked again\n"
       "  reload                           reload the config file (like SIGHUP)\n"
       "  sandbox add NAME [--policy P] [--json]\n"
       "                                   a new listener socket for a sandbox; prints its path\n"
       "                                   (--json: the API's answer, with the stand-ins of the\n"
       "                                   policy's credentials for this sandbox and the CA)\n"
       "  sandbox rm NAME                  remove it\n"
       "  sandbox ls [--json]              list the sandboxes made this way")
      .positionals("COMMAND [ARGS]", "a command and its arguments (above)")
      .value("--socket", "PATH", "the control socket")
      .flag("--json", "status, watch, pending, remembered, sandbox add, sandbox ls: the API's JSON")
      .flag("--session", "allow/deny: remember the answer until sluice restarts")
      .flag("--always", "allow/deny: remember the answer for good")
      .value("--policy", "P", "forget: only that policy's answers; sandbox add: the sandbox's policy")
      .value("--state", "FILE", "forget only: edit FILE (a `sluice run --ask` state file) directly")
      .footer(
          "Exit status: 0 done; 1 sluice refused or could not be reached (the reason is printed);\n"
          "2 bad arguments.");
  return {c, ctl_main};
}

}  // namespace sluice::cli
