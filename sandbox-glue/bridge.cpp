#include "sandbox-glue/bridge.hpp"

#include <uv.h>

#include <cstring>
#include <vector>

#include "base/buffer_pool.hpp"
#include "base/relay.hpp"
#include "proxy/handover_frame.hpp"
#include "sandbox-glue/handover_channels.hpp"

namespace sluice::glue {

namespace {

// A bridged connection moves bytes the way a proxy tunnel does (the same base::Relay:
// backpressure, half-close, splice for bulk), with no idle limit of its own: the proxy's
// tunnel_idle_timeout_ms ends the unix leg, and the relay passes that close on.
constexpr uint64_t kNoIdleLimitMs = 7ull * 24 * 3600 * 1000;

base::BufferPool& pool() {
  static base::BufferPool p;  // the bridge runs one loop on one thread
  return p;
}

// One relayed connection: a TCP client in the jail and a unix-socket leg to the
// proxy. Freed when both handles have closed.
struct Pair {
  explicit Pair(uv_loop_t* loop) : relay(loop, pool(), kNoIdleLimitMs) {}
  uv_tcp_t client{};
  uv_pipe_t proxy{};
  uv_connect_t connect{};
  base::Relay relay;
  int open = 2;
  bool closing = false;

  uv_stream_t* c() { return reinterpret_cast<uv_stream_t*>(&client); }
  uv_stream_t* p() { return reinterpret_cast<uv_stream_t*>(&proxy); }
};

void on_closed(uv_handle_t* h) {
  auto* pair = static_cast<Pair*>(h->data);
  if (--pair->open == 0) delete pair;
}

void close_pair(Pair* pair) {
  if (pair->closing) return;
  pair->closing = true;
  pair->relay.detach();  // hands the data pointers back to the pair
  uv_close(reinterpret_cast<uv_handle_t*>(&pair->client), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&pair->proxy), on_closed);
}

struct Listener {
  uv_tcp_t tcp{};
  std::string socket_path;
  HandOverChannels channels;  // empty: relay mode
};

void free_tcp(uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); }

void hand_over(Listener* l, uv_stream_t* server) {
  auto* client = new uv_tcp_t{};
  uv_tcp_init(server->loop, client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client), free_tcp);
    return;
  }
  auto close_ours = [client](bool) { uv_close(reinterpret_cast<uv_handle_t*>(client), free_tcp); };
  if (l->channels.send(reinterpret_cast<uv_stream_t*>(client), proxy::plain_handover_message(), close_ours)) return;
  // Every channel failed (the proxy is gone): the client sees its connection close.
  close_ours(false);
}

void on_proxy_connected(uv_connect_t* req, int status) {
  auto* pair = static_cast<Pair*>(req->data);
  if (status == UV_ECANCELED) return;
  if (status < 0) return close_pair(pair);  // the client sees a closed connection
  pair->relay.start(pair->c(), pair->p(), {}, {}, [pair](base::Relay::End) { close_pair(pair); });
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* l = static_cast<Listener*>(server->data);
  if (!l->channels.empty()) return hand_over(l, server);
  auto* pair = new Pair(server->loop);
  uv_tcp_init(server->loop, &pair->client);
  uv_pipe_init(server->loop, &pair->proxy, 0);
  pair->client.data = pair;
  pair->proxy.data = pair;
  if (uv_accept(server, pair->c()) != 0) return close_pair(pair);
  uv_tcp_nodelay(&pair->client, 1);
  pair->connect.data = pair;
  uv_pipe_connect(&pair->connect, &pair->proxy, l->socket_path.c_str(), on_proxy_connected);
}

}  // namespace

std::string run_bridge(uint16_t port, const std::string& socket_path, const std::vector<int>& channel_fds,
                       const TransparentBridge& transparent, const std::function<void()>& on_ready) {
  uv_loop_t* loop = uv_default_loop();
  auto* l = new Listener;
  l->socket_path = socket_path;
  if (std::string err = l->channels.open(loop, channel_fds); !err.empty()) return err;
  uv_tcp_init(loop, &l->tcp);
  l->tcp.data = l;
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (int r = uv_tcp_bind(&l->tcp, reinterpret_cast<sockaddr*>(&addr), 0); r != 0)
    return "bridge: cannot bind 127.0.0.1:" + std::to_string(port) + ": " + uv_strerror(r);
  if (int r = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), 1024, on_connection); r != 0)
    return "bridge: cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + uv_strerror(r);
  if (transparent.on) {
    TransparentBridge t = transparent;
    // Transparent connections go over the same channels, with the bridge's decision.
    if (!l->channels.empty()) t.channels = &l->channels;
    if (std::string err = start_transparent_bridge(loop, t); !err.empty()) return err;
  }
  on_ready();
  uv_run(loop, UV_RUN_DEFAULT);
  return "bridge: loop ended";
}

}  // namespace sluice::glue
