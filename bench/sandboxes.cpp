#include "bench/sandboxes.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "bench/procstat.hpp"
#include "rules/json.hpp"

namespace sluice::bench {

namespace {

using Clock = std::chrono::steady_clock;

double since_s(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A blocking unix-socket client for plain-HTTP requests through a sandbox's listener.
class UnixHttp {
 public:
  ~UnixHttp() { close(); }
  bool open(const std::string& path) {
    close();
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail("socket");
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) return fail("path too long");
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return fail("connect");
    buf_.clear();
    return true;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // One request, its whole response read (Content-Length). True for a 200.
  bool get(const std::string& request, int timeout_ms) {
    if (fd_ < 0) return fail("not connected");
    size_t off = 0;
    while (off < request.size()) {
      ssize_t n = ::send(fd_, request.data() + off, request.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return fail("send");
      off += static_cast<size_t>(n);
    }
    size_t head_end = std::string::npos;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(timeout_ms)) return false;
    size_t body = 0;
    std::string head = buf_.substr(0, head_end);
    for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto cl = head.find("\r\ncontent-length:"); cl != std::string::npos)
      body = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
    while (buf_.size() < head_end + 4 + body)
      if (!fill(timeout_ms)) return false;
    bool ok = buf_.compare(0, 12, "HTTP/1.1 200") == 0;
    if (!ok) error = "status: " + buf_.substr(0, std::min<size_t>(buf_.find("\r\n"), 80));
    buf_.erase(0, head_end + 4 + body);
    return ok;
  }
  std::string error;

 private:
  bool fill(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return fail("timeout");
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n == 0) return fail("closed by the proxy");
    if (n < 0) return fail("recv");
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  bool fail(const char* what) {
    error = std::string(what) + (errno ? std::string(": ") + std::strerror(errno) : "");
    close();
    return false;
  }
  int fd_ = -1;
  std::string buf_;
};

LatencyStats stats(std::vector<double> us, uint64_t failed) {
  LatencyStats s;
  s.ok = us.size();
  s.failed = failed;
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<size_t>(q * static_cast<double>(us.size())))];
  };
  s.p50_us = at(0.5);
  s.p99_us = at(0.99);
  double sum = 0;
  for (double v : us) sum += v;
  s.mean_us = sum / static_cast<double>(us.size());
  return s;
}

// `requests` sequential requests, each on a new connection, over `paths` in blocks: each
// listener gets requests / paths.size() in a row. (Alternating listeners on every request
// would measure something else: sandbox listeners are spread over the workers, so each
// request would wake the other worker, cold, which costs as much with 2 listeners as with
// 10,000.)
LatencyStats measure(const std::vector<std::string>& paths, const std::string& request, int requests,
                     double max_seconds, std::string* first_failure) {
  std::vector<double> us;
  uint64_t failed = 0;
  auto t0 = Clock::now();
  UnixHttp c;
  const size_t block = std::max<size_t>(1, static_cast<size_t>(requests) / paths.size());
  for (int i = 0; i < requests && since_s(t0) < max_seconds; ++i) {
    auto s = Clock::now();
    bool ok = c.open(paths[(static_cast<size_t>(i) / block) % paths.size()]) && c.get(request, 5000);
    c.close();
    if (ok) {
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
    } else {
      ++failed;
      if (first_failure->empty()) *first_failure = c.error;
    }
  }
  return stats(std::move(us), failed);
}

uint64_t rss_kib(int pid) {
  ProcSample s = sample_procs({pid});
  return s.ok ? s.rss_kib : 0;
}

std::string sandbox_name(const SandboxOptions& o, int i) { return o.prefix + "-" + std::to_string(i); }

}  // namespace

SandboxResult run_sandboxes(const SandboxOptions& o, const ControlCall& control) {
  SandboxResult r;
  const std::string target = o.target_host + ":" + std::to_string(o.target_port);
  const std::string request = "GET http://" + target + "/ HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
  const std::string allow = "\"" + target + "\"";
  std::vector<std::string> paths;
  paths.reserve(static_cast<size_t>(o.sandboxes));
  auto add = [&](int i) {
    std::string body = "{\"name\":\"" + sandbox_name(o, i) + "\",\"policy\":\"" + o.policy +
                       "\",\"overlay\":{\"allow\":[" + allow + "],\"deny\":[\"" + sandbox_name(o, i) +
                       ".deny.test\"]}}";
    ControlReply rep = control("POST", "/v1/sandboxes", body);
    if (rep.status != 201) {
      if (r.first_failure.empty())
        r.first_failure = "POST /v1/sandboxes: " + std::to_string(rep.status) + " " + rep.body;
      return false;
    }
    auto j = rules::Json::parse(rep.body);
    const rules::Json* p = j ? j->find("path") : nullptr;
    if (p == nullptr || !p->is_string()) return false;
    paths.push_back(p->as_string());
    return true;
  };

  // 1. One listener (the first sandbox alone).
  r.rss_before_kib = rss_kib(o.pid);
  if (!add(0)) {
    r.error = "cannot create a sandbox: " + r.first_failure;
    return r;
  }
  r.created = 1;
  r.one = measure({paths[0]}, request, o.requests, o.max_seconds, &r.first_failure);

  // 2. The other N-1, one POST after another (the first one's time is left out, as it was
  // made before the clock started; the rate is the same).
  auto t0 = Clock::now();
  for (int i = 1; i < o.sandboxes && since_s(t0) < o.max_seconds; ++i) {
    if (!add(i)) {
      ++r.create_failed;
      break;
    }
    r.created = i + 1;
  }
  r.create_s = since_s(t0) * static_cast<double>(r.created) / std::max(1, r.created - 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the workers' inboxes settle
  r.rss_after_create_kib = rss_kib(o.pid);
  if (r.created > 0 && r.rss_after_create_kib > r.rss_before_kib)
    r.rss_per_sandbox_kib = static_cast<double>(r.rss_after_create_kib - r.rss_before_kib) / r.created;

  // 3. The sample: listeners spread evenly over the N.
  std::vector<std::string> sample;
  const int k = std::max(1, std::min(o.sample, r.created));
  for (int i = 0; i < k; ++i) sample.push_back(paths[static_cast<size_t>(i) * paths.size() / static_cast<size_t>(k)]);
  r.many = measure(sample, request, o.requests, o.max_seconds, &r.first_failure);

  // 4. The policy push under load: keep-alive connections on sampled listeners send request
  // after request, from before the PUT until after it; a failed request is a drop.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0}, dropped{0};
  std::vector<std::thread> clients;
  std::string push_failure;
  std::mutex failure_mu;
  const int conns = std::max(1, o.push_connections);
  const int per_thread = (conns + 1) / 2;
  for (int t = 0; t < 2; ++t)
    clients.emplace_back([&, t] {
      std::vector<UnixHttp> cs(static_cast<size_t>(per_thread));
      for (int i = 0; i < per_thread; ++i)
        if (!cs[static_cast<size_t>(i)].open(sample[static_cast<size_t>(t * per_thread + i) % sample.size()])) {
          ++dropped;
          return;
        }
      auto t1 = Clock::now();
      while (!stop && since_s(t1) < o.max_seconds)
        for (auto& c : cs) {
          if (c.get(request, 5000)) {
            ++done;
          } else {
            ++dropped;
            std::lock_guard lock(failure_mu);
            if (push_failure.empty()) push_failure = c.error;
            return;  // a dropped connection stays dropped
          }
        }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::string list = "[";
  for (int i = 0; i < o.push_entries; ++i) list += std::string(i ? "," : "") + "\"push" + std::to_string(i) + ".test\"";
  list += "]";
  auto tp = Clock::now();
  ControlReply push = control("PUT", "/v1/policies/" + o.policy + "/allow", list);
  r.push_ms = since_s(tp) * 1000;
  r.push_status = push.status;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& t : clients) t.join();
  r.push_requests = done;
  r.push_dropped = dropped;
  if (r.first_failure.empty() && !push_failure.empty()) r.first_failure = "across the push: " + push_failure;

  // 5. Remove all but the first (timed), measure the one listener again, remove it.
  auto t2 = Clock::now();
  for (int i = 1; i < r.created; ++i)
    if (control("DELETE", "/v1/sandboxes/" + sandbox_name(o, i), "").status == 200) ++r.removed;
  r.remove_s = since_s(t2);
  r.one_after = measure({paths[0]}, request, o.requests, o.max_seconds, &r.first_failure);
  if (control("DELETE", "/v1/sandboxes/" + sandbox_name(o, 0), "").status == 200) ++r.removed;
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // retired snapshots are swept once a second
  r.rss_after_remove_kib = rss_kib(o.pid);
  return r;
}

std::string render_sandboxes_text(const SandboxOptions& o, const SandboxResult& r) {
  char b[2048];
  std::string out;
  if (!r.error.empty()) return "sandboxes: " + r.error + "\n";
  std::snprintf(b, sizeof b,
                "sandboxes        %d created (%d failed) in %.2f s (%.0f/s); %d removed in %.2f s\n"
                "rss              %.1f MiB before, %.1f MiB with them, %.1f MiB after removal: %.2f KiB per sandbox\n"
                "latency, 1       %llu ok, %llu failed: p50 %.0f us, p99 %.0f us, mean %.0f us\n"
                "latency, %d of %d %llu ok, %llu failed: p50 %.0f us, p99 %.0f us, mean %.0f us\n"
                "latency, 1 again %llu ok, %llu failed: p50 %.0f us, p99 %.0f us, mean %.0f us\n"
                "policy push      PUT %d entries: status %d in %.1f ms; %llu requests on %d keep-alive connections "
                "across it, %llu dropped\n",
                r.created, r.create_failed, r.create_s, r.create_s > 0 ? r.created / r.create_s : 0.0, r.removed,
                r.remove_s, r.rss_before_kib / 1024.0, r.rss_after_create_kib / 1024.0, r.rss_after_remove_kib / 1024.0,
                r.rss_per_sandbox_kib, static_cast<unsigned long long>(r.one.ok),
                static_cast<unsigned long long>(r.one.failed), r.one.p50_us, r.one.p99_us, r.one.mean_us,
                std::min(o.sample, r.created), r.created, static_cast<unsigned long long>(r.many.ok),
                static_cast<unsigned long long>(r.many.failed), r.many.p50_us, r.many.p99_us, r.many.mean_us,
                static_cast<unsigned long long>(r.one_after.ok), static_cast<unsigned long long>(r.one_after.failed),
                r.one_after.p50_us, r.one_after.p99_us, r.one_after.mean_us, o.push_entries, r.push_status, r.push_ms,
                static_cast<unsigned long long>(r.push_requests), o.push_connections,
                static_cast<unsigned long long>(r.push_dropped));
  out += b;
  if (!r.first_failure.empty()) out += "first failure    " + r.first_failure + "\n";
  return out;
}

std::string render_sandboxes_json(const SandboxOptions& o, const SandboxResult& r) {
  using rules::Json;
  auto num = [](double v) { return Json::number(v); };
  auto lat = [&](const LatencyStats& s) {
    Json j = Json::object();
    j.set("ok", num(static_cast<double>(s.ok)));
    j.set("failed", num(static_cast<double>(s.failed)));
    j.set("p50_us", num(std::round(s.p50_us)));
    j.set("p99_us", num(std::round(s.p99_us)));
    j.set("mean_us", num(std::round(s.mean_us)));
    return j;
  };
  Json j = Json::object();
  j.set("scenario", Json::string("sandboxes"));
  if (!r.error.empty()) j.set("error", Json::string(r.error));
  j.set("sandboxes", num(o.sandboxes));
  j.set("created", num(r.created));
  j.set("create_failed", num(r.create_failed));
  j.set("create_s", num(std::round(r.create_s * 1000) / 1000));
  j.set("removed", num(r.removed));
  j.set("remove_s", num(std::round(r.remove_s * 1000) / 1000));
  j.set("rss_before_kib", num(static_cast<double>(r.rss_before_kib)));
  j.set("rss_after_create_kib", num(static_cast<double>(r.rss_after_create_kib)));
  j.set("rss_after_remove_kib", num(static_cast<double>(r.rss_after_remove_kib)));
  j.set("rss_per_sandbox_kib", num(std::round(r.rss_per_sandbox_kib * 100) / 100));
  j.set("latency_one", lat(r.one));
  j.set("latency_many", lat(r.many));
  j.set("latency_one_after", lat(r.one_after));
  j.set("sample", num(std::min(o.sample, r.created)));
  j.set("push_entries", num(o.push_entries));
  j.set("push_status", num(r.push_status));
  j.set("push_ms", num(std::round(r.push_ms * 10) / 10));
  j.set("push_connections", num(o.push_connections));
  j.set("push_requests", num(static_cast<double>(r.push_requests)));
  j.set("push_dropped", num(static_cast<double>(r.push_dropped)));
  if (!r.first_failure.empty()) j.set("first_failure", Json::string(r.first_failure));
  return j.dump();
}

}  // namespace sluice::bench
