#include "sandbox-glue/transparent_bridge.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <unordered_map>

#include "base/buffer_pool.hpp"
#include "base/relay.hpp"
#include "proxy/dns_message.hpp"
#include "proxy/handover_frame.hpp"
#include "sandbox-glue/first_bytes.hpp"
#include "sandbox-glue/original_dst.hpp"
#include "sandbox-glue/transparent_handshake.hpp"
#include "sandbox-glue/transparent_target.hpp"

namespace sluice::glue {

namespace {

namespace dns = proxy::dns;

// Names in this file are unique across sandbox-glue/ (the CI build is a unity build).
constexpr uint64_t kTransparentNoIdleLimitMs = 7ull * 24 * 3600 * 1000;  // the proxy's idle limit applies
constexpr size_t kMaxPendingQueries = 1024;
constexpr size_t kMaxDnsTcpBuffer = 4 * (dns::kMaxQueryBytes + 2);
// How long a redirected connection's first bytes are waited for (a TLS ClientHello, an
// HTTP request head) before it is handed on without them: server-speaks-first protocols
// (SMTP, MySQL, ...) pay this once per connection.
constexpr uint64_t kFirstBytesWaitMs = 250;

base::BufferPool& transparent_pool() {
  static base::BufferPool p;  // the bridge runs one loop on one thread
  return p;
}

void stub_put_u16(std::string& out, size_t n) {
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
}

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

void write_done(uv_write_t* r, int) { delete reinterpret_cast<WriteReq*>(r); }

int write_string(uv_stream_t* s, std::string data) {
  auto* w = new WriteReq;
  w->data = std::move(data);
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int r = uv_write(&w->req, s, &buf, 1, write_done);
  if (r != 0) delete w;
  return r;
}

void alloc_plain(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
  buf->base = new char[suggested];
  buf->len = suggested;
}

// ---- the transparent TCP listener -------------------------------------------------

struct Bridge;

// One redirected connection: the program's socket and the leg to the proxy.
struct Redirected {
  explicit Redirected(uv_loop_t* loop) : relay(loop, transparent_pool(), kTransparentNoIdleLimitMs) {}
  uv_tcp_t client{};
  uv_pipe_t proxy{};
  uv_connect_t connect{};
  base::Relay relay;
  uv_timer_t first_timer{};
  std::string target;
  std::string original;  // what CMD dialed, for the decision log
  std::string mapped;    // the name a fake address was given to; empty for a real address
  std::string first;     // the program's first bytes, read before the CONNECT
  std::string reply;     // the proxy's answer so far
  uint64_t id = 0;       // while a name check is out at the DNS service
  int open = 3;
  bool closing = false;
  bool decided = false;
  bool refusal_to_pass_on = false;  // an HTTP program gets the proxy's 403 itself

  uv_stream_t* c() { return reinterpret_cast<uv_stream_t*>(&client); }
  uv_stream_t* p() { return reinterpret_cast<uv_stream_t*>(&proxy); }
};

void redirected_closed(uv_handle_t* h) {
  auto* r = static_cast<Redirected*>(h->data);
  if (--r->open == 0) delete r;
}

void forget_check(Redirected* r);

// `reset`: the program sees ECONNRESET (a refusal), else an orderly close.
void close_redirected(Redirected* r, bool reset) {
  if (r->closing) return;
  r->closing = true;
  forget_check(r);
  if (r->relay.active()) r->relay.detach();
  r->client.data = r;
  r->proxy.data = r;
  uv_close(reinterpret_cast<uv_handle_t*>(&r->first_timer), redirected_closed);
  if (!reset || uv_tcp_close_reset(&r->client, redirected_closed) != 0)
    uv_close(reinterpret_cast<uv_handle_t*>(&r->client), redirected_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&r->proxy), redirected_closed);
}

struct RefusalWrite {
  uv_write_t req{};
  std::string data;
  Redirected* r = nullptr;
};

void refusal_shut(uv_shutdown_t* req, int) {
  auto* r = static_cast<Redirected*>(req->data);
  delete req;
  close_redirected(r, false);
}

void refusal_written(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<RefusalWrite*>(req);
  Redirected* r = w->r;
  delete w;
  if (status == UV_ECANCELED) return;
  auto* sh = new uv_shutdown_t{};
  sh->data = r;
  if (status < 0 || uv_shutdown(sh, r->c(), refusal_shut) != 0) {
    delete sh;
    close_redirected(r, false);
  }
}

// The proxy's whole refusal (head and body, up to its close) goes to the program as the
// answer to its request, then an orderly close.
void pass_refusal_on(Redirected* r) {
  auto* w = new RefusalWrite;
  w->data = std::move(r->reply);
  w->r = r;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, r->c(), &buf, 1, refusal_written) != 0) {
    delete w;
    close_redirected(r, true);
  }
}

void on_proxy_reply(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* r = static_cast<Redirected*>(s->data);
  if (n > 0) r->reply.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n == 0) return;
  if (r->refusal_to_pass_on) {
    if (n < 0 || r->reply.size() >= kMaxConnectReply) {
      uv_read_stop(s);
      pass_refusal_on(r);
    }
    return;
  }
  if (n < 0) return close_redirected(r, true);  // the proxy went away before answering
  ConnectReply reply = parse_connect_reply(r->reply);
  if (reply.state == ConnectReply::State::Incomplete) return;
  if (reply.state == ConnectReply::State::Refused && looks_like_http_request(r->first)) {
    r->refusal_to_pass_on = true;  // read on to the proxy's close: the body comes too
    return;
  }
  uv_read_stop(s);
  if (reply.state != ConnectReply::State::Ok) return close_redirected(r, true);
  std::string early = r->reply.substr(reply.header_bytes);
  r->reply.clear();
  r->relay.start(r->c(), r->p(), std::move(r->first), std::move(early),
                 [r](base::Relay::End) { close_redirected(r, false); });
}

void on_proxy_leg(uv_connect_t* req, int status) {
  auto* r = static_cast<Redirected*>(req->data);
  if (status == UV_ECANCELED) return;
  const bool tls_first = !r->first.empty() && r->first[0] == 22;  // a TLS handshake record
  if (status < 0 || write_string(r->p(), transparent_connect_request(r->target, r->original, tls_first)) != 0)
    return close_redirected(r, true);
  uv_read_start(r->p(), alloc_plain, on_proxy_reply);
}

struct Bridge {
  uv_loop_t* loop = nullptr;
  TransparentBridge cfg;
  uv_tcp_t listen4{}, listen6{};
  // The stub's fake addresses (as text) and the names they were given to.
  std::unordered_map<std::string, std::string> names;

  // ---- the DNS link to the launcher ----
  struct Pending {
    bool udp = true;
    sockaddr_storage from{};  // udp
    uint64_t tcp_id = 0;      // tcp
    std::string query;        // for the SERVFAIL when the link is gone
    uint64_t check_id = 0;    // a name check for a redirected connection, not a query
  };
  uv_pipe_t link{};
  bool link_up = false;
  std::string link_in;
  std::deque<Pending> pending;
  uv_udp_t udp4{}, udp6{};
  bool udp6_up = false;
  uv_tcp_t dns_tcp{}, dns_tcp6{};
  uint64_t next_tcp_id = 1;
  std::unordered_map<uint64_t, uv_tcp_t*> tcp_clients;
  uint64_t next_check_id = 1;
  std::unordered_map<uint64_t, Redirected*> checks;

  std::optional<std::string> target_of(const OriginalDst& d) const {
    return transparent_connect_target(d.addr, d.port, cfg.fake_ipv4, cfg.fake_ipv6,
                                      [this](const rules::IpAddr& a) -> std::optional<std::string> {
                                        auto it = names.find(a.to_string());
                                        if (it == names.end()) return std::nullopt;
                                        return it->second;
                                      });
  }

  void answer(const Pending& p, const std::string& msg);
  void forward(Pending p);
  bool send_link(char kind, std::string_view payload);
  void check_done(uint64_t id, bool ok);
};

Bridge* the_bridge = nullptr;  // one per bridge process

void forget_check(Redirected* r) {
  if (r->id != 0 && the_bridge != nullptr) the_bridge->checks.erase(r->id);
  r->id = 0;
}

void connect_to_proxy(Redirected* r) {
  uv_tcp_nodelay(&r->client, 1);  // the bridge relays: its writes to the program go out at once
  r->connect.data = r;
  uv_pipe_connect(&r->connect, &r->proxy, the_bridge->cfg.proxy_socket.c_str(), on_proxy_leg);
}

static_assert(kMaxFirstBytes <= proxy::kMaxHandOverFirstBytes, "the first bytes fit a hand-over message");

// The bridge's decision is made: the program's socket goes to sluice with it, and sluice
// serves the program itself from here on. Without a channel: CONNECT and relay.
void hand_to_sluice(Redirected* r) {
  HandOverChannels* channels = the_bridge->cfg.channels;
  if (channels == nullptr || channels->empty()) return connect_to_proxy(r);
  proxy::TransparentStart t;
  t.target = r->target;
  t.original_dst = r->original;
  t.first_kind = r->first.empty()                    ? proxy::FirstBytesKind::Other
                 : r->first[0] == 22                 ? proxy::FirstBytesKind::Tls  // a TLS handshake record
                 : looks_like_http_request(r->first) ? proxy::FirstBytesKind::Http
                                                     : proxy::FirstBytesKind::Other;
  t.first = r->first;
  std::string message = proxy::transparent_handover_message(t);
  if (message.empty()) return close_redirected(r, true);  // out of the format's bounds: refused
  // Once written, our copy of the socket closes (no reset: sluice holds the connection).
  if (channels->send(r->c(), std::move(message), [r](bool ok) { close_redirected(r, !ok); })) return;
  connect_to_proxy(r);  // every channel failed: the unix socket may still answer
}

// The first bytes are in (or will not come): a claimed name (SNI, Host) other than the one
// looked up, or any claimed name on a real address, goes to the DNS service to be judged.
void first_bytes_decided(Redirected* r) {
  if (r->decided || r->closing) return;
  r->decided = true;
  uv_read_stop(r->c());
  uv_timer_stop(&r->first_timer);
  ClaimedName claimed = claimed_name(r->first);
  if (claimed.state != ClaimedName::State::Found || claimed.name == r->mapped) return hand_to_sluice(r);
  Bridge* b = the_bridge;
  r->id = b->next_check_id++;
  const std::string payload =
      r->original + " " + (r->mapped.empty() ? "-" : r->mapped) + " " + claimed.name + " " + claimed.via;
  if (!b->link_up || b->pending.size() >= kMaxPendingQueries || !b->send_link('C', payload))
    return close_redirected(r, true);  // cannot be judged: refused
  b->checks[r->id] = r;
  Bridge::Pending p;
  p.check_id = r->id;
  b->pending.push_back(std::move(p));
}

void Bridge::check_done(uint64_t id, bool ok) {
  auto it = checks.find(id);
  if (it == checks.end()) return;  // the program gave up meanwhile
  Redirected* r = it->second;
  checks.erase(it);
  r->id = 0;
  if (!ok) return close_redirected(r, true);
  hand_to_sluice(r);
}

void on_client_first(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* r = static_cast<Redirected*>(s->data);
  if (n > 0) r->first.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n == 0) return;
  if (n < 0 || r->first.size() >= kMaxFirstBytes || claimed_name(r->first).state != ClaimedName::State::NeedMore)
    first_bytes_decided(r);
}

// The first bytes are read into a buffer of what is left below kMaxFirstBytes, so they
// never exceed it (and fit a hand-over message).
void alloc_first(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* r = static_cast<Redirected*>(h->data);
  const size_t room = r->first.size() < kMaxFirstBytes ? kMaxFirstBytes - r->first.size() : 1;
  buf->base = new char[room];
  buf->len = room;
}

void on_first_timeout(uv_timer_t* t) { first_bytes_decided(static_cast<Redirected*>(t->data)); }

void on_redirected(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* b = static_cast<Bridge*>(server->data);
  auto* r = new Redirected(server->loop);
  uv_tcp_init(server->loop, &r->client);
  uv_pipe_init(server->loop, &r->proxy, 0);
  uv_timer_init(server->loop, &r->first_timer);
  r->client.data = r;
  r->proxy.data = r;
  r->first_timer.data = r;
  if (uv_accept(server, r->c()) != 0) return close_redirected(r, false);
  uv_os_fd_t fd = -1;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&r->client), &fd);
  auto dst = original_destination(fd);
  if (!dst) return close_redirected(r, false);  // straight to the listener: nothing to judge
  auto target = b->target_of(*dst);
  if (!target) return close_redirected(r, true);  // a fake address no name holds: never dialed
  r->target = *target;
  const std::string a = dst->addr.to_string();
  r->original = (dst->addr.v6 ? "[" + a + "]" : a) + ":" + std::to_string(dst->port);
  if (b->cfg.fake_ipv4.contains(dst->addr) || b->cfg.fake_ipv6.contains(dst->addr))
    r->mapped = r->target.substr(0, r->target.rfind(':'));
  // A program usually has sent its first bytes by the time its connection is accepted: they
  // are read at once, without a loop turn (and a poll registration) spent waiting for them.
  char now[kMaxFirstBytes];
  ssize_t n = ::recv(fd, now, sizeof now, MSG_DONTWAIT);
  if (n > 0) r->first.assign(now, static_cast<size_t>(n));
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
      (n > 0 && (r->first.size() >= kMaxFirstBytes || claimed_name(r->first).state != ClaimedName::State::NeedMore)))
    return first_bytes_decided(r);
  uv_read_start(r->c(), alloc_first, on_client_first);
  uv_timer_start(&r->first_timer, on_first_timeout, kFirstBytesWaitMs, 0);
}

// ---- the DNS stub ------------------------------------------------------------------

struct UdpSend {
  uv_udp_send_t req{};
  std::string data;
};

void udp_sent(uv_udp_send_t* r, int) { delete reinterpret_cast<UdpSend*>(r); }

void Bridge::answer(const Pending& p, const std::string& msg) {
  if (msg.empty()) return;
  if (p.udp) {
    auto* s = new UdpSend;
    s->data = msg;
    uv_buf_t buf = uv_buf_init(s->data.data(), static_cast<unsigned>(s->data.size()));
    uv_udp_t* via = p.from.ss_family == AF_INET6 && udp6_up ? &udp6 : &udp4;
    if (uv_udp_send(&s->req, via, &buf, 1, reinterpret_cast<const sockaddr*>(&p.from), udp_sent) != 0) delete s;
    return;
  }
  auto it = tcp_clients.find(p.tcp_id);
  if (it == tcp_clients.end()) return;  // the client left meanwhile
  write_string(reinterpret_cast<uv_stream_t*>(it->second), dns::tcp_frame(msg));
}

void Bridge::forward(Pending p) {
  if (!link_up || pending.size() >= kMaxPendingQueries) {
    if (auto err = dns::error_reply(p.query, dns::Rcode::ServFail)) answer(p, *err);
    return;
  }
  if (!send_link('Q', p.query)) {
    if (auto err = dns::error_reply(p.query, dns::Rcode::ServFail)) answer(p, *err);
    return;
  }
  pending.push_back(std::move(p));
}

// One request to the DNS service: a frame holding a kind byte ('Q' a DNS query, 'C' a name
// check "original looked-up-name|- claimed-name via") and the payload.
bool Bridge::send_link(char kind, std::string_view payload) {
  std::string frame;
  stub_put_u16(frame, payload.size() + 1);
  frame += kind;
  frame += payload;
  if (write_string(reinterpret_cast<uv_stream_t*>(&link), std::move(frame)) != 0) {
    link_up = false;
    return false;
  }
  return true;
}

void on_link_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  Bridge* b = the_bridge;
  if (n > 0) b->link_in.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n < 0) {
    // The launcher is gone: whatever waits gets SERVFAIL, later queries too.
    b->link_up = false;
    uv_read_stop(s);
    while (!b->pending.empty()) {
      Bridge::Pending p = std::move(b->pending.front());
      b->pending.pop_front();
      if (p.check_id != 0) {
        b->check_done(p.check_id, false);
        continue;
      }
      if (auto err = dns::error_reply(p.query, dns::Rcode::ServFail)) b->answer(p, *err);
    }
    return;
  }
  for (;;) {
    StubReply r = parse_stub_reply(b->link_in);
    if (!r.complete || b->pending.empty()) break;
    b->link_in.erase(0, r.consumed);
    Bridge::Pending p = std::move(b->pending.front());
    b->pending.pop_front();
    if (p.check_id != 0) {
      b->check_done(p.check_id, r.answer == "ok");
      continue;
    }
    if (!r.mapping.empty()) {
      // "name v4 v6"
      size_t a = r.mapping.find(' '), c = a == std::string::npos ? a : r.mapping.find(' ', a + 1);
      if (c != std::string::npos) {
        std::string name = r.mapping.substr(0, a);
        b->names[r.mapping.substr(a + 1, c - a - 1)] = name;
        b->names[r.mapping.substr(c + 1)] = name;
      }
    }
    b->answer(p, r.answer);
  }
}

void on_udp_query(uv_udp_t*, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) {
  if (n > 0 && from != nullptr) {
    Bridge::Pending p;
    p.udp = true;
    std::memcpy(&p.from, from, from->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    p.query.assign(buf->base, static_cast<size_t>(n));
    the_bridge->forward(std::move(p));
  }
  delete[] buf->base;
}

struct DnsTcpClient {
  uv_tcp_t tcp{};
  uint64_t id = 0;
  std::string in;
};

void dns_tcp_closed(uv_handle_t* h) { delete static_cast<DnsTcpClient*>(h->data); }

void close_dns_tcp(DnsTcpClient* c) {
  the_bridge->tcp_clients.erase(c->id);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), dns_tcp_closed);
}

void on_dns_tcp_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<DnsTcpClient*>(s->data);
  if (n > 0) c->in.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n < 0) return close_dns_tcp(c);
  for (;;) {
    dns::Frame f = dns::parse_tcp_frame(c->in);
    if (f.status == dns::FrameStatus::NeedMore) {
      if (c->in.size() > kMaxDnsTcpBuffer) close_dns_tcp(c);
      return;
    }
    if (f.status == dns::FrameStatus::Error) return close_dns_tcp(c);
    Bridge::Pending p;
    p.udp = false;
    p.tcp_id = c->id;
    p.query = std::string(f.message);
    c->in.erase(0, f.consumed);
    the_bridge->forward(std::move(p));
  }
}

void on_dns_tcp(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* c = new DnsTcpClient;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), dns_tcp_closed);
    return;
  }
  c->id = the_bridge->next_tcp_id++;
  the_bridge->tcp_clients[c->id] = &c->tcp;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), alloc_plain, on_dns_tcp_read);
}

std::string bind_listen(uv_loop_t* loop, uv_tcp_t* t, const char* ip, uint16_t port, uv_connection_cb cb, void* data,
                        bool v6) {
  uv_tcp_init(loop, t);
  t->data = data;
  sockaddr_storage addr{};
  if (v6)
    uv_ip6_addr(ip, port, reinterpret_cast<sockaddr_in6*>(&addr));
  else
    uv_ip4_addr(ip, port, reinterpret_cast<sockaddr_in*>(&addr));
  const std::string where = (v6 ? "[" + std::string(ip) + "]" : std::string(ip)) + ":" + std::to_string(port);
  if (int r = uv_tcp_bind(t, reinterpret_cast<sockaddr*>(&addr), v6 ? UV_TCP_IPV6ONLY : 0); r != 0)
    return "bridge: cannot bind " + where + ": " + uv_strerror(r);
  if (int r = uv_listen(reinterpret_cast<uv_stream_t*>(t), 1024, cb); r != 0)
    return "bridge: cannot listen on " + where + ": " + uv_strerror(r);
  return "";
}

}  // namespace

StubReply parse_stub_reply(std::string_view in) {
  StubReply r;
  if (in.size() < 2) return r;
  size_t a = (static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]);
  if (in.size() < 2 + a + 2) return r;
  size_t m = (static_cast<uint8_t>(in[2 + a]) << 8) | static_cast<uint8_t>(in[3 + a]);
  if (in.size() < 4 + a + m) return r;
  r.complete = true;
  r.consumed = 4 + a + m;
  r.answer = std::string(in.substr(2, a));
  r.mapping = std::string(in.substr(4 + a, m));
  return r;
}

std::string stub_reply_frames(std::string_view answer, std::string_view mapping) {
  std::string out;
  stub_put_u16(out, answer.size());
  out += answer;
  stub_put_u16(out, mapping.size());
  out += mapping;
  return out;
}

std::string start_transparent_bridge(uv_loop_t* loop, const TransparentBridge& cfg) {
  auto* b = new Bridge;  // lives as long as the bridge process
  the_bridge = b;
  b->loop = loop;
  b->cfg = cfg;
  if (auto e = bind_listen(loop, &b->listen4, "127.0.0.1", cfg.tcp_port, on_redirected, b, false); !e.empty()) return e;
  // IPv6 may be off in the namespace; then nothing IPv6 is redirected either.
  if (auto e = bind_listen(loop, &b->listen6, "::1", cfg.tcp_port, on_redirected, b, true); !e.empty())
    uv_close(reinterpret_cast<uv_handle_t*>(&b->listen6), nullptr);

  // The link to the launcher's DNS service: connected before CMD starts, so no query waits.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (cfg.dns_socket.size() >= sizeof sun.sun_path) return "bridge: DNS socket path too long";
  std::memcpy(sun.sun_path, cfg.dns_socket.c_str(), cfg.dns_socket.size());
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    std::string err = "bridge: cannot reach the DNS service at " + cfg.dns_socket + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return err;
  }
  uv_pipe_init(loop, &b->link, 0);
  if (int r = uv_pipe_open(&b->link, fd); r != 0) return std::string("bridge: DNS link: ") + uv_strerror(r);
  b->link_up = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&b->link), alloc_plain, on_link_read);

  uv_udp_init(loop, &b->udp4);
  sockaddr_in a4{};
  uv_ip4_addr("127.0.0.1", cfg.dns_port, &a4);
  if (int r = uv_udp_bind(&b->udp4, reinterpret_cast<sockaddr*>(&a4), 0); r != 0)
    return "bridge: cannot bind the DNS stub on 127.0.0.1:" + std::to_string(cfg.dns_port) +
           " (udp): " + uv_strerror(r);
  uv_udp_recv_start(&b->udp4, alloc_plain, on_udp_query);
  // IPv6 queries (to any server: the rules redirect them to ::1) when the namespace has IPv6.
  uv_udp_init(loop, &b->udp6);
  sockaddr_in6 a6{};
  uv_ip6_addr("::1", cfg.dns_port, &a6);
  if (uv_udp_bind(&b->udp6, reinterpret_cast<sockaddr*>(&a6), UV_UDP_IPV6ONLY) == 0) {
    b->udp6_up = true;
    uv_udp_recv_start(&b->udp6, alloc_plain, on_udp_query);
  }
  if (auto e = bind_listen(loop, &b->dns_tcp6, "::1", cfg.dns_port, on_dns_tcp, b, true); !e.empty())
    uv_close(reinterpret_cast<uv_handle_t*>(&b->dns_tcp6), nullptr);
  return bind_listen(loop, &b->dns_tcp, "127.0.0.1", cfg.dns_port, on_dns_tcp, b, false);
}

}  // namespace sluice::glue
