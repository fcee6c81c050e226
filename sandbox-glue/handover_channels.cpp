#include "sandbox-glue/handover_channels.hpp"

namespace sluice::glue {

struct HandOverChannels::Write {
  uv_write_t req{};
  HandOverChannels* owner = nullptr;
  uv_pipe_t* channel = nullptr;
  std::string message;
  std::function<void(bool)> sent;
};

namespace {
void free_channel(uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); }
}  // namespace

std::string HandOverChannels::open(uv_loop_t* loop, const std::vector<int>& fds) {
  for (int fd : fds) {
    auto* channel = new uv_pipe_t{};
    uv_pipe_init(loop, channel, 1);  // ipc: the framing that carries descriptors
    if (int r = uv_pipe_open(channel, fd); r != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(channel), free_channel);
      return "bridge: channel fd " + std::to_string(fd) + ": " + uv_strerror(r);
    }
    channels_.push_back(channel);
  }
  return "";
}

void HandOverChannels::drop(uv_pipe_t* channel) {
  for (size_t i = 0; i < channels_.size(); ++i) {
    if (channels_[i] != channel) continue;
    channels_.erase(channels_.begin() + static_cast<long>(i));
    uv_close(reinterpret_cast<uv_handle_t*>(channel), free_channel);
    return;
  }
}

// The descriptor travels with the message; the caller closes its copy once it is sent.
void HandOverChannels::on_written(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<Write*>(req);
  if (status < 0 && status != UV_ECANCELED) w->owner->drop(w->channel);
  auto sent = std::move(w->sent);
  delete w;
  sent(status == 0);
}

bool HandOverChannels::send(uv_stream_t* client, std::string message, std::function<void(bool)> sent) {
  while (!channels_.empty()) {
    uv_pipe_t* channel = channels_[next_++ % channels_.size()];
    auto* w = new Write;
    w->owner = this;
    w->channel = channel;
    w->message = std::move(message);
    w->sent = std::move(sent);
    uv_buf_t buf = uv_buf_init(w->message.data(), static_cast<unsigned>(w->message.size()));
    if (uv_write2(&w->req, reinterpret_cast<uv_stream_t*>(channel), &buf, 1, client, on_written) == 0) return true;
    message = std::move(w->message);
    sent = std::move(w->sent);
    delete w;
    drop(channel);
  }
  return false;
}

}  // namespace sluice::glue
