// The relay's splice mode: socket -> pipe -> socket inside the kernel.
//
// libuv owns the two sockets and will not poll one fd twice, so the relay stops
// libuv's reads, polls dups of the two fds itself (epoll keys registrations by fd
// number, and a dup shares the socket), and drives each direction with
// non-blocking splice(2) calls. EOF, half-close, byte counts and the idle timer
// behave exactly as in buffer mode.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/relay.hpp"

namespace sluice::base {

namespace {
// Bigger pipes mean fewer splice calls per MiB; the kernel may refuse (per-user pipe
// quota), and then the default 64 KiB serves.
constexpr int kPipeSize = 1 << 20;
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
// Bytes one wake-up moves in one direction at most, so two busy tunnels on a loop share it.
constexpr size_t kBurst = 4 << 20;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}
}  // namespace

void Relay::maybe_splice() {
  if (!active_ || splicing_ || splice_failed_) return;
  if (bytes_up_ + bytes_down_ < kSpliceAfter) return;
  // Only between two TCP sockets (splice to and from unix sockets is not worth the doubt),
  // only with nothing queued in libuv, and only while both directions are open.
  for (Side* s : {&client_, &upstream_}) {
    if (uv_handle_get_type(reinterpret_cast<uv_handle_t*>(s->stream)) != UV_TCP) {
      splice_failed_ = true;
      return;
    }
    if (uv_stream_get_write_queue_size(s->stream) != 0 || s->eof || s->shut) return;
  }
  if (!start_splice()) {
    splice_failed_ = true;
    stop_splice();
    update_reading();
  }
}

bool Relay::start_splice() {
  Side* sides[2] = {&client_, &upstream_};
  for (int i = 0; i < 2; ++i) {
    uv_os_fd_t fd = -1;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(sides[i]->stream), &fd) != 0) return false;
    fd_[i] = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (fd_[i] < 0) return false;
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    pipe_[i] = Pipe{};
    pipe_[i].r = p[0];
    pipe_[i].w = p[1];
    int size = ::fcntl(p[1], F_SETPIPE_SZ, kPipeSize);
    if (size < 0) size = ::fcntl(p[1], F_GETPIPE_SZ);
    pipe_[i].capacity = size > 0 ? static_cast<size_t>(size) : 65536;
  }
  for (int i = 0; i < 2; ++i) {
    int fd = fd_[i];
    if (poll_[i].init([&](uv_poll_t* h) { return uv_poll_init(loop_, h, fd); }) != 0) return false;
    poll_[i].get()->data = this;
  }
  for (Side* s : sides) {
    if (s->reading) uv_read_stop(s->stream);
    s->reading = false;
  }
  splicing_ = true;
  update_polls();
  return true;
}

void Relay::stop_splice() {
  for (int i = 0; i < 2; ++i) {
    if (poll_[i].live()) uv_poll_stop(poll_[i].get());  // out of epoll before the fd closes
    poll_[i].close();
    close_fd(fd_[i]);
    close_fd(pipe_[i].r);
    close_fd(pipe_[i].w);
    poll_mask_[i] = 0;
  }
  splicing_ = false;
}

// Direction `dir` runs from socket `dir` (0 client, 1 upstream) to socket `1 - dir`.
void Relay::pump(int dir) {
  Pipe& p = pipe_[dir];
  const int src = fd_[dir], dst = fd_[1 - dir];
  uint64_t& counter = dir == 0 ? bytes_up_ : bytes_down_;
  size_t moved = 0;
  for (;;) {
    bool progress = false;
    if (!p.src_eof && p.in_pipe < p.capacity && moved < kBurst) {
      ssize_t n = ::splice(src, nullptr, p.w, nullptr, p.capacity - p.in_pipe, kSpliceFlags);
      if (n > 0) {
        p.in_pipe += static_cast<size_t>(n);
        moved += static_cast<size_t>(n);
        progress = true;
      } else if (n == 0) {
        p.src_eof = true;
        if (first_eof_ == nullptr) first_eof_ = dir == 0 ? &client_ : &upstream_;
        progress = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        return end(dir == 0 ? End::ClientError : End::UpstreamError);
      }
    }
    if (p.in_pipe > 0) {
      ssize_t n = ::splice(p.r, nullptr, dst, nullptr, p.in_pipe, kSpliceFlags);
      if (n > 0) {
        p.in_pipe -= static_cast<size_t>(n);
        counter += static_cast<uint64_t>(n);
        p.dst_blocked = false;
        progress = true;
      } else if (n < 0 && errno == EAGAIN) {
        p.dst_blocked = true;
      } else if (n < 0 && errno != EINTR) {
        return end(dir == 0 ? End::UpstreamError : End::ClientError);
      }
    }
    if (p.src_eof && p.in_pipe == 0 && !p.done) {
      // Half-close: everything the source sent has been passed on.
      p.done = true;
      if (::shutdown(dst, SHUT_WR) != 0 && errno != ENOTCONN)
        return end(dir == 0 ? End::UpstreamError : End::ClientError);
    }
    if (!progress || p.dst_blocked || moved >= kBurst || p.done) break;
  }
  if (moved > 0) last_activity_ = uv_now(loop_);
  if (pipe_[0].done && pipe_[1].done) return end(finished());
}

// Socket i is read for direction i (while its pipe has room) and written for
// direction 1 - i (while that pipe's last splice out was refused).
void Relay::update_polls() {
  if (!splicing_) return;
  for (int i = 0; i < 2; ++i) {
    const Pipe& out = pipe_[i];
    const Pipe& in = pipe_[1 - i];
    int mask = 0;
    if (!out.src_eof && out.in_pipe < out.capacity) mask |= UV_READABLE;
    if (in.dst_blocked && in.in_pipe > 0) mask |= UV_WRITABLE;
    if (mask == poll_mask_[i]) continue;
    poll_mask_[i] = mask;
    if (mask == 0)
      uv_poll_stop(poll_[i].get());
    else
      uv_poll_start(poll_[i].get(), mask, on_poll);
  }
}

void Relay::on_poll(uv_poll_t* h, int status, int events) {
  auto* r = static_cast<Relay*>(h->data);
  try {
    if (!r->splicing_) return;
    if (status < 0) return r->end(h == r->poll_[0].get() ? End::ClientError : End::UpstreamError);
    const int i = h == r->poll_[0].get() ? 0 : 1;
    if (events & (UV_READABLE | UV_DISCONNECT)) r->pump(i);
    if (r->active_ && r->splicing_ && (events & UV_WRITABLE)) r->pump(1 - i);
    if (r->active_) r->update_polls();
  } catch (...) {
    r->end(End::LocalError);
  }
}

}  // namespace sluice::base
