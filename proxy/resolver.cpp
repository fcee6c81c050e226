// c-ares on libuv: one uv_poll per c-ares socket, one timer for c-ares'
// retransmits, a deadline per lookup, A and AAAA in parallel, a TTL cache, and
// concurrent lookups of one name sharing one query pair.
#include "proxy/resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>

#include <algorithm>
#include <cstring>
#include <cctype>
#include <mutex>
#include <unordered_map>

#include "proxy/uv_handle.hpp"

namespace sluice::proxy {

namespace {

constexpr uint64_t kMaxPositiveTtlMs = 300'000;
constexpr uint64_t kNegativeTtlMs = 5'000;
constexpr size_t kMaxCacheEntries = 10'000;
constexpr int kMaxAddrs = 32;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

const char* describe(int status) {
  switch (status) {
    case ARES_ENOTFOUND: return "NXDOMAIN";
    case ARES_ENODATA: return "no addresses";
    case ARES_ESERVFAIL: return "SERVFAIL";
    case ARES_EREFUSED: return "refused by the DNS server";
    case ARES_ETIMEOUT: return "timeout";
    case ARES_ECONNREFUSED: return "DNS server unreachable";
    default: return ares_strerror(status);
  }
}

class AresResolver final : public Resolver {
 public:
  AresResolver(uv_loop_t* loop, const rules::ResolverConfig& cfg) : loop_(loop), cfg_(cfg) {}

  std::string init() {
    static std::once_flag once;
    static int lib_status = ARES_SUCCESS;
    std::call_once(once, [] { lib_status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (lib_status != ARES_SUCCESS) return ares_strerror(lib_status);
    ares_options opts{};
    opts.sock_state_cb = &AresResolver::on_sock_state;
    opts.sock_state_cb_data = this;
    // Two tries inside the overall budget; the deadline below enforces the total.
    opts.timeout = std::max(100, cfg_.timeout_ms / 3);
    opts.tries = 2;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    int r = ares_init_options(&channel_, &opts, mask);
    if (r != ARES_SUCCESS) return std::string("c-ares init: ") + ares_strerror(r);
    channel_ready_ = true;
    if (!cfg_.servers.empty()) {
      std::string csv;
      for (const auto& s : cfg_.servers) csv += (csv.empty() ? "" : ",") + s;
      r = ares_set_servers_ports_csv(channel_, csv.c_str());
      if (r != ARES_SUCCESS) return "bad DNS servers '" + csv + "': " + ares_strerror(r);
    }
    timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); });
    timer_.get()->data = this;
    deferred_timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); });
    deferred_timer_.get()->data = this;
    return "";
  }

  ~AresResolver() override {
    destroying_ = true;
    if (channel_ready_) ares_destroy(channel_);  // our query callbacks see ARES_EDESTRUCTION and do nothing
    for (auto& [fd, poll] : polls_) poll->close();
    polls_.clear();
    for (auto& [name, p] : pending_) p->deadline.close();
  }

  void resolve(const std::string& raw_name, Callback cb) override {
    std::string name = lower(raw_name);
    if (auto ip = rules::IpAddr::parse(name)) {
      ResolveResult r;
      r.ok = true;
      r.addrs.push_back(*ip);
      return defer(std::move(cb), std::move(r));
    }
    uint64_t now = uv_now(loop_);
    if (auto it = cache_.find(name); it != cache_.end()) {
      if (it->second.expires_ms > now) {
        ResolveResult r = it->second.result;
        r.ms = 0;
        r.from_cache = true;
        return defer(std::move(cb), std::move(r));
      }
      cache_.erase(it);
    }
    if (auto it = pending_.find(name); it != pending_.end()) {
      it->second->waiters.push_back(std::move(cb));  // share the query in flight
      return;
    }
    auto p = std::make_unique<Pending>();
    p->owner = this;
    p->name = name;
    p->started_ms = now;
    p->waiters.push_back(std::move(cb));
    p->deadline.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); });
    p->deadline.get()->data = p.get();
    uv_timer_start(p->deadline.get(), on_deadline, static_cast<uint64_t>(cfg_.timeout_ms), 0);
    Pending* raw = p.get();
    pending_[name] = std::move(p);
    raw->generation = ++generation_;
    ares_query(channel_, name.c_str(), ns_c_in, ns_t_a, on_answer, new QueryArg{this, name, raw->generation, false});
    ares_query(channel_, name.c_str(), ns_c_in, ns_t_aaaa, on_answer, new QueryArg{this, name, raw->generation, true});
    reschedule();
  }

 private:
  struct Pending {
    AresResolver* owner;
    std::string name;
    uint64_t generation = 0;
    uint64_t started_ms = 0;
    std::vector<Callback> waiters;
    bool a_done = false, aaaa_done = false;
    int a_status = ARES_SUCCESS, aaaa_status = ARES_SUCCESS;
    std::vector<rules::IpAddr> v4, v6;
    int min_ttl = -1;
    UvHandle<uv_timer_t> deadline;
  };
  struct QueryArg {
    AresResolver* self;
    std::string name;
    uint64_t generation;
    bool aaaa;
  };
  struct CacheEntry {
    ResolveResult result;
    uint64_t expires_ms;
  };

  static void on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
    std::unique_ptr<QueryArg> q(static_cast<QueryArg*>(arg));
    if (status == ARES_EDESTRUCTION || q->self->destroying_) return;
    try {
      q->self->answer(*q, status, abuf, alen);
    } catch (...) {
      // Out of memory: the deadline will answer the waiters with "timeout".
    }
  }

  void answer(const QueryArg& q, int status, unsigned char* abuf, int alen) {
    auto it = pending_.find(q.name);
    if (it == pending_.end() || it->second->generation != q.generation) return;  // already answered
    Pending& p = *it->second;
    if (status == ARES_SUCCESS) {
      int n = kMaxAddrs;
      if (!q.aaaa) {
        ares_addrttl ttls[kMaxAddrs];
        status = ares_parse_a_reply(abuf, alen, nullptr, ttls, &n);
        for (int i = 0; status == ARES_SUCCESS && i < n; ++i) {
          rules::IpAddr a;
          std::memcpy(a.bytes.data(), &ttls[i].ipaddr, 4);
          p.v4.push_back(a);
          p.min_ttl = p.min_ttl < 0 ? ttls[i].ttl : std::min(p.min_ttl, ttls[i].ttl);
        }
      } else {
        ares_addr6ttl ttls[kMaxAddrs];
        status = ares_parse_aaaa_reply(abuf, alen, nullptr, ttls, &n);
        for (int i = 0; status == ARES_SUCCESS && i < n; ++i) {
          rules::IpAddr a;
          a.v6 = true;
          std::memcpy(a.bytes.data(), &ttls[i].ip6addr, 16);
          p.v6.push_back(a);
          p.min_ttl = p.min_ttl < 0 ? ttls[i].ttl : std::min(p.min_ttl, ttls[i].ttl);
        }
      }
      if (status == ARES_SUCCESS && n == 0) status = ARES_ENODATA;
    }
    (q.aaaa ? p.aaaa_done : p.a_done) = true;
    (q.aaaa ? p.aaaa_status : p.a_status) = status;
    if (p.a_done && p.aaaa_done) complete(q.name, false);
  }

  static void on_deadline(uv_timer_t* t) {
    auto* p = static_cast<Pending*>(t->data);
    try {
      p->owner->complete(p->name, true);
    } catch (...) {
    }
  }

  void complete(const std::string& name, bool timed_out) {
    auto it = pending_.find(name);
    if (it == pending_.end()) return;
    std::unique_ptr<Pending> p = std::move(it->second);
    pending_.erase(it);
    p->deadline.close();
    ResolveResult r;
    r.ms = static_cast<double>(uv_now(loop_) - p->started_ms);
    for (auto* list : {&p->v4, &p->v6})
      for (const auto& a : *list)
        if (std::find(r.addrs.begin(), r.addrs.end(), a) == r.addrs.end()) r.addrs.push_back(a);
    r.ok = !r.addrs.empty();
    uint64_t ttl_ms = 0;
    if (r.ok) {
      ttl_ms = std::min<uint64_t>(static_cast<uint64_t>(std::max(p->min_ttl, 0)) * 1000, kMaxPositiveTtlMs);
    } else if (timed_out) {
      r.error = "timeout";
    } else if (p->a_status == ARES_ENOTFOUND || p->aaaa_status == ARES_ENOTFOUND) {
      r.error = "NXDOMAIN";
      ttl_ms = kNegativeTtlMs;
    } else if (p->a_status == ARES_ENODATA && p->aaaa_status == ARES_ENODATA) {
      r.error = "no addresses";
      ttl_ms = kNegativeTtlMs;
    } else {
      r.error = describe(p->a_status != ARES_SUCCESS && p->a_status != ARES_ENODATA ? p->a_status : p->aaaa_status);
    }
    if (ttl_ms > 0) store(name, r, ttl_ms);
    for (auto& cb : p->waiters) defer(std::move(cb), r);
  }

  void store(const std::string& name, const ResolveResult& r, uint64_t ttl_ms) {
    uint64_t now = uv_now(loop_);
    if (cache_.size() >= kMaxCacheEntries) {
      std::erase_if(cache_, [&](const auto& kv) { return kv.second.expires_ms <= now; });
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();  // rare: a flood of distinct live names
    }
    cache_[name] = CacheEntry{r, now + ttl_ms};
  }

  // Callbacks never run inside resolve() or inside c-ares: they wait for a 0 ms timer.
  void defer(Callback cb, ResolveResult r) {
    ready_.emplace_back(std::move(cb), std::move(r));
    if (ready_.size() == 1) uv_timer_start(deferred_timer_.get(), on_deferred, 0, 0);
  }

  static void on_deferred(uv_timer_t* t) {
    auto* self = static_cast<AresResolver*>(t->data);
    auto batch = std::move(self->ready_);
    self->ready_.clear();
    for (auto& [cb, r] : batch) {
      try {
        cb(std::move(r));
      } catch (...) {
      }
    }
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<AresResolver*>(data);
    auto it = self->polls_.find(fd);
    if (!readable && !writable) {
      if (it != self->polls_.end()) {
        it->second->close();
        self->polls_.erase(it);
      }
      return;
    }
    if (self->destroying_) return;
    if (it == self->polls_.end()) {
      auto poll = std::make_unique<UvHandle<uv_poll_t>>();
      if (poll->init([&](uv_poll_t* p) { return uv_poll_init_socket(self->loop_, p, fd); }) != 0) return;
      poll->get()->data = self;
      it = self->polls_.emplace(fd, std::move(poll)).first;
    }
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    uv_poll_start(it->second->get(), events, on_poll);
  }

  static void on_poll(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<AresResolver*>(h->data);
    uv_os_sock_t fd = -1;
    uv_fileno(reinterpret_cast<uv_handle_t*>(h), reinterpret_cast<uv_os_fd_t*>(&fd));
    // On a poll error let c-ares read and write, so it notices and moves on.
    bool r = status < 0 || (events & UV_READABLE);
    bool w = status < 0 || (events & UV_WRITABLE);
    ares_process_fd(self->channel_, r ? fd : ARES_SOCKET_BAD, w ? fd : ARES_SOCKET_BAD);
    self->reschedule();
  }

  static void on_timeout(uv_timer_t* t) {
    auto* self = static_cast<AresResolver*>(t->data);
    ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    self->reschedule();
  }

  void reschedule() {
    if (destroying_ || !timer_.live()) return;
    timeval tv{};
    if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
      uv_timer_stop(timer_.get());
      return;
    }
    uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + static_cast<uint64_t>(tv.tv_usec) / 1000;
    uv_timer_start(timer_.get(), on_timeout, std::max<uint64_t>(ms, 1), 0);
  }

  uv_loop_t* loop_;
  rules::ResolverConfig cfg_;
  ares_channel channel_{};
  bool channel_ready_ = false;
  bool destroying_ = false;
  uint64_t generation_ = 0;
  UvHandle<uv_timer_t> timer_;
  UvHandle<uv_timer_t> deferred_timer_;
  std::unordered_map<ares_socket_t, std::unique_ptr<UvHandle<uv_poll_t>>> polls_;
  std::unordered_map<std::string, std::unique_ptr<Pending>> pending_;
  std::unordered_map<std::string, CacheEntry> cache_;
  std::vector<std::pair<Callback, ResolveResult>> ready_;
};

}  // namespace

std::unique_ptr<Resolver> make_ares_resolver(uv_loop_t* loop, const rules::ResolverConfig& cfg, std::string* error) {
  auto r = std::make_unique<AresResolver>(loop, cfg);
  std::string err = r->init();
  if (!err.empty()) {
    if (error) *error = err;
    return nullptr;
  }
  return r;
}

}  // namespace sluice::proxy
