// c-ares on libuv: one uv_poll per c-ares socket, one timer for c-ares'
// retransmits, a deadline per lookup, A and AAAA in parallel, a TTL cache, and
// concurrent lookups of one name sharing one query pair.
#include "proxy/resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

#include "proxy/base_aliases.hpp"

namespace sluice::proxy {

namespace {

constexpr uint64_t kMaxPositiveTtlMs = 300'000;
constexpr uint64_t kNegativeTtlMs = 5'000;
constexpr size_t kMaxCacheEntries = 10'000;
constexpr int kMaxAddrs = 64;  // per family; larger answers arrive over TCP and are cut here
constexpr size_t kMaxNameLength = 253;

uint64_t now_ms() { return uv_hrtime() / 1'000'000; }

// Lower case, no trailing dot: the cache and coalescing key.
std::string normalize(const std::string& raw) {
  std::string s = raw;
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// Letters, digits, '-', '_' and dots: anything else (spaces, backslashes that c-ares
// would read as escapes, NULs) never reaches the DNS server.
bool plausible_name(const std::string& s) {
  if (s.empty() || s.size() > kMaxNameLength) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// "192.0.2.1", "2001:db8::1", and the bracketed "[2001:db8::1]" of URLs. Only text
// shaped like one (a colon, or four dotted groups of digits) is handed to the parser,
// so ordinary host names skip it.
std::optional<rules::IpAddr> ip_literal(const std::string& name) {
  bool has_colon = name.find(':') != std::string::npos;
  bool dotted_quad = std::count(name.begin(), name.end(), '.') == 3 &&
                     std::all_of(name.begin(), name.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); });
  if (!has_colon && !dotted_quad) return std::nullopt;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    auto ip = rules::IpAddr::parse(std::string_view(name).substr(1, name.size() - 2));
    return ip && ip->v6 ? ip : std::nullopt;
  }
  return rules::IpAddr::parse(name);
}

const char* describe(int status) {
  switch (status) {
    case ARES_ENOTFOUND: return "NXDOMAIN";
    case ARES_ENODATA: return "no addresses";
    case ARES_ESERVFAIL: return "SERVFAIL";
    case ARES_EREFUSED: return "refused";
    case ARES_ETIMEOUT: return "timeout";
    case ARES_ECONNREFUSED: return "DNS server unreachable";
    case ARES_EBADNAME: return "bad name";
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
    if (cfg_.timeout_ms <= 0) return "timeout_ms must be positive";

    ares_options opts{};
    opts.sock_state_cb = &AresResolver::on_sock_state;
    opts.sock_state_cb_data = this;
    // c-ares doubles the wait on each round of tries: with 2 tries the total is
    // timeout + 2 * timeout, so a third of the budget each. The deadline timer
    // below enforces the budget whatever c-ares does.
    opts.timeout = std::max(50, cfg_.timeout_ms / 3);
    opts.tries = 2;
    // NOCHECKRESP: c-ares 1.18 would retry a SERVFAIL or REFUSED answer on the next
    // server and then report "connection refused"; we want the server's own answer.
    opts.flags = ARES_FLAG_NOCHECKRESP;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    int r = ares_init_options(&channel_, &opts, mask);
    if (r != ARES_SUCCESS) return std::string("c-ares init: ") + ares_strerror(r);
    channel_ready_ = true;
    if (!cfg_.servers.empty()) {
      std::string csv;
      for (const auto& s : cfg_.servers) csv += (csv.empty() ? "" : ",") + s;
      r = ares_set_servers_ports_csv(channel_, csv.c_str());
      if (r != ARES_SUCCESS) return "bad DNS servers '" + csv + "': " + ares_strerror(r);
    }
    if (int e = timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); })) return uv_strerror(e);
    timer_.get()->data = this;
    if (int e = deferred_timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); })) return uv_strerror(e);
    deferred_timer_.get()->data = this;
    return "";
  }

  ~AresResolver() override {
    destroying_ = true;
    // ares_destroy ends every query with ARES_EDESTRUCTION (our callbacks only free
    // their argument) and reports each socket closed, which closes its uv_poll.
    if (channel_ready_) ares_destroy(channel_);
    polls_.clear();  // any left over close here; handle memory lives until the close callback
    for (auto& [name, p] : pending_) p->deadline.close();
    // ready_ is dropped unrun: no user callback after destruction. Timers close in
    // their UvHandle destructors; the owner runs the loop to finish the closes.
  }

  void resolve(const std::string& raw_name, Callback cb) override {
    std::string name = normalize(raw_name);
    if (auto ip = ip_literal(name)) {
      ResolveResult r;
      r.ok = true;
      r.addrs.push_back(*ip);
      return defer(std::move(cb), std::move(r));
    }
    if (!plausible_name(name)) {
      ResolveResult r;
      r.error = "bad name";
      return defer(std::move(cb), std::move(r));
    }
    if (const ResolveResult* hit = cached(name)) {
      ResolveResult r = *hit;
      r.ms = 0;
      r.from_cache = true;
      return defer(std::move(cb), std::move(r));
    }
    if (auto it = pending_.find(name); it != pending_.end()) {
      it->second->waiters.push_back(std::move(cb));  // share the query pair in flight
      return;
    }
    start_lookup(name, std::move(cb));
  }

 private:
  struct Pending {
    AresResolver* owner;
    std::string name;
    uint64_t generation = 0;
    uint64_t started_ns = 0;
    std::vector<Callback> waiters;
    bool a_done = false, aaaa_done = false;
    int a_status = ARES_SUCCESS, aaaa_status = ARES_SUCCESS;
    std::vector<rules::IpAddr> v4, v6;
    int min_ttl = -1;
    UvHandle<uv_timer_t> deadline;
  };
  // One per ares_query; c-ares hands it back exactly once, on answer, failure or destruction.
  struct QueryArg {
    AresResolver* self;
    std::string name;
    uint64_t generation;
    bool aaaa;
  };
  struct CacheEntry {
    ResolveResult result;
    uint64_t expires_ms;
    std::list<std::string>::iterator order;  // position in insertion order, for eviction
  };
  struct SockWatch {
    AresResolver* self = nullptr;
    ares_socket_t fd = ARES_SOCKET_BAD;
    UvHandle<uv_poll_t> poll;
  };

  void start_lookup(const std::string& name, Callback cb) {
    auto p = std::make_unique<Pending>();
    p->owner = this;
    p->name = name;
    p->started_ns = uv_hrtime();
    p->generation = ++generation_;
    p->waiters.push_back(std::move(cb));
    if (int e = p->deadline.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); })) {
      ResolveResult r;
      r.error = uv_strerror(e);
      return defer(std::move(p->waiters.front()), std::move(r));
    }
    p->deadline.get()->data = p.get();
    uv_timer_start(p->deadline.get(), on_deadline, static_cast<uint64_t>(cfg_.timeout_ms), 0);
    uint64_t gen = p->generation;
    pending_[name] = std::move(p);
    // c-ares may end a query inside ares_query (bad name, no server reachable); that
    // only records the status, and callbacks still wait for the deferred timer.
    auto a = std::make_unique<QueryArg>(QueryArg{this, name, gen, false});
    auto aaaa = std::make_unique<QueryArg>(QueryArg{this, name, gen, true});
    ares_query(channel_, name.c_str(), ns_c_in, ns_t_a, on_answer, a.release());
    ares_query(channel_, name.c_str(), ns_c_in, ns_t_aaaa, on_answer, aaaa.release());
    reschedule();
  }

  static void on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
    std::unique_ptr<QueryArg> q(static_cast<QueryArg*>(arg));
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || q->self->destroying_) return;
    try {
      q->self->answer(*q, status, abuf, alen);
    } catch (...) {
      // Out of memory: the deadline answers the waiters with "timeout".
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
    // NXDOMAIN for one type means the name does not exist: no need to wait for the other.
    if ((p.a_done && p.aaaa_done) || status == ARES_ENOTFOUND) complete(q.name, false);
  }

  static void on_deadline(uv_timer_t* t) {
    auto* p = static_cast<Pending*>(t->data);
    try {
      p->owner->complete(p->name, true);
    } catch (...) {
    }
  }

  // Ends a lookup: builds the result, caches it, queues it for every waiter. The
  // c-ares queries of a timed-out lookup run on until c-ares gives up; their answers
  // find no matching generation and are dropped.
  void complete(const std::string& name, bool timed_out) {
    auto it = pending_.find(name);
    if (it == pending_.end()) return;
    std::unique_ptr<Pending> p = std::move(it->second);
    pending_.erase(it);
    p->deadline.close();
    ResolveResult r;
    r.ms = static_cast<double>(uv_hrtime() - p->started_ns) / 1e6;
    for (auto* list : {&p->v4, &p->v6})
      for (const auto& a : *list)
        if (std::find(r.addrs.begin(), r.addrs.end(), a) == r.addrs.end()) r.addrs.push_back(a);
    r.ok = !r.addrs.empty();  // on a deadline, whatever family did answer is used
    uint64_t ttl_ms = 0;
    if (r.ok) {
      ttl_ms = std::min<uint64_t>(static_cast<uint64_t>(std::max(p->min_ttl, 0)) * 1000, kMaxPositiveTtlMs);
    } else if (p->a_status == ARES_ENOTFOUND || p->aaaa_status == ARES_ENOTFOUND) {
      r.error = "NXDOMAIN";
      ttl_ms = kNegativeTtlMs;
    } else if (timed_out) {
      r.error = "timeout";
    } else if (p->a_status == ARES_ENODATA && p->aaaa_status == ARES_ENODATA) {
      r.error = "no addresses";
      ttl_ms = kNegativeTtlMs;
    } else {
      r.error = describe(p->a_status != ARES_SUCCESS && p->a_status != ARES_ENODATA ? p->a_status : p->aaaa_status);
    }
    if (ttl_ms > 0) store(name, r, ttl_ms);
    for (auto& cb : p->waiters) defer(std::move(cb), r);
  }

  const ResolveResult* cached(const std::string& name) {
    auto it = cache_.find(name);
    if (it == cache_.end()) return nullptr;
    if (it->second.expires_ms > now_ms()) return &it->second.result;
    order_.erase(it->second.order);
    cache_.erase(it);
    return nullptr;
  }

  // Bounded: when full, expired entries go first, then the oldest inserted.
  void store(const std::string& name, const ResolveResult& r, uint64_t ttl_ms) {
    uint64_t now = now_ms();
    if (auto it = cache_.find(name); it != cache_.end()) {
      order_.erase(it->second.order);
      cache_.erase(it);
    }
    if (cache_.size() >= kMaxCacheEntries) {
      for (auto it = cache_.begin(); it != cache_.end();) {
        if (it->second.expires_ms <= now) {
          order_.erase(it->second.order);
          it = cache_.erase(it);
        } else {
          ++it;
        }
      }
      // Evict a tenth at once so a flood of names does not rescan on every insert.
      while (cache_.size() >= kMaxCacheEntries - kMaxCacheEntries / 10 && !order_.empty()) {
        cache_.erase(order_.front());
        order_.pop_front();
      }
    }
    order_.push_back(name);
    cache_.emplace(name, CacheEntry{r, now + ttl_ms, std::prev(order_.end())});
  }

  // Callbacks never run inside resolve() or inside c-ares: they wait for a 0 ms timer.
  void defer(Callback cb, ResolveResult r) {
    ready_.emplace_back(std::move(cb), std::move(r));
    if (ready_.size() == 1) uv_timer_start(deferred_timer_.get(), on_deferred, 0, 0);
  }

  static void on_deferred(uv_timer_t* t) {
    auto* self = static_cast<AresResolver*>(t->data);
    std::weak_ptr<char> alive = self->alive_;
    auto batch = std::move(self->ready_);
    self->ready_.clear();
    for (auto& [cb, r] : batch) {
      if (alive.expired()) return;  // a callback destroyed the resolver: the rest are dropped
      try {
        cb(std::move(r));
      } catch (...) {
      }
    }
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<AresResolver*>(data);
    try {
      self->watch(fd, readable != 0, writable != 0);
    } catch (...) {
      // Out of memory: the socket goes unwatched and the lookup ends at its deadline.
    }
  }

  void watch(ares_socket_t fd, bool readable, bool writable) {
    auto it = polls_.find(fd);
    if (!readable && !writable) {
      // c-ares calls this before closing the socket, so the poll stops first.
      if (it != polls_.end()) polls_.erase(it);
      return;
    }
    if (destroying_) return;
    if (it == polls_.end()) {
      auto w = std::make_unique<SockWatch>();
      w->self = this;
      w->fd = fd;
      if (w->poll.init([&](uv_poll_t* p) { return uv_poll_init_socket(loop_, p, fd); }) != 0) return;
      w->poll.get()->data = w.get();
      it = polls_.emplace(fd, std::move(w)).first;
    }
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    uv_poll_start(it->second->poll.get(), events, on_poll);
  }

  static void on_poll(uv_poll_t* h, int status, int events) {
    auto* w = static_cast<SockWatch*>(h->data);
    AresResolver* self = w->self;
    ares_socket_t fd = w->fd;  // `w` may be freed inside ares_process_fd
    try {
      // On a poll error let c-ares read and write, so it notices and moves on.
      bool r = status < 0 || (events & UV_READABLE);
      bool wr = status < 0 || (events & UV_WRITABLE);
      ares_process_fd(self->channel_, r ? fd : ARES_SOCKET_BAD, wr ? fd : ARES_SOCKET_BAD);
      self->reschedule();
    } catch (...) {
    }
  }

  static void on_timeout(uv_timer_t* t) {
    auto* self = static_cast<AresResolver*>(t->data);
    try {
      ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      self->reschedule();
    } catch (...) {
    }
  }

  // Arms the c-ares timer for its next retransmit or timeout, or stops it when idle.
  void reschedule() {
    if (destroying_ || !timer_.live()) return;
    timeval tv{};
    if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
      uv_timer_stop(timer_.get());
      return;
    }
    uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + static_cast<uint64_t>(tv.tv_usec + 999) / 1000;
    uv_timer_start(timer_.get(), on_timeout, std::max<uint64_t>(ms, 1), 0);
  }

  uv_loop_t* loop_;
  rules::ResolverConfig cfg_;
  ares_channel channel_{};
  bool channel_ready_ = false;
  bool destroying_ = false;
  uint64_t generation_ = 0;
  std::shared_ptr<char> alive_ = std::make_shared<char>();
  UvHandle<uv_timer_t> timer_;
  UvHandle<uv_timer_t> deferred_timer_;
  std::unordered_map<ares_socket_t, std::unique_ptr<SockWatch>> polls_;
  std::unordered_map<std::string, std::unique_ptr<Pending>> pending_;
  std::unordered_map<std::string, CacheEntry> cache_;
  std::list<std::string> order_;
  std::vector<std::pair<Callback, ResolveResult>> ready_;
};

}  // namespace

std::unique_ptr<Resolver> make_ares_resolver(uv_loop_t* loop, const rules::ResolverConfig& cfg, std::string* error) {
  try {
    auto r = std::make_unique<AresResolver>(loop, cfg);
    std::string err = r->init();
    if (!err.empty()) {
      if (error) *error = err;
      return nullptr;
    }
    return r;
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return nullptr;
  }
}

}  // namespace sluice::proxy
