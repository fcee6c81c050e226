#include "cli/run_transparent.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "proxy/decision_log.hpp"
#include "proxy/dns_answer.hpp"
#include "proxy/dns_message.hpp"
#include "proxy/json.hpp"
#include "rules/dns_verdict.hpp"
#include "rules/host.hpp"
#include "rules/json.hpp"
#include "sandbox-glue/nft_rules.hpp"
#include "sandbox-glue/transparent_bridge.hpp"
#include "sandbox-glue/transparent_target.hpp"

namespace sluice::cli {

std::string transparent_dry_run_text() {
  std::string out;
  out += "# nft -f - (in the jail's network namespace, before CMD starts)\n";
  out += glue::nft_ruleset(glue::TransparentRules{});
  if (out.back() != '\n') out += '\n';
  out += "# routes (a redirect needs a route to rewrite)\n";
  out += "ip route add default dev lo src 127.0.0.1\n";
  out += "ip -6 route add default dev lo src ::1\n";
  out += "# /etc/resolv.conf in the jail\n";
  out += glue::transparent_resolv_conf();
  return out;
}

void JailNamespaces::open(pid_t jail_pid) {
  close();
  const std::string base = "/proc/" + std::to_string(jail_pid) + "/ns/";
  net_ = ::open((base + "net").c_str(), O_RDONLY | O_CLOEXEC);
  // Only a user namespace of the jail's own is entered (bwrap run by root makes none).
  struct stat ours {
  }, theirs{};
  int user = ::open((base + "user").c_str(), O_RDONLY | O_CLOEXEC);
  if (user >= 0 && ::stat("/proc/self/ns/user", &ours) == 0 && ::fstat(user, &theirs) == 0 &&
      ours.st_ino != theirs.st_ino)
    user_ = user;
  else if (user >= 0)
    ::close(user);
}

void JailNamespaces::close() {
  for (int* fd : {&user_, &net_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

std::optional<DroppedCounts> JailNamespaces::read_dropped() const {
  if (net_ < 0) return std::nullopt;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
  pid_t pid = ::fork();
  if (pid == 0) {
    if ((user_ >= 0 && ::setns(user_, CLONE_NEWUSER) != 0) || ::setns(net_, CLONE_NEWNET) != 0) ::_exit(126);
    ::dup2(out[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 2);
    for (const char* nft : {"nft", "/usr/sbin/nft", "/sbin/nft"}) {
      const char* argv[] = {nft, "list", "counters", "table", "inet", "sluice", nullptr};
      ::execvp(nft, const_cast<char**>(argv));
    }
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  if (pid > 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0 && text.size() < 65536) text.append(buf, static_cast<size_t>(n));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) text.clear();
  }
  ::close(out[0]);
  return parse_dropped_counters(text);
}

std::optional<DroppedCounts> parse_dropped_counters(const std::string& text) {
  DroppedCounts c;
  int found = 0;
  for (auto [name, field] :
       {std::pair{"udp_dropped", &c.udp}, std::pair{"icmp_dropped", &c.icmp}, std::pair{"other_dropped", &c.other}}) {
    size_t at = text.find(std::string("counter ") + name + " {");
    if (at == std::string::npos) continue;
    size_t p = text.find("packets ", at);
    size_t close = text.find('}', at);
    if (p == std::string::npos || p > close) continue;
    *field = std::strtoull(text.c_str() + p + 8, nullptr, 10);
    ++found;
  }
  if (found != 3) return std::nullopt;
  return c;
}

std::string dropped_log_line(const DroppedCounts& c) {
  proxy::JsonLine j;
  j.str("ts", proxy::DecisionLog::now_iso8601()).str("event", "transparent-dropped");
  j.num("udp_packets", static_cast<int64_t>(c.udp))
      .num("icmp_packets", static_cast<int64_t>(c.icmp))
      .num("other_packets", static_cast<int64_t>(c.other));
  return j.done();
}

TransparentDnsService::~TransparentDnsService() { stop(); }

namespace {

// %-encodes all but letters, digits and "-._" (a query value).
std::string query_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

DaemonDnsVerdicts::DaemonDnsVerdicts(std::string control_socket, std::string sandbox, int timeout_ms, int backoff_ms,
                                     FILE* errors)
    : socket_(std::move(control_socket)),
      sandbox_(std::move(sandbox)),
      timeout_ms_(timeout_ms),
      backoff_ms_(backoff_ms),
      errors_(errors) {}

rules::DnsVerdict DaemonDnsVerdicts::operator()(const rules::CanonicalHost& host) {
  if (auto it = known_.find(host.text); it != known_.end()) return it->second;
  rules::DnsVerdict unavailable;
  unavailable.reason = "daemon-unavailable";
  if (std::chrono::steady_clock::now() < failed_until_) return unavailable;
  if (!client_) {
    client_ = std::make_unique<ControlClient>(socket_);
    client_->set_timeout_ms(timeout_ms_);
  }
  ++asked_;
  ControlResponse r = client_->request(
      "GET", "/v1/sandboxes/" + query_escape(sandbox_) + "/dns-verdict?host=" + query_escape(host.text));
  std::optional<rules::Json> reply;
  if (r.status == 200)
    if (auto parsed = rules::Json::parse(r.body); parsed && parsed->is_object()) reply = std::move(parsed.value());
  const rules::Json* resolve = reply ? reply->find("resolve") : nullptr;
  if (resolve == nullptr || !resolve->is_bool()) {
    client_.reset();  // a fresh connection next time
    failed_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_ms_);
    std::string why = r.status == 0 ? r.error : "status " + std::to_string(r.status) + " " + r.body;
    if (errors_ != nullptr) {
      std::fprintf(errors_, "sluice: the daemon gave no DNS verdict for %s: %s (names not yet known fail for %d ms)\n",
                   host.text.c_str(), why.c_str(), backoff_ms_);
      std::fflush(errors_);
    }
    return unavailable;
  }
  auto text = [&](const char* k) {
    const rules::Json* f = reply->find(k);
    return f != nullptr && f->is_string() ? f->as_string() : std::string();
  };
  rules::DnsVerdict v;
  v.resolve = resolve->as_bool();
  v.reason = text("reason");
  v.rule = text("rule");
  const rules::Json* would = reply->find("would_deny");
  v.would_deny = would != nullptr && would->is_bool() && would->as_bool();
  known_.emplace(host.text, v);
  return v;
}

std::string TransparentDnsService::start(const std::string& path, std::shared_ptr<const rules::Policy> policy,
                                         const rules::TransparentConfig& cfg, proxy::DecisionLog& log) {
  std::string name = policy->name;
  return start(
      path,
      [policy = std::move(policy)](const rules::CanonicalHost& host) { return rules::dns_verdict(*policy, host); },
      std::move(name), cfg, log, nullptr);
}

void TransparentDnsService::denial(const std::string& line) {
  if (log_->denials_enabled()) {
    log_->denial(line);
  } else if (denials_ != nullptr) {
    std::fprintf(denials_, "%s\n", line.c_str());
    std::fflush(denials_);
  }
}

std::string TransparentDnsService::start(const std::string& path, VerdictFn verdict, std::string policy_name,
                                         const rules::TransparentConfig& cfg, proxy::DecisionLog& log, FILE* denials) {
  verdict_ = std::move(verdict);
  policy_name_ = std::move(policy_name);
  cfg_ = cfg;
  log_ = &log;
  denials_ = denials;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) return "the DNS service's socket path is too long: " + path;
  std::memcpy(sun.sun_path, path.c_str(), path.size());
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return std::string("DNS service socket: ") + std::strerror(errno);
  ::unlink(path.c_str());
  mode_t old = ::umask(0177);
  int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  ::umask(old);
  if (rc != 0 || ::listen(listen_fd_, 4) != 0) return "cannot listen on " + path + ": " + std::strerror(errno);
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  thread_ = std::thread([this] { serve(); });
  return "";
}

void TransparentDnsService::stop() {
  if (thread_.joinable()) {
    char one = 1;
    (void)!::write(stop_pipe_[1], &one, 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &stop_pipe_[0], &stop_pipe_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

namespace {

int64_t dns_service_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool write_all_fd(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// The "reason" of a dns-denied line (a JSON object whose reasons are plain words).
std::string dns_log_reason(const std::string& line) {
  const std::string key = "\"reason\":\"";
  size_t at = line.find(key);
  if (at == std::string::npos) return "denied";
  at += key.size();
  return line.substr(at, line.find('"', at) - at);
}

struct DnsServiceClient {
  int fd;
  std::string in;
};

}  // namespace

bool TransparentDnsService::check_claimed_name(const std::string& request) {
  // "original looked-up-name|- claimed-name via"
  std::string field[4];
  size_t at = 0;
  for (int i = 0; i < 4; ++i) {
    size_t sp = i == 3 ? std::string::npos : request.find(' ', at);
    if (sp == std::string::npos && i < 3) return false;
    field[i] = request.substr(at, sp == std::string::npos ? std::string::npos : sp - at);
    at = sp + 1;
  }
  const std::string &original = field[0], &looked_up = field[1], &claimed = field[2], &via = field[3];
  const char* what = via == "sni" ? "TLS SNI" : "HTTP Host";
  std::string why, claimed_reason;
  if (looked_up != "-") {
    why = std::string(what) + " " + claimed + ", looked up as " + looked_up;
  } else {
    auto host = rules::canonicalize_host(claimed);
    if (!host.ok()) return false;
    rules::DnsVerdict v = verdict_(host.value());
    if (v.resolve) return true;  // the address is judged as a literal by the proxy next
    claimed_reason = v.reason;
    why = std::string(what) + " " + claimed + " is not allowed (" + v.reason + ")";
  }
  proxy::JsonLine j;
  j.str("ts", proxy::DecisionLog::now_iso8601()).str("event", "host-mismatch").str("original_dst", original);
  if (looked_up != "-") j.str("looked_up", looked_up);
  j.str("claimed", claimed).str("via", via);
  if (!claimed_reason.empty()) j.str("claimed_reason", claimed_reason);
  j.str("verdict", "deny").str("reason", "host-mismatch").str("policy", policy_name_);
  log_->write(j.done());
  denial("sluice: denied " + original + " (host-mismatch: " + why + ")");
  return false;
}

void TransparentDnsService::serve() {
  proxy::DnsAnswerer answerer(cfg_, "");
  std::vector<DnsServiceClient> clients;
  for (;;) {
    std::vector<pollfd> fds = {{stop_pipe_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto& c : clients) fds.push_back({c.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) break;
    const size_t polled = fds.size() - 2;  // the clients fds[] has entries for (not one accepted below)
    if (fds[1].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0 && clients.size() < 8)
        clients.push_back({fd, {}});
      else if (fd >= 0)
        ::close(fd);
    }
    for (size_t i = polled; i-- > 0;) {
      if (!fds[2 + i].revents) continue;
      auto& c = clients[i];
      char buf[4096];
      ssize_t n = ::read(c.fd, buf, sizeof buf);
      bool ok = n > 0;
      if (ok) c.in.append(buf, static_cast<size_t>(n));
      while (ok) {
        proxy::dns::Frame f = proxy::dns::parse_tcp_frame(c.in, 65535);
        if (f.status == proxy::dns::FrameStatus::NeedMore) break;
        if (f.status == proxy::dns::FrameStatus::Error || f.message.empty()) {
          ok = false;
          break;
        }
        const char kind = f.message[0];
        std::string msg(f.message.substr(1));
        c.in.erase(0, f.consumed);
        if (kind == 'C') {
          if (!write_all_fd(c.fd, glue::stub_reply_frames(check_claimed_name(msg) ? "ok" : "deny", ""))) ok = false;
          continue;
        }
        if (kind != 'Q') {
          ok = false;
          break;
        }
        auto out = answerer.answer(verdict_, policy_name_, msg, dns_service_now_ms());
        auto parsed = proxy::dns::parse_query(msg);
        std::string name, mapping;
        if (parsed.ok)
          if (auto host = rules::canonicalize_host(parsed.query.name); host.ok()) name = host->text;
        for (auto& line : out.log) {
          if (out.rcode == proxy::dns::Rcode::NxDomain)
            denial("sluice: denied DNS name " + name + " (" + dns_log_reason(line) + ")");
          log_->write(std::move(line));
        }
        if (!name.empty())
          if (auto addrs = answerer.map().find(name))
            mapping = name + " " + addrs->v4.to_string() + " " + addrs->v6.to_string();
        if (!write_all_fd(c.fd, glue::stub_reply_frames(out.reply.value_or(""), mapping))) ok = false;
      }
      if (!ok) {
        ::close(c.fd);
        clients.erase(clients.begin() + static_cast<long>(i));
      }
    }
  }
  for (auto& c : clients) ::close(c.fd);
}

}  // namespace sluice::cli
