#include "proxy/tls_pump.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "base/write.hpp"

namespace sluice::proxy {

namespace {
constexpr size_t kPumpHighWatermark = Relay::kHighWatermark;
// After the session's side ended: how long the pump may take to hand the rest to a slow peer.
constexpr uint64_t kPumpLingerMs = 2 * kLingerMs;
constexpr int kToCipher = 0, kToPlain = 1;

// Per worker thread: the buffer cipher reads land in (lent to the engine, never kept past the
// read callback) and the one plaintext is decrypted into (handed to the owner, never kept past
// the Data event). One at a time each; a nested use gets a pooled block instead.
struct Scratch {
  std::unique_ptr<char[]> bytes;
  bool busy = false;
  char* take() {
    if (busy) return nullptr;
    if (!bytes) bytes = std::make_unique<char[]>(TlsPump::kReadSize);
    busy = true;
    return bytes.get();
  }
  bool owns(const char* p) const { return bytes && p == bytes.get(); }
};
thread_local Scratch cipher_scratch, plain_scratch;

size_t queued_on(const UvHandle<AnyStream>& h) { return h.live() ? uv_stream_get_write_queue_size(h.stream()) : 0; }
}  // namespace

TlsPump::TlsPump(WorkerContext& worker, UvHandle<AnyStream>&& cipher, tls::Engine engine, Role role, Done done)
    : worker_(worker), cipher_(std::move(cipher)), engine_(std::move(engine)), role_(role), done_(std::move(done)) {}

TlsPump::~TlsPump() = default;

TlsPump* TlsPump::start(WorkerContext& worker, UvHandle<AnyStream>&& cipher, tls::Engine engine, Role role,
                        std::string raw_first, std::string initial, uint64_t timeout_ms, Done done) {
  auto* p = new TlsPump(worker, std::move(cipher), std::move(engine), role, std::move(done));
  p->cipher_.get()->handle.data = p;
  ++p->open_handles_;
  p->timer_.init([&](uv_timer_t* t) { return uv_timer_init(worker.loop(), t); });
  p->timer_.get()->data = p;
  ++p->open_handles_;
  p->raw_first_ = std::move(raw_first);  // written by the first step, before any TLS byte
  if (role == Role::Server)
    p->sniffed_ = std::move(initial);
  else if (!initial.empty())
    p->engine_.feed(initial);
  // The first step runs from the loop, so `done` never runs inside start().
  uv_timer_start(p->timer_.get(), on_timer, 0, timeout_ms == 0 ? 1 : timeout_ms);
  p->update_reading();
  return p;
}

// ---- the handshake -----------------------------------------------------------

void TlsPump::handshake_step() {
  if (phase_ != Phase::Handshaking || !kicked_) return;  // the first step writes raw_first_ first
  if (role_ == Role::Server && !hello_checked_) {
    bool need_more = false;
    const bool hello = tls::looks_like_client_hello(sniffed_, need_more);
    if (need_more || sniffed_.empty()) return;
    hello_checked_ = true;
    if (!hello) {
      Handshake h;
      h.not_tls = true;
      h.error = "the client sent bytes that are not a TLS ClientHello";
      return handshake_done(h);
    }
    engine_.feed(sniffed_);
    std::string().swap(sniffed_);
  }
  const auto status = engine_.handshake();
  if (flush_cipher() < 0) return;
  if (status == tls::Engine::Status::WantIo) return;
  Handshake h;
  h.ok = status == tls::Engine::Status::Done;
  if (!h.ok) h.error = engine_.error();
  h.alert = engine_.peer_alert();
  h.sni = engine_.client_sni();
  h.resumed = h.ok && engine_.resumed();
  handshake_done(h);
}

void TlsPump::handshake_done(Handshake& h) {
  if (timer_.live()) uv_timer_stop(timer_.get());
  phase_ = h.ok ? Phase::Waiting : Phase::Closing;
  update_reading();
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(h);
  if (!h.ok) close_all();  // the alert, if any, was written first
}

UvHandle<AnyStream> TlsPump::open_plaintext(std::string& error) {
  UvHandle<AnyStream> theirs{UvHandle<AnyStream>::Empty{}};
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    error = std::string("socketpair: ") + std::strerror(errno);
    close_all();
    return theirs;
  }
  uv_loop_t* loop = worker_.loop();
  auto fail = [&](int unowned_from) {
    for (int i = unowned_from; i < 2; ++i) ::close(fds[i]);
    error = "cannot open the plaintext socket";
    theirs.close();
    close_all();
    return UvHandle<AnyStream>{UvHandle<AnyStream>::Empty{}};
  };
  sink_ = {};  // from attached (an upgrade's relay), the socketpair takes over
  sink_reading_ = false;
  if (timer_.live()) uv_timer_stop(timer_.get());  // attach()'s kick: cipher_data() below does it
  if (plain_.init([&](AnyStream* s) { return uv_pipe_init(loop, &s->pipe, 0); }) != 0) return fail(0);
  plain_.get()->handle.data = this;
  ++open_handles_;
  if (uv_pipe_open(&plain_.get()->pipe, fds[0]) != 0) return fail(0);
  if (theirs.init([&](AnyStream* s) { return uv_pipe_init(loop, &s->pipe, 0); }) != 0) return fail(1);
  if (uv_pipe_open(&theirs.get()->pipe, fds[1]) != 0) return fail(1);
  phase_ = Phase::Pumping;
  cipher_data(nullptr, 0);  // application data that came with the handshake's last flight
  update_reading();
  return theirs;
}

void TlsPump::abort() { close_all(); }

// ---- moving bytes ---------------------------------------------------------------

void TlsPump::cipher_data(const char* data, size_t n) {
  if (phase_ == Phase::Handshaking) {
    if (role_ == Role::Server && !hello_checked_)
      sniffed_.append(data, n);
    else
      engine_.feed(std::string_view(data, n));
    return handshake_step();
  }
  if (phase_ == Phase::Attached || phase_ == Phase::Detached) {
    // Decrypted straight from the read buffer; what OpenSSL did not take is copied after.
    if (n > 0) engine_.lend(std::string_view(data, n));
    deliver();
    return engine_.unlend();
  }
  if (phase_ != Phase::Pumping) {
    if (n > 0) engine_.feed(std::string_view(data, n));  // Waiting: kept for attach() or open_plaintext()
    return;
  }
  if (n > 0) engine_.feed(std::string_view(data, n));
  std::string plain;
  plain.reserve(n + 16384);  // plaintext is never longer than the ciphertext (plus what was buffered)
  const auto status = engine_.read(plain);
  if (!plain.empty()) send(plain_.stream(), std::move(plain));
  if (flush_cipher() < 0) return;  // session tickets, key updates
  if (status == tls::Engine::Status::Failed) {
    if (engine_.peer_closed()) return cipher_eof();
    return close_all();
  }
}

// Attached: what the engine can decrypt goes to the owner, one pooled block at a time, straight
// from the engine's output (no socket in between). Detached: read and dropped, until the
// peer's close_notify or FIN ends the drain.
void TlsPump::deliver() {
  for (;;) {
    char* big = plain_scratch.take();
    base::PooledBlock block(worker_.buffers(), big == nullptr ? worker_.buffers().get() : nullptr);
    char* buf = big != nullptr ? big : block.get();
    const size_t cap = big != nullptr ? kReadSize : BufferPool::kBlockSize;
    size_t got = 0;
    auto status = tls::Engine::Status::Failed;
    try {
      status = engine_.read(buf, cap, got);
      if (got > 0) emit(Event::Data, buf, got);
    } catch (...) {
      if (big != nullptr) plain_scratch.busy = false;
      throw;
    }
    if (big != nullptr) plain_scratch.busy = false;
    if (phase_ != Phase::Attached && phase_ != Phase::Detached) return;  // closed, or open_plaintext()
    if (status == tls::Engine::Status::Done) continue;                   // the buffer is full; more may be there
    if (flush_cipher() < 0) {                                            // session tickets, key updates
      cipher_broken_ = true;
      if (phase_ == Phase::Detached) return close_all();
      return emit(Event::Reset);
    }
    if (status == tls::Engine::Status::WantIo) return;
    if (engine_.peer_closed()) return cipher_eof();
    cipher_broken_ = true;
    if (phase_ == Phase::Detached) return close_all();
    return emit(Event::Reset);
  }
}

void TlsPump::emit(Event e, const char* data, size_t n) {
  if (phase_ == Phase::Attached && sink_.fn != nullptr) sink_.fn(sink_.owner, sink_.tag, e, data, n);
}

// ---- attached -------------------------------------------------------------------

void TlsPump::attach(Sink sink) {
  if (phase_ != Phase::Waiting) return;
  phase_ = Phase::Attached;
  sink_ = sink;
  // Application data that came with the handshake's last flight: on the next loop turn.
  if (timer_.live()) uv_timer_start(timer_.get(), on_timer, 0, 0);
}

void TlsPump::set_reading(bool want) {
  sink_reading_ = want;
  update_reading();
}

int TlsPump::write(std::string_view plain, bool send_now) {
  if (phase_ != Phase::Attached || cipher_broken_) return UV_EPIPE;
  if (engine_.write(plain) == tls::Engine::Status::Failed) return UV_EPROTO;
  return send_now ? flush_cipher() : 0;
}

int TlsPump::flush() {
  if (phase_ != Phase::Attached || cipher_broken_) return 0;
  return flush_cipher();
}

size_t TlsPump::queued() const { return queued_on(cipher_); }

int TlsPump::shutdown() {
  if (phase_ != Phase::Attached || cipher_shut_ || cipher_broken_) return UV_EPIPE;
  engine_.close_notify();
  if (const int r = flush_cipher(); r < 0) return r;
  cipher_shut_ = true;
  auto* req = new uv_shutdown_t{};
  req->data = this;
  if (const int r = uv_shutdown(req, cipher_.stream(), on_shutdown); r != 0) {
    delete req;
    return r;
  }
  return 0;
}

void TlsPump::detach() {
  if (phase_ != Phase::Attached) return abort();
  phase_ = Phase::Detached;
  sink_ = {};
  if (cipher_broken_) return close_all();
  plain_eof_ = true;
  engine_.close_notify();
  if (flush_cipher() < 0) return close_all();
  shut(cipher_.stream(), cipher_shut_);
  if (timer_.live()) uv_timer_start(timer_.get(), on_timer, kPumpLingerMs, 0);
  update_reading();
  maybe_finish();
}

void TlsPump::cipher_eof() {
  if (phase_ == Phase::Handshaking) {
    Handshake h;
    h.error = "the peer closed the connection during the TLS handshake";
    h.alert = engine_.peer_alert();
    h.sni = engine_.client_sni();
    return handshake_done(h);
  }
  cipher_eof_ = true;
  if (plain_.live()) shut(plain_.stream(), plain_shut_);
  update_reading();
  if (phase_ == Phase::Attached) return emit(Event::Eof);
  maybe_finish();
}

void TlsPump::plain_data(const char* data, size_t n) {
  if (engine_.write(std::string_view(data, n)) == tls::Engine::Status::Failed) return close_all();
  (void)flush_cipher();
}

void TlsPump::plain_eof() {
  plain_eof_ = true;
  engine_.close_notify();
  if (flush_cipher() < 0) return;
  shut(cipher_.stream(), cipher_shut_);
  if (timer_.live()) uv_timer_start(timer_.get(), on_timer, kPumpLingerMs, 0);
  update_reading();
  maybe_finish();
}

// Straight from the engine's output buffer, which keeps its capacity; only what the socket
// does not take at once is copied into a queued write.
int TlsPump::flush_cipher() {
  std::string& out = engine_.output();
  if (out.empty()) return 0;
  if (phase_ == Phase::Closing || !cipher_.live()) {
    out.clear();
    return 0;
  }
  size_t sent = 0;
  if (uv_stream_get_write_queue_size(cipher_.stream()) == 0) {
    uv_buf_t b = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
    const int r = uv_try_write(cipher_.stream(), &b, 1);
    if (r > 0) sent = static_cast<size_t>(r);
  }
  if (sent == out.size()) {
    out.clear();
    return 0;
  }
  std::string rest(out, sent);
  out.clear();
  return send(cipher_.stream(), std::move(rest), false);
}

// Mostly the socket takes it all at once: then there is no write request (and none of the
// epoll_ctl libuv spends after a queued one). The rest is queued. Attached, a failure is the
// caller's to report; otherwise the pump ends.
int TlsPump::send(uv_stream_t* to, std::string bytes, bool try_first) {
  if (phase_ == Phase::Closing || to == nullptr) return 0;
  const int tag = to == cipher_.stream() ? kToCipher : kToPlain;
  size_t sent = 0;
  if (try_first && uv_stream_get_write_queue_size(to) == 0 && !bytes.empty()) {
    uv_buf_t b = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    const int r = uv_try_write(to, &b, 1);
    if (r > 0) sent = static_cast<size_t>(r);
  }
  int rc = 0;
  if (sent < bytes.size()) {
    if (sent != 0) bytes.erase(0, sent);
    rc = base::write(to, std::move(bytes), {on_write, this, tag});
  }
  if (rc < 0) {
    if (phase_ == Phase::Attached || phase_ == Phase::Detached) return rc;
    if (phase_ != Phase::Handshaking) {
      close_all();
      return rc;
    }
    Handshake h;  // never inside start(): the first write happens on the loop
    h.error = "cannot write to the connection";
    handshake_done(h);
    return rc;
  }
  if (phase_ != Phase::Attached) update_reading();  // attached, the owner decides reading
  return 0;
}

void TlsPump::shut(uv_stream_t* s, bool& flag) {
  if (flag || phase_ == Phase::Closing) return;
  flag = true;
  auto* req = new uv_shutdown_t{};
  req->data = this;
  if (uv_shutdown(req, s, on_shutdown) != 0) {
    delete req;
    close_all();
  }
}

void TlsPump::update_reading() {
  const bool pumping = phase_ == Phase::Pumping;
  const bool want_cipher =
      phase_ == Phase::Handshaking || (pumping && !cipher_eof_ && queued_on(plain_) < kPumpHighWatermark) ||
      (phase_ == Phase::Attached && sink_reading_ && !cipher_eof_) || (phase_ == Phase::Detached && !cipher_eof_);
  const bool want_plain = pumping && !plain_eof_ && queued_on(cipher_) < kPumpHighWatermark;
  if (cipher_.live() && want_cipher != cipher_reading_) {
    cipher_reading_ = want_cipher;
    if (want_cipher)
      uv_read_start(cipher_.stream(), on_cipher_alloc, on_cipher_read);
    else
      uv_read_stop(cipher_.stream());
  }
  if (plain_.live() && want_plain != plain_reading_) {
    plain_reading_ = want_plain;
    if (want_plain)
      uv_read_start(plain_.stream(), on_alloc, on_plain_read);
    else
      uv_read_stop(plain_.stream());
  }
}

// Both sides ended and every byte was handed on: nothing is left to do.
void TlsPump::maybe_finish() {
  if (cipher_eof_ && plain_eof_ && queued_on(cipher_) == 0 && queued_on(plain_) == 0) close_all();
}

void TlsPump::close_all() {
  if (phase_ == Phase::Closing && !cipher_.live() && !plain_.live() && !timer_.live()) return;
  phase_ = Phase::Closing;
  done_ = nullptr;
  sink_ = {};
  cipher_.close(on_closed);
  plain_.close(on_closed);
  timer_.close(on_closed);
}

// ---- libuv callbacks ---------------------------------------------------------------

// Cipher reads: into the thread's big buffer (a read callback never keeps it: cipher_data()
// copies or lends and unlends), so one system call takes up to kReadSize.
void TlsPump::on_cipher_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  if (char* big = cipher_scratch.take()) {
    buf->base = big;
    buf->len = kReadSize;
    return;
  }
  on_alloc(h, 0, buf);
}

void TlsPump::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* p = static_cast<TlsPump*>(h->data);
  buf->base = p->worker_.buffers().get();
  buf->len = BufferPool::kBlockSize;
}

void TlsPump::on_cipher_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* p = static_cast<TlsPump*>(s->data);
  const bool big = cipher_scratch.owns(buf->base);
  base::PooledBlock block(p->worker_.buffers(), big ? nullptr : buf->base);
  struct Release {
    bool big;
    ~Release() {
      if (big) cipher_scratch.busy = false;
    }
  } release{big};
  try {
    if (nread > 0) return p->cipher_data(buf->base, static_cast<size_t>(nread));
    if (nread == UV_EOF) return p->cipher_eof();
    if (nread < 0) {
      if (p->phase_ == Phase::Handshaking) return p->cipher_eof();
      if (p->phase_ == Phase::Attached) {
        p->cipher_eof_ = p->cipher_broken_ = true;
        p->update_reading();
        return p->emit(Event::Reset);
      }
      return p->close_all();
    }
  } catch (...) {
    p->close_all();
  }
}

void TlsPump::on_plain_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* p = static_cast<TlsPump*>(s->data);
  base::PooledBlock block(p->worker_.buffers(), buf->base);
  try {
    if (nread > 0) return p->plain_data(block.get(), static_cast<size_t>(nread));
    if (nread == UV_EOF) return p->plain_eof();
    if (nread < 0) return p->close_all();
  } catch (...) {
    p->close_all();
  }
}

void TlsPump::on_write(void* pump, int, int status) {
  if (status == UV_ECANCELED) return;
  auto* p = static_cast<TlsPump*>(pump);
  try {
    if (status < 0 && p->phase_ == Phase::Attached) {
      p->cipher_broken_ = true;
      return p->emit(Event::Reset);
    }
    if (status < 0) return p->close_all();
    if (p->phase_ == Phase::Attached) return p->emit(Event::Wrote);
    p->update_reading();
    p->maybe_finish();
  } catch (...) {
    p->close_all();
  }
}

void TlsPump::on_shutdown(uv_shutdown_t* req, int status) {
  auto* p = static_cast<TlsPump*>(req->data);
  delete req;
  if (status == UV_ECANCELED) return;
  try {
    if (p->phase_ == Phase::Attached) return p->emit(status < 0 ? Event::Reset : Event::ShutDone);
    if (status < 0) return p->close_all();
    p->maybe_finish();
  } catch (...) {
    p->close_all();
  }
}

void TlsPump::on_timer(uv_timer_t* t) {
  auto* p = static_cast<TlsPump*>(t->data);
  try {
    if (p->phase_ == Phase::Handshaking && !p->kicked_) {
      p->kicked_ = true;
      if (!p->raw_first_.empty()) p->send(p->cipher_.stream(), std::exchange(p->raw_first_, {}));
      return p->handshake_step();
    }
    if (p->phase_ == Phase::Attached) return p->deliver();  // attach()'s kick
    if (p->phase_ == Phase::Handshaking) {
      Handshake h;
      h.error = "the TLS handshake did not finish in time";
      h.sni = p->engine_.client_sni();
      return p->handshake_done(h);
    }
    p->close_all();  // the linger after the session's end ran out
  } catch (...) {
    p->close_all();
  }
}

void TlsPump::on_closed(void* pump) {
  auto* p = static_cast<TlsPump*>(pump);
  if (--p->open_handles_ == 0) delete p;
}

}  // namespace sluice::proxy
