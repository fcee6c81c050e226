#include "proxy/parent_proxy.hpp"

#include <algorithm>

#include "base/write.hpp"

namespace sluice::proxy {

namespace {
constexpr size_t kMaxHttpHead = 16384;
}  // namespace

void ParentHandshake::start(uv_stream_t* stream, const rules::UpstreamProxy& parent, std::string authority,
                            std::string name, std::optional<rules::IpAddr> addr, uint16_t port, Done done) {
  stream_ = stream;
  parent_ = &parent;
  done_ = std::move(done);
  stream_->data = this;
  if (parent.scheme == rules::UpstreamProxy::Scheme::Http) {
    if (!send(rules::http_connect_request(authority, parent.auth))) return;
    expect(Step::HttpHead, 0);
  } else {
    request_ = rules::socks5_connect_request(name, addr, port);
    if (!send(rules::socks5_greeting(parent.auth.has_value()))) return;
    expect(Step::SocksMethod, 2);
  }
  if (int r = uv_read_start(stream_, on_alloc, on_read); r != 0) finish(Result::Failed, uv_strerror(r));
}

void ParentHandshake::stop() {
  if (stream_ != nullptr && step_ != Step::Idle) uv_read_stop(stream_);
  step_ = Step::Idle;
  done_ = nullptr;
  stream_ = nullptr;
}

// Write errors are left to the read side: the parent's close or the caller's timer ends it.
bool ParentHandshake::send(std::string bytes) {
  if (int r = base::write(stream_, std::move(bytes)); r != 0) {
    finish(Result::Failed, std::string("cannot write to the upstream proxy: ") + uv_strerror(r));
    return false;  // `this` may be gone
  }
  return true;
}

void ParentHandshake::expect(Step step, size_t bytes) {
  if (!done_) return;
  step_ = step;
  have_ = 0;
  need_ = bytes;
  buf_.assign(step == Step::HttpHead ? kMaxHttpHead : 300, '\0');
}

// The bytes that may still belong to the head: as many as "\r\n\r\n" lacks given how
// the head read so far ends, so a read never takes a byte past the blank line.
size_t ParentHandshake::http_head_want() const {
  std::string_view got(buf_.data(), have_);
  for (size_t k = 3; k >= 1; --k)
    if (got.size() >= k && got.substr(got.size() - k) == std::string_view("\r\n\r\n").substr(0, k)) return 4 - k;
  return 4;
}

void ParentHandshake::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<ParentHandshake*>(h->data);
  size_t want = self->step_ == Step::HttpHead ? self->http_head_want() : self->need_ - self->have_;
  want = std::min(want, self->buf_.size() - self->have_);
  *buf = uv_buf_init(self->buf_.data() + self->have_, static_cast<unsigned>(want));
}

void ParentHandshake::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  auto* self = static_cast<ParentHandshake*>(s->data);
  if (self->step_ == Step::Idle || n == 0) return;
  try {
    if (n < 0) {
      if (n == UV_EOF)
        return self->finish(Result::Failed, "the upstream proxy closed the connection during its handshake");
      return self->finish(Result::Failed, std::string("upstream proxy: ") + uv_strerror(static_cast<int>(n)));
    }
    self->have_ += static_cast<size_t>(n);
    if (self->step_ == Step::HttpHead) {
      std::string_view got(self->buf_.data(), self->have_);
      if (got.size() >= 4 && got.substr(got.size() - 4) == "\r\n\r\n") return self->on_complete();
      if (self->have_ >= self->buf_.size())
        return self->finish(Result::Failed, "the upstream proxy's reply head is too long");
      return;
    }
    if (self->have_ >= self->need_) self->on_complete();
  } catch (...) {
    self->finish(Result::Failed, "out of memory");
  }
}

void ParentHandshake::on_complete() {
  const auto* b = reinterpret_cast<const uint8_t*>(buf_.data());
  switch (step_) {
    case Step::Idle: return;
    case Step::HttpHead: {
      std::string reason;
      int status = rules::http_reply_status(std::string_view(buf_.data(), have_), &reason);
      if (status == 0) return finish(Result::Failed, "the upstream proxy's reply is not HTTP");
      std::string line = "the upstream proxy answered " + std::to_string(status) + (reason.empty() ? "" : " " + reason);
      if (status == 407) return finish(Result::AuthFailed, line, status);
      if (status / 100 != 2) return finish(Result::Failed, line, status);
      return finish(Result::Ok, "", status);
    }
    case Step::SocksMethod:
      if (b[0] != 5) return finish(Result::Failed, "the upstream proxy does not speak SOCKS5");
      if (b[1] == 0x00) {
        if (!send(request_)) return;
        return expect(Step::SocksReplyHead, 5);
      }
      if (b[1] == 0x02 && parent_->auth) {
        if (!send(rules::socks5_auth_request(*parent_->auth))) return;
        return expect(Step::SocksAuth, 2);
      }
      return finish(Result::AuthFailed, parent_->auth ? "the upstream SOCKS5 proxy accepts none of sluice's methods"
                                                      : "the upstream SOCKS5 proxy wants credentials");
    case Step::SocksAuth:
      if (b[1] != 0x00) return finish(Result::AuthFailed, "the upstream SOCKS5 proxy refused the credentials");
      if (!send(request_)) return;
      return expect(Step::SocksReplyHead, 5);
    case Step::SocksReplyHead: {
      size_t total = rules::socks5_reply_length(std::string_view(buf_.data(), have_));
      if (total == 0) return finish(Result::Failed, "the upstream SOCKS5 proxy's reply is malformed");
      if (b[1] != 0)
        return finish(Result::Failed, std::string("the upstream SOCKS5 proxy answered ") + std::to_string(b[1]) + " (" +
                                          rules::socks5_reply_text(b[1]) + ")");
      step_ = Step::SocksReplyRest;
      need_ = total;
      if (have_ >= need_) return on_complete();
      return;
    }
    case Step::SocksReplyRest: return finish(Result::Ok, "");
  }
}

void ParentHandshake::finish(Result r, std::string error, int status) {
  Done done = std::move(done_);
  stop();
  if (done) done(Outcome{r, status, std::move(error)});
}

}  // namespace sluice::proxy
