// The routes of the control API (docs/control-api.md): each maps a method and
// a /v1 path to the control plane. Reads answer at once; a reload and a list
// replacement run on the job thread; a metrics scrape waits for every worker's copy.
#include <string>
#include <string_view>
#include <vector>

#include "control/control_plane.hpp"
#include "control/control_server.hpp"
#include "proxy/server.hpp"
#include "rules/json.hpp"
#include "rules/percent.hpp"

namespace sluice::proxy {

namespace {

ControlReply from(const ApiResult& r) { return ControlReply{r.status, r.body.dump()}; }

ControlReply error(int status, const std::string& message) { return from(ApiResult::error(status, message)); }

// "/v1/a/b" -> {"v1", "a", "b"}; an empty segment (//, a trailing /) makes the path unknown.
std::vector<std::string> segments(const std::string& path, bool* ok) {
  std::vector<std::string> out;
  *ok = path.size() > 1 && path[0] == '/';
  size_t start = 1;
  while (*ok && start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end == start)
      *ok = false;
    else
      out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// The value of `key` in a raw query string ("a=1&host=x"), %-decoded; "" when absent or bad.
std::string query_value(const std::string& query, const std::string& key) {
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(start, end - start);
    if (pair.rfind(key + "=", 0) == 0) {
      std::string v = pair.substr(key.size() + 1);
      return rules::percent_decode(v).value_or("");
    }
    start = end + 1;
  }
  return "";
}

}  // namespace

void handle_control_request(ControlServer& server, const ControlRequest& req, std::function<void(ControlReply)> reply) {
  ControlPlane& plane = server.plane();
  const std::string& m = req.method;
  bool ok = false;
  std::vector<std::string> seg = segments(req.path, &ok);
  for (auto& s : seg) {
    auto decoded = rules::percent_decode(s);
    ok = ok && decoded;
    if (decoded) s = std::move(*decoded);
  }
  auto wrong_method = [&](const char* allow) {
    ControlReply r = error(405, m + " is not allowed on " + req.path + " (allowed: " + allow + ")");
    r.allow = allow;
    reply(std::move(r));
  };
  if (!ok || seg.empty() || seg[0] != "v1")
    return reply(error(404, "no such endpoint: " + m + " " + req.path + " (the API lives under /v1)"));
  const size_t n = seg.size();
  const std::string what = n > 1 ? seg[1] : "";

  if (n == 2 && what == "status") {
    if (m != "GET") return wrong_method("GET");
    return reply(from(plane.status()));
  }
  if (n == 2 && what == "metrics") {
    if (m != "GET") return wrong_method("GET");
    ControlServer* s = &server;
    return plane.server().collect_metrics([s, reply](WorkerMetrics total, std::vector<LoopMax> lag) {
      // On a worker's thread: the text is made on the control loop.
      s->post([s, reply, total = std::move(total), lag = std::move(lag)] {
        ControlReply r{200, s->plane().render_metrics(total, lag, s->readers_dropped())};
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        if (!r.body.empty() && r.body.back() == '\n') r.body.pop_back();
        reply(std::move(r));
      });
    });
  }
  if (n == 2 && what == "events") {
    if (m != "GET") return wrong_method("GET");
    ControlReply r;
    r.events = true;
    r.content_type = "application/x-ndjson";
    return reply(std::move(r));
  }
  if (n == 2 && what == "pending") {
    if (m != "GET") return wrong_method("GET");
    return reply(from(plane.pending()));
  }
  if (n == 3 && what == "pending") {
    if (m != "POST") return wrong_method("POST");
    return reply(from(plane.answer(seg[2], req.body, "api")));
  }
  if (n == 2 && what == "remembered") {
    if (m != "GET") return wrong_method("GET");
    return reply(from(plane.remembered()));
  }
  if (n == 2 && what == "forget") {
    if (m != "POST") return wrong_method("POST");
    return reply(from(plane.forget(req.body)));
  }
  if (n == 2 && what == "reload") {
    if (m != "POST") return wrong_method("POST");
    auto result = std::make_shared<ApiResult>();
    return server.off_loop([&plane, result] { *result = plane.reload(); }, [reply, result] { reply(from(*result)); });
  }
  if (n == 4 && what == "policies" && (seg[3] == "allow" || seg[3] == "deny")) {
    if (m != "PUT") return wrong_method("PUT");
    auto which = seg[3] == "allow" ? rules::PolicyList::Allow : rules::PolicyList::Deny;
    auto result = std::make_shared<ApiResult>();
    // The body may be megabytes: parsed and built on the job thread, never on a loop.
    return server.off_loop([&plane, result, policy = seg[2], which,
                            body = req.body] { *result = plane.replace_list(policy, which, body); },
                           [reply, result] { reply(from(*result)); });
  }
  if (n == 2 && what == "sandboxes") {
    if (m == "GET") return reply(from(plane.sandboxes()));
    if (m != "POST") return wrong_method("GET, POST");
    ApiResult r = plane.add_sandbox(req.body, req.peer);
    if (r.status == 201) {
      auto lease = rules::Json::parse(req.body);
      const rules::Json* l = lease ? lease->find("lease") : nullptr;
      if (l != nullptr && l->is_bool() && l->as_bool()) server.lease(req.conn, r.body.find("name")->as_string());
    }
    return reply(from(r));
  }
  if (n == 4 && what == "sandboxes" && seg[3] == "dns-verdict") {
    if (m != "GET") return wrong_method("GET");
    std::string host = query_value(req.query, "host");
    if (host.empty()) return reply(error(400, "the query must name a host: ?host=NAME"));
    return reply(from(plane.dns_verdict(seg[2], host)));
  }
  if (n == 3 && what == "sandboxes") {
    if (m != "DELETE") return wrong_method("DELETE");
    return reply(from(plane.remove_sandbox(seg[2])));
  }
  reply(error(404, "no such endpoint: " + m + " " + req.path));
}

}  // namespace sluice::proxy
