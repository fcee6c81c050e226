// `sluice check`: validate a config, or ask "would HOST[:PORT] be allowed, and
// why?", running the policy's Lua hooks as a connection would.
#include <strings.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "proxy/http_message.hpp"
#include "rules/config.hpp"
#include "rules/git_guard.hpp"
#include "rules/host.hpp"
#include "rules/rule_engine.hpp"

namespace sluice::cli {

namespace {

int error(const std::string& msg) {
  std::fprintf(stderr, "sluice check: %s\n", msg.c_str());
  return 2;
}

std::string shown(const rules::CanonicalHost& h, uint16_t port) {
  return (h.kind == rules::HostKind::Ip && h.addr.v6 ? "[" + h.text + "]" : h.text) + ":" + std::to_string(port);
}

void print_verdict(const rules::Verdict& v, const std::string& target) {
  const char* action = v.would_deny ? "allow (report mode: would deny)" : rules::to_string(v.action);
  if (v.hook.empty()) {
    std::printf("%s %s: policy \"%s\", rule \"%s\" (%s)\n", action, target.c_str(), v.policy.c_str(), v.rule.c_str(),
                rules::c_str(v.reason));
    return;
  }
  std::string why = !v.error.empty() ? v.error : v.message;
  std::printf("%s %s: policy \"%s\", script \"%s\" %s (%s)%s%s\n", action, target.c_str(), v.policy.c_str(),
              v.rule.c_str(), v.hook.c_str(), rules::c_str(v.reason), why.empty() ? "" : ": ", why.c_str());
}

// One --git-push: "REF" (an update) or ":REF" (a delete), as a receive-pack command.
bool git_push_command(const std::string& text, rules::RefCommand& cmd) {
  const bool del = !text.empty() && text.front() == ':';
  cmd.ref = del ? text.substr(1) : text;
  cmd.old_oid = std::string(40, '1');
  cmd.new_oid = std::string(40, del ? '0' : '2');
  return rules::valid_ref_name(cmd.ref);
}

// The git guard's answer for the request, printed: nothing when no git rule guards the host.
// Returns 0 allowed (or not guarded), 1 refused.
int explain_git(const rules::Policy& policy, const rules::CanonicalHost& host, uint16_t port, const std::string& method,
                const std::string& path, const rules::HeaderFields& headers, const std::vector<std::string>& pushes) {
  const rules::GitRequest request = rules::classify_git_request(method, path, headers);
  const rules::GitAccess access = rules::judge_git_access(policy.git, host, port, request);
  if (access.decision == rules::GitAccess::Decision::NotGuarded) {
    if (pushes.empty()) return 0;
    std::printf("git: no git rule of policy \"%s\" guards %s; the push is not checked\n", policy.name.c_str(),
                shown(host, port).c_str());
    return 0;
  }
  const std::string what =
      std::string(rules::to_string(request.service)) + (request.repo.empty() ? std::string() : " " + request.repo);
  if (access.decision == rules::GitAccess::Decision::Deny) {
    std::printf("git %s: deny (git-denied): %s\n", what.c_str(), access.reason.c_str());
    return 1;
  }
  if (!access.needs_push_check || pushes.empty()) {
    std::printf("git %s: allow (rule for \"%s\")\n", what.c_str(), access.rule->host_source.c_str());
    return 0;
  }
  rules::ReceivePackRequest push;
  for (const auto& text : pushes) {
    rules::RefCommand cmd;
    git_push_command(text, cmd);  // checked when the arguments were read
    push.commands.push_back(std::move(cmd));
  }
  const rules::PushJudgment j = rules::judge_push(*access.rule, push);
  std::printf("git %s: %s (rule for \"%s\")\n", what.c_str(), j.allowed ? "allow" : "deny (git-push-refused)",
              access.rule->host_source.c_str());
  for (size_t i = 0; i < j.refs.size(); ++i)
    std::printf("  %s%s: %s%s%s\n", push.commands[i].is_delete() ? "delete " : "", j.refs[i].ref.c_str(),
                j.refs[i].allowed ? "allow" : "deny", j.refs[i].reason.empty() ? "" : ": ", j.refs[i].reason.c_str());
  return j.allowed ? 0 : 1;
}

int check_main(const Args& a) {
  if (!a.has("--config")) return error("--config FILE is required (see sluice check --help)");
  if (a.positional.size() > 1) return error("one HOST[:PORT] at a time");
  auto load = rules::load_config_file(a.one("--config"));
  if (!load.errors.empty()) {
    for (const auto& e : load.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 2;
  }
  const rules::Config& cfg = *load.config;
  bool has_url = a.has("--url");
  if (a.positional.empty() && !has_url) {
    size_t scripts = rules::rule_files(cfg).size();
    std::string extra = scripts ? ", " + std::to_string(scripts) + " rule scripts" : "";
    std::printf("%s: OK (%zu listeners, %zu policies%s)\n", cfg.source.c_str(), cfg.listeners.size(),
                cfg.policies.size(), extra.c_str());
    return 0;
  }
  const std::vector<std::string> pushes = a.all("--git-push");
  if (!pushes.empty() && !has_url) return error("--git-push needs --url https://HOST/OWNER/REPO.git");
  for (const auto& text : pushes) {
    rules::RefCommand cmd;
    if (!git_push_command(text, cmd))
      return error("--git-push: '" + text + "' is not a full ref name (refs/heads/..., or :refs/... to delete)");
  }
  std::string kind = a.one("--kind", has_url || a.has("--method") ? "http" : "connect");
  if (kind != "connect" && kind != "http" && kind != "socks") return error("--kind must be connect, http or socks");
  if (kind != "http" && (has_url || a.has("--method") || a.has("--header")))
    return error("--url, --method and --header are for --kind http");

  // Which listeners: the named one; else one when every listener gives the same answer (one
  // policy, no rules that could tell listeners apart); else each, one line apiece.
  std::vector<const rules::ListenerConfig*> listeners;
  bool per_listener = false;
  if (a.has("--listener")) {
    for (const auto& l : cfg.listeners)
      if (l.name == a.one("--listener")) listeners.push_back(&l);
    if (listeners.empty()) return error("no listener named '" + a.one("--listener") + "' in " + cfg.source);
  } else if (!cfg.listeners.empty()) {
    const rules::ListenerConfig& first = cfg.listeners.front();
    for (const auto& l : cfg.listeners) {
      const rules::Policy* p = cfg.policy(l.policy);
      if (l.policy != first.policy || (&l != &first && p != nullptr && !p->rules.empty())) per_listener = true;
    }
    if (per_listener)
      for (const auto& l : cfg.listeners) listeners.push_back(&l);
    else
      listeners.push_back(&first);
  } else {
    listeners.push_back(nullptr);  // no listener: the policy 'default', or the only one
  }

  // The target: HOST[:PORT], or the URL's host and port.
  std::string raw_host;
  uint16_t port = 443;
  proxy::AbsoluteUrl url;
  std::string url_text;
  // https://: a request inside a CONNECT, seen only when that CONNECT is inspected.
  const bool https = has_url && a.one("--url").size() >= 8 && strncasecmp(a.one("--url").c_str(), "https://", 8) == 0;
  if (kind == "http") {
    url_text = has_url ? a.one("--url") : "http://" + a.positional.front() + "/";
    auto parsed = https ? proxy::parse_inspected_target(url_text) : proxy::parse_absolute_url(url_text);
    if (!parsed) return error("--url: " + parsed.error());
    url = parsed.value();
    if (!pushes.empty()) {  // the push's request: POST <repository>/git-receive-pack
      const size_t q = url.path.find('?');
      if (q != std::string::npos) url.path.resize(q);
      while (url.path.size() > 1 && url.path.back() == '/') url.path.pop_back();
      url.path += "/git-receive-pack";
    }
    raw_host = url.host;
    port = url.port;
  } else {
    const std::string& target = a.positional.front();
    raw_host = target;
    bool bracketed_only = target.size() > 1 && target.front() == '[' && target.back() == ']';
    bool has_port = !bracketed_only && target.find(':') != std::string::npos &&
                    (target.front() == '[' || target.find(':') == target.rfind(':'));
    if (has_port) {
      auto hp = rules::split_host_port(target);
      if (!hp) return error(hp.error());
      raw_host = hp->host;
      port = hp->port;
    }
  }
  auto host = rules::canonicalize_host(raw_host);
  if (!host) return error(host.error());
  if (has_url && !a.positional.empty()) {
    // HOST[:PORT] beside --url is accepted when it names the URL's target.
    std::string target = a.positional.front();
    auto hp = rules::split_host_port(target);
    auto other = rules::canonicalize_host(hp ? hp->host : target);
    if (!other || other->text != host->text || (hp && hp->port != port))
      return error("HOST " + target + " is not the target of --url " + url_text);
  }

  rules::HeaderFields headers;
  for (const auto& h : a.all("--header")) {
    size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) return error("--header must be 'Name: value', not '" + h + "'");
    size_t start = h.find_first_not_of(" \t", colon + 1);
    headers.emplace_back(h.substr(0, colon), start == std::string::npos ? "" : h.substr(start));
  }
  std::vector<rules::IpAddr> addrs;
  for (const auto& text : a.all("--addr")) {
    auto ip = rules::IpAddr::parse(text);
    if (!ip) return error("--addr must be an IP address, not '" + text + "'");
    addrs.push_back(*ip);
  }

  rules::RulesRuntime runtime;
  runtime.set_log_sink([](const rules::LuaLogRecord& r) {
    std::fprintf(stderr, "lua [%s] %s: %s\n", r.level.c_str(), r.script.c_str(), r.message.c_str());
  });
  auto built = runtime.build(cfg);
  if (!built) return error(built.error());

  std::string target = shown(host.value(), port);
  int worst = 0;
  for (const rules::ListenerConfig* listener : listeners) {
    std::string policy_name =
        listener ? listener->policy : (cfg.policies.size() == 1 ? cfg.policies.begin()->first : std::string("default"));
    const rules::Policy* policy = cfg.policy(policy_name);
    if (policy == nullptr) return error("policy '" + policy_name + "' is not defined");
    rules::ConnectionFacts facts;
    facts.kind = kind;
    facts.listener = listener ? listener->name : "";
    facts.client = "check";
    auto judge = rules::make_judge(*policy, built.value().get(), facts);

    rules::Verdict v;
    bool seen = kind == "http";  // the request itself is seen: plain HTTP, or inspected HTTPS
    std::vector<rules::HeaderEdit> edits;
    const std::string method = a.one("--method", pushes.empty() ? "GET" : "POST");  // RequestFacts only views it
    rules::RequestFacts request{method, url_text, url.path, &headers, https ? "https" : "http"};
    if (https) {
      // The CONNECT first: inspected (a CA in tls:, and the policy inspects the host), its
      // requests are judged one by one; else the tunnel's verdict is all there is.
      v = judge->judge_connect(host.value(), port, cfg.tls.has_ca());
      const bool inspected = v.inspect;
      seen = inspected;
      if (inspected && v.allowed()) v = judge->judge_request(host.value(), port, request, &edits);
      target = shown(host.value(), port) + (inspected ? " (inspected)" : " (opaque tunnel: not inspected)");
    } else if (kind == "http") {
      v = judge->judge_request(host.value(), port, request, &edits);
    } else {
      // A tunnel sluice would inspect (a CA, and the policy inspects the host; SOCKS5 on 443).
      v = judge->judge_connect(host.value(), port, cfg.tls.has_ca() && (kind == "connect" || port == 443));
      if (v.inspect) target += " (inspected)";
    }
    if (v.allowed() && !addrs.empty())
      if (auto r = judge->judge_resolved(addrs)) v = *r;
    if (per_listener) std::printf("listener %s: ", listener->name.c_str());
    print_verdict(v, target);
    if (v.allowed())
      for (const auto& e : edits) std::printf("  %s header %s\n", e.remove ? "removes" : "sets", e.name.c_str());
    if (!v.allowed()) worst = 1;
    // The git guard, where a request is seen (plain HTTP, or inspected HTTPS).
    if (seen) {
      if (explain_git(*policy, host.value(), port, method, url.path, headers, pushes) != 0) worst = 1;
    }
  }
  return worst;
}

}  // namespace

Subcommand check_command(CLI::App& root) {
  auto c = std::make_shared<Command>(root, "check", "validate a config, or ask whether HOST[:PORT] would be allowed");
  c->description(
       "Without HOST or --url: validates FILE (rule scripts included: they are compiled and\n"
       "their top level run) and prints a summary (exit 0), or every error as\n"
       "FILE:LINE[:COLUMN]: message (exit 2).\n"
       "\n"
       "With HOST: prints the verdict for a connection to HOST:PORT (default port 443)\n"
       "and what decided: the list entry, or the script and hook, with the script's reason.\n"
       "With --listener NAME, as that listener's; else, when the listeners could answer\n"
       "differently (different policies, or rules that see the listener), one line per\n"
       "listener, \"listener NAME: ...\", and the exit status is the worst of them.\n"
       "The policy's Lua hooks run as for a real connection (on_connect; on_request for\n"
       "--kind http; on_resolved when --addr gives resolved addresses); sluice.log lines\n"
       "go to stderr.\n"
       "\n"
       "A request to a host a git: rule guards also gets the git guard's line: the\n"
       "service and repository and its verdict, and with --git-push each ref's.")
      .positionals("[HOST[:PORT]]", "the target (default port 443); with --url, optional")
      .value("--config", "FILE", "the configuration (required)")
      .value("--listener", "NAME", "the listener the connection comes on")
      .value("--kind", "connect|http|socks",
             "the kind of connection (default: connect, or http\nwith --url or --method)")
      .value("--method", "M", "plain-HTTP method (default GET)")
      .value("--url", "URL",
             "a request's URL: http://host[:port]/path, or https://...:\n"
             "judged inside the CONNECT when the policy inspects the host\n"
             "and tls: names a CA, else as the CONNECT tunnel")
      .value("--header", "'Name: value'", "a request header on_request and the git guard see\n(repeatable)", true)
      .value("--git-push", "REF",
             "a push of REF (refs/heads/x; :REF deletes it) to the\n"
             "repository --url names (https://host/owner/repo.git):\n"
             "the git guard's verdict for each ref (repeatable:\n"
             "one push of several refs)",
             true)
      .value("--addr", "IP", "an address the name resolved to (repeatable): runs on_resolved", true)
      .footer("Exit status: 0 allow, 1 deny (or ask; for any listener), 2 error.");
  return {c, check_main};
}

}  // namespace sluice::cli
