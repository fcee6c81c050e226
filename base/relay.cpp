#include "base/relay.hpp"

#include <cstring>

#include "base/write.hpp"

namespace sluice::base {

Relay::Relay(uv_loop_t* loop, BufferPool& pool, uint64_t idle_timeout_ms)
    : loop_(loop), pool_(pool), idle_timeout_ms_(idle_timeout_ms) {
  client_.counter = &bytes_down_;
  upstream_.counter = &bytes_up_;
}

Relay::~Relay() { detach(); }

Relay::Side& Relay::side_of(uv_stream_t* s) { return s == client_.stream ? client_ : upstream_; }
Relay::Side& Relay::other(Side& s) { return &s == &client_ ? upstream_ : client_; }

void Relay::start(uv_stream_t* client, uv_stream_t* upstream, std::string to_upstream, std::string to_client,
                  std::function<void(End)> on_end) {
  client_.stream = client;
  upstream_.stream = upstream;
  for (Side* s : {&client_, &upstream_}) {
    s->saved_data = s->stream->data;
    s->stream->data = this;
    if (s->reading) {  // take_over(): the read runs on, into the relay
      s->stream->alloc_cb = on_alloc;
      s->stream->read_cb = on_read;
    }
  }
  on_end_ = std::move(on_end);
  active_ = true;
  last_activity_ = uv_now(loop_);
  idle_timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); });
  idle_timer_.get()->data = this;
  uv_timer_start(idle_timer_.get(), on_idle_timer, idle_timeout_ms_, 0);
  if (!to_upstream.empty() && first_check_) {
    auto check = std::exchange(first_check_, nullptr);
    if (!check(to_upstream)) return end(End::FirstBytesRefused);
  }
  if (!to_client.empty()) write(client_, std::move(to_client), nullptr, 0);
  if (!to_upstream.empty() && active_) write(upstream_, std::move(to_upstream), nullptr, 0);
  if (!active_) return;
  if (client_.eof) {  // take_over(): the EOF came before the tunnel
    client_.eof = false;
    return on_eof(client_);
  }
  update_reading();
}

void Relay::detach() {
  if (!active_) return;
  active_ = false;
  idle_timer_.close();
  stop_splice();
  for (Side* s : {&client_, &upstream_}) {
    if (s->reading) uv_read_stop(s->stream);
    s->reading = false;
    s->stream->data = s->saved_data;
  }
}

void Relay::update_reading() {
  if (!active_) return;
  for (Side* s : {&client_, &upstream_}) {
    bool want = !s->eof && uv_stream_get_write_queue_size(other(*s).stream) < kHighWatermark;
    if (want == s->reading) continue;
    s->reading = want;
    if (want)
      uv_read_start(s->stream, on_alloc, on_read);
    else
      uv_read_stop(s->stream);
  }
}

void Relay::write(Side& to, std::string bytes, char* block, size_t len) {
  PooledBlock owned(pool_, block);  // returned to the pool unless the write takes it
  if (to.shut) return;
  // A block mostly goes out whole at once: written now, it needs no write request, and libuv
  // spends no epoll_ctl re-arming the descriptor after a queued write's completion. What
  // the socket does not take (or an error) goes the queued way, as before.
  if (bytes.empty() && block != nullptr && len != 0 && uv_stream_get_write_queue_size(to.stream) == 0) {
    uv_buf_t b = uv_buf_init(block, static_cast<unsigned>(len));
    const int sent = uv_try_write(to.stream, &b, 1);
    if (sent > 0) {
      *to.counter += static_cast<uint64_t>(sent);
      if (static_cast<size_t>(sent) == len) return;
      std::memmove(block, block + sent, len - static_cast<size_t>(sent));
      len -= static_cast<size_t>(sent);
    }
  }
  const size_t n = bytes.size() + (block != nullptr ? len : 0);
  if (base::write(to.stream, std::move(bytes), std::move(owned), len, {on_write, this, &to == &client_ ? 0 : 1}) < 0)
    return end(error_on(to));
  *to.counter += n;
}

void Relay::on_data(Side& from, char* block, size_t n) {
  last_activity_ = uv_now(loop_);
  if (&from == &client_ && first_check_) {
    auto check = std::exchange(first_check_, nullptr);
    if (!check(std::string_view(block, n))) {
      pool_.put(block);
      return end(End::FirstBytesRefused);
    }
  }
  Side& to = other(from);
  write(to, {}, block, n);
  if (active_ && uv_stream_get_write_queue_size(to.stream) >= kHighWatermark) update_reading();
  maybe_splice();
}

void Relay::on_eof(Side& from) {
  from.eof = true;
  if (first_eof_ == nullptr) first_eof_ = &from;
  Side& to = other(from);
  update_reading();
  if (to.shut) return;
  // The other direction is already over (its EOF read and a shutdown of `from` asked for)
  // and nothing waits to be written either way: closing both sends each side the same FIN a
  // shutdown would, one syscall and one loop turn sooner. Both receive queues are empty
  // (each side's EOF was read), so the close cannot turn into a reset.
  if (to.eof && from.shut && uv_stream_get_write_queue_size(to.stream) == 0 &&
      uv_stream_get_write_queue_size(from.stream) == 0)
    return end(finished());
  to.shut = true;
  auto* req = new uv_shutdown_t{};
  req->data = this;
  if (uv_shutdown(req, to.stream, on_shutdown) != 0) {
    delete req;
    end(error_on(to));
  }
}

Relay::End Relay::finished() const { return first_eof_ == &upstream_ ? End::UpstreamEofFirst : End::ClientEofFirst; }

Relay::End Relay::error_on(const Side& s) const { return &s == &client_ ? End::ClientError : End::UpstreamError; }

void Relay::end(End why) {
  if (!active_) return;
  auto cb = std::move(on_end_);
  detach();
  if (cb) cb(why);  // the owner closes the streams; nothing here runs after it
}

void Relay::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* r = static_cast<Relay*>(h->data);
  buf->base = r->pool_.get();
  buf->len = BufferPool::kBlockSize;
}

void Relay::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* r = static_cast<Relay*>(stream->data);
  try {
    if (nread > 0) return r->on_data(r->side_of(stream), buf->base, static_cast<size_t>(nread));  // write owns it
    r->pool_.put(buf->base);
    if (nread == UV_EOF) return r->on_eof(r->side_of(stream));
    if (nread < 0) return r->end(r->error_on(r->side_of(stream)));
  } catch (...) {
    r->end(End::LocalError);
  }
}

void Relay::on_write(void* owner, int side, int status) {
  if (status == UV_ECANCELED) return;
  auto* r = static_cast<Relay*>(owner);
  try {
    if (status < 0) return r->end(r->error_on(side == 0 ? r->client_ : r->upstream_));
    if (r->splicing_) return;
    r->update_reading();
    r->maybe_splice();
  } catch (...) {
    r->end(End::LocalError);
  }
}

void Relay::on_shutdown(uv_shutdown_t* req, int status) {
  auto* r = static_cast<Relay*>(req->data);
  uv_stream_t* to = req->handle;
  delete req;
  if (status == UV_ECANCELED || !r->active_) return;
  try {
    if (status < 0) return r->end(r->error_on(r->side_of(to)));
    r->side_of(to).shut_done = true;
    // A tunnel ends when both directions have ended and been passed on.
    if (r->client_.shut_done && r->upstream_.shut_done) r->end(r->finished());
  } catch (...) {
    r->end(End::LocalError);
  }
}

void Relay::on_idle_timer(uv_timer_t* t) {
  auto* r = static_cast<Relay*>(t->data);
  try {
    uint64_t idle = uv_now(r->loop_) - r->last_activity_;
    if (idle < r->idle_timeout_ms_) {
      uv_timer_start(t, on_idle_timer, r->idle_timeout_ms_ - idle, 0);
      return;
    }
    r->end(End::IdleTimeout);
  } catch (...) {
    r->end(End::LocalError);
  }
}

}  // namespace sluice::base
