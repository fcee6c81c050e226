#include "sandbox-glue/bridge.hpp"

#include <uv.h>

#include <cstring>

namespace sluice::glue {

namespace {

constexpr size_t kBlock = 64 * 1024;
constexpr size_t kHighWatermark = 512 * 1024;

// One relayed connection: a TCP client in the jail and a unix-socket leg to the
// proxy. Freed when both handles have closed.
struct Pair {
  uv_tcp_t client{};
  uv_pipe_t proxy{};
  uv_connect_t connect{};
  int open = 2;
  bool closing = false;
  bool client_eof = false, proxy_eof = false;
  bool client_shut = false, proxy_shut = false;
  int shutdowns_done = 0;

  uv_stream_t* c() { return reinterpret_cast<uv_stream_t*>(&client); }
  uv_stream_t* p() { return reinterpret_cast<uv_stream_t*>(&proxy); }
  uv_stream_t* other(uv_stream_t* s) { return s == c() ? p() : c(); }
};

struct Write {
  uv_write_t req;
  Pair* pair;
  char* data;
};

void on_closed(uv_handle_t* h) {
  auto* pair = static_cast<Pair*>(h->data);
  if (--pair->open == 0) delete pair;
}

void close_pair(Pair* pair) {
  if (pair->closing) return;
  pair->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&pair->client), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&pair->proxy), on_closed);
}

void alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  buf->base = new char[kBlock];
  buf->len = kBlock;
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);

void update_reading(Pair* pair) {
  if (pair->closing) return;
  for (uv_stream_t* s : {pair->c(), pair->p()}) {
    bool eof = s == pair->c() ? pair->client_eof : pair->proxy_eof;
    bool want = !eof && uv_stream_get_write_queue_size(pair->other(s)) < kHighWatermark;
    if (want) uv_read_start(s, alloc, on_read);
    else uv_read_stop(s);
  }
}

void on_written(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<Write*>(req);
  Pair* pair = w->pair;
  delete[] w->data;
  delete w;
  if (status == UV_ECANCELED) return;
  if (status < 0) return close_pair(pair);
  update_reading(pair);
}

void on_shutdown(uv_shutdown_t* req, int status) {
  auto* pair = static_cast<Pair*>(req->data);
  delete req;
  if (status == UV_ECANCELED) return;
  if (++pair->shutdowns_done == 2 || status < 0) close_pair(pair);
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* pair = static_cast<Pair*>(s->data);
  if (n <= 0) {
    delete[] buf->base;
    if (n == 0) return;
    if (n != UV_EOF) return close_pair(pair);
    bool from_client = s == pair->c();
    (from_client ? pair->client_eof : pair->proxy_eof) = true;
    bool& shut = from_client ? pair->proxy_shut : pair->client_shut;
    if (!shut) {
      shut = true;
      auto* req = new uv_shutdown_t{};
      req->data = pair;
      if (uv_shutdown(req, pair->other(s), on_shutdown) != 0) {
        delete req;
        return close_pair(pair);
      }
    }
    return update_reading(pair);
  }
  auto* w = new Write{{}, pair, buf->base};
  uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(n));
  if (uv_write(&w->req, pair->other(s), &out, 1, on_written) != 0) {
    delete[] w->data;
    delete w;
    return close_pair(pair);
  }
  update_reading(pair);
}

struct Listener {
  uv_tcp_t tcp{};
  std::string socket_path;
};

void on_proxy_connected(uv_connect_t* req, int status) {
  auto* pair = static_cast<Pair*>(req->data);
  if (status == UV_ECANCELED) return;
  if (status < 0) return close_pair(pair);  // the client sees a closed connection
  update_reading(pair);
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* l = static_cast<Listener*>(server->data);
  auto* pair = new Pair;
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

std::string run_bridge(uint16_t port, const std::string& socket_path, const std::function<void()>& on_ready) {
  uv_loop_t* loop = uv_default_loop();
  auto* l = new Listener;
  l->socket_path = socket_path;
  uv_tcp_init(loop, &l->tcp);
  l->tcp.data = l;
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (int r = uv_tcp_bind(&l->tcp, reinterpret_cast<sockaddr*>(&addr), 0); r != 0)
    return "bridge: cannot bind 127.0.0.1:" + std::to_string(port) + ": " + uv_strerror(r);
  if (int r = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), 1024, on_connection); r != 0)
    return "bridge: cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + uv_strerror(r);
  on_ready();
  uv_run(loop, UV_RUN_DEFAULT);
  return "bridge: loop ended";
}

}  // namespace sluice::glue
