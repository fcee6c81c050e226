#include "proxy/worker.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "proxy/decision_log.hpp"
#include "proxy/front.hpp"

namespace sluice::proxy {

Worker::Worker(int index, SharedState& shared, std::shared_ptr<const rules::Config> config,
               std::shared_ptr<rules::WorkerRules> rules)
    : index_(index), shared_(shared), config_(std::move(config)), rules_(std::move(rules)) {}

Worker::~Worker() {
  join();
  // Handles closed during shutdown free their memory in close callbacks.
  if (loop_ready_) {
    accepts_.clear();
    channels_.clear();
    inbox_.close();
    drain_timer_.close();
    probe_.close();
    turn_probe_.close();
    resolver_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
}

std::string Worker::prepare(const std::vector<BoundListener>& listeners) {
  if (uv_loop_init(&loop_) != 0) return "worker: cannot create event loop";
  loop_ready_ = true;
  std::string error;
  resolver_ = make_ares_resolver(&loop_, config_->resolver, &error);
  if (!resolver_) return "resolver: " + error;
  if (inbox_.open(&loop_) != 0) return "worker: cannot create its inbox";
  drain_timer_.init([&](uv_timer_t* t) { return uv_timer_init(&loop_, t); });
  drain_timer_.get()->data = this;
  for (const auto& l : listeners) {
    // Close-on-exec like the original: a plain dup() would leak the listening socket into
    // every process sluice starts (bwrap, and the jailed command with it).
    int fd = ::fcntl(l.fd_for(static_cast<size_t>(index_)), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return "listener " + l.info->name + ": dup failed";
    if (std::string err = open_accept(fd, l.info); !err.empty()) return err;
  }
  if (shared_.loop_probe_ms > 0) {
    turn_probe_.init([&](uv_prepare_t* p) { return uv_prepare_init(&loop_, p); });
    turn_probe_.get()->data = this;
    uv_prepare_start(turn_probe_.get(), on_loop_turn);
    probe_.init([&](uv_timer_t* t) { return uv_timer_init(&loop_, t); });
    probe_.get()->data = this;
    metrics_.loop_probe = true;
    probe_due_ns_ = uv_hrtime() + static_cast<uint64_t>(shared_.loop_probe_ms) * 1000000;
    uv_timer_start(probe_.get(), on_probe, static_cast<uint64_t>(shared_.loop_probe_ms),
                   static_cast<uint64_t>(shared_.loop_probe_ms));
  }
  return "";
}

std::string Worker::open_accept(int fd, std::shared_ptr<const ListenerInfo> info) {
  auto a = std::make_unique<Accept>();
  a->worker = this;
  a->info = std::move(info);
  a->is_unix = a->info->is_unix;
  int r = a->handle.init([&](AnyStream* s) {
    int rc = a->is_unix ? uv_pipe_init(&loop_, &s->pipe, 0) : uv_tcp_init(&loop_, &s->tcp);
    if (rc != 0) return rc;
    return a->is_unix ? uv_pipe_open(&s->pipe, fd) : uv_tcp_open(&s->tcp, fd);
  });
  if (r != 0) {
    ::close(fd);
    return "listener " + a->info->name + ": " + uv_strerror(r);
  }
  a->handle.get()->handle.data = a.get();
  r = uv_listen(a->handle.stream(), 1024, on_connection);
  if (r != 0) return "listener " + a->info->name + ": " + uv_strerror(r);
  accepts_.push_back(std::move(a));
  return "";
}

// The loop-lag probe: a repeating timer; how late it fires is how long the loop was
// busy with something else (a stall shows up as one late firing).
void Worker::on_probe(uv_timer_t* t) {
  auto* w = static_cast<Worker*>(t->data);
  uint64_t now = uv_hrtime();
  uint64_t period = static_cast<uint64_t>(w->shared_.loop_probe_ms) * 1000000;
  double late_ms = now > w->probe_due_ns_ ? static_cast<double>(now - w->probe_due_ns_) / 1e6 : 0.0;
  w->metrics_.loop_lag.observe_ms(late_ms);
  if (late_ms > w->metrics_.loop_max.lag_ms) w->metrics_.loop_max.lag_ms = late_ms;
  // The next firing is due one period from now (libuv reschedules from the loop's time).
  w->probe_due_ns_ = now + period;
}

// Runs once per loop turn, just before libuv waits for events: the worker thread's CPU time
// since the previous turn is what its callbacks (and the system calls they made) cost. Unlike
// the timer's lateness or a turn's wall time, it leaves out time the thread sat ready without
// a CPU, which on a shared machine is other processes' doing.
void Worker::on_loop_turn(uv_prepare_t* p) {
  auto* w = static_cast<Worker*>(p->data);
  timespec ts{};
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return;
  uint64_t cpu = static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
  if (w->turn_cpu_ns_ != 0) {
    double busy_ms = static_cast<double>(cpu - w->turn_cpu_ns_) / 1e6;
    if (busy_ms > w->metrics_.loop_max.busy_ms) w->metrics_.loop_max.busy_ms = busy_ms;
  }
  w->turn_cpu_ns_ = cpu;
}

void Worker::start() {
  thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

// False once the worker has finished: nothing is left to act on.
bool Worker::post(std::function<void()> fn) { return inbox_.post(std::move(fn)); }

void Worker::add_listener(const BoundListener& l) {
  int fd = ::fcntl(l.fd_for(static_cast<size_t>(index_)), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return;
  auto info = l.info;
  if (!post([this, fd, info] {
        if (stopping_) {
          ::close(fd);
          return;
        }
        open_accept(fd, info);  // on failure the listener simply accepts nowhere on this worker
      }))
    ::close(fd);
}

void Worker::own_listener(int fd, std::shared_ptr<const ListenerInfo> info) {
  if (!post([this, fd, info = std::move(info)] {
        if (stopping_) {
          ::close(fd);
          return;
        }
        open_accept(fd, info);  // closes fd on failure
      }))
    ::close(fd);
}

void Worker::remove_listener(const std::string& name) {
  post([this, name] {
    for (auto it = accepts_.begin(); it != accepts_.end();) {
      if ((*it)->info->name == name)
        it = accepts_.erase(it);  // UvHandle closes our copy
      else
        ++it;
    }
    // Its counters go with it (10,000 short-lived sandboxes must not leave 10,000 entries);
    // connections still open re-add theirs, dropped again as each ends (connection_finished).
    metrics_.listeners.erase(name);
  });
}

bool Worker::snapshot_metrics(std::function<void(const WorkerMetrics&)> done) {
  return post([this, done = std::move(done)] {
    done(metrics_);
    metrics_.loop_max = LoopMax{};
  });
}

uint64_t Worker::ask(const AskRequest& r, std::function<void(const AskAnswer&)> resume, uint64_t* question) {
  if (shared_.asks == nullptr || !shared_.asks->answerable() || stopping_) return 0;
  uint64_t local = next_wait_++;
  waiting_[local] = Waiting{0, std::move(resume)};
  // The broker may answer at once (a remembered answer): still delivered later, on this loop.
  uint64_t broker_ticket = shared_.asks->join(
      r, [this, local](const AskAnswer& a) { post([this, local, a] { deliver_answer(local, a); }); }, question);
  if (auto it = waiting_.find(local); it != waiting_.end()) it->second.broker_ticket = broker_ticket;
  return local;
}

void Worker::cancel_ask(uint64_t ticket, bool timeout) {
  auto it = waiting_.find(ticket);
  if (it == waiting_.end()) return;
  uint64_t broker_ticket = it->second.broker_ticket;
  waiting_.erase(it);
  if (broker_ticket != 0) shared_.asks->leave(broker_ticket, timeout);
}

void Worker::deliver_answer(uint64_t local, const AskAnswer& a) {
  auto it = waiting_.find(local);
  if (it == waiting_.end()) return;  // it stopped waiting meanwhile
  auto resume = std::move(it->second.resume);
  waiting_.erase(it);
  resume(a);
}

void Worker::set_config(std::shared_ptr<const rules::Config> config, std::shared_ptr<rules::WorkerRules> rules) {
  post([this, config = std::move(config), rules = std::move(rules)]() mutable {
    config_ = std::move(config);
    rules_ = std::move(rules);
  });
}

void Worker::stop(int drain_ms) {
  post([this, drain_ms] { begin_stop(drain_ms); });
}

void Worker::on_connection(uv_stream_t* server, int status) {
  auto* a = static_cast<Accept*>(server->data);
  if (status < 0) return;
  a->worker->accept_from(server, a->info, a->is_unix);
}

void Worker::accept_from(uv_stream_t* server, const std::shared_ptr<const ListenerInfo>& info, bool is_unix,
                         TransparentStart* transparent) {
  try {
    auto front = std::make_unique<Front>(*this, info, config_, rules_);
    Front* f = front.get();
    connections_.emplace(f, Entry{OwnedConnection(std::move(front)), info});
    size_t active = shared_.active.fetch_add(1) + 1;
    size_t on_listener = info->active.fetch_add(1) + 1;
    if (!f->accept(server, is_unix)) return;
    metrics_.accepted(info->name);
    // Over a limit: refused in the client's own protocol, once the front has seen which.
    const auto& limits = config_->limits;
    std::string refusal;
    if (active > limits.max_connections) {
      refusal = "sluice: more than " + std::to_string(limits.max_connections) + " connections open; try again later";
    } else if (limits.max_connections_per_listener != 0 && on_listener > limits.max_connections_per_listener) {
      refusal = "sluice: more than " + std::to_string(limits.max_connections_per_listener) +
                " connections open on listener " + info->name + "; try again later";
    }
    if (transparent != nullptr) return f->start_transparent(std::move(*transparent), std::move(refusal));
    f->start(std::move(refusal));
  } catch (...) {
    // Out of memory while accepting: the connection is dropped, the worker lives on.
  }
}

void Worker::adopt_channel(int fd, std::shared_ptr<const ListenerInfo> info) {
  post([this, fd, info = std::move(info)]() mutable {
    if (stopping_) {
      ::close(fd);
      return;
    }
    auto c = std::make_unique<Channel>();
    c->worker = this;
    c->info = std::move(info);
    int r = c->pipe.init([&](uv_pipe_t* p) {
      int rc = uv_pipe_init(&loop_, p, 1);
      return rc != 0 ? rc : uv_pipe_open(p, fd);
    });
    if (r != 0) {
      ::close(fd);
      return;
    }
    c->pipe.get()->data = c.get();
    uv_read_start(
        c->pipe.stream(),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* ch = static_cast<Channel*>(h->data);
          *b = uv_buf_init(ch->buf, sizeof ch->buf);
        },
        on_channel_read);
    channels_.push_back(std::move(c));
  });
}

void Worker::on_channel_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Channel*>(stream->data);
  Worker* w = c->worker;
  auto* pipe = reinterpret_cast<uv_pipe_t*>(stream);
  if (nread > 0) c->in.append(buf->base, static_cast<size_t>(nread));
  // One message per descriptor, which arrives with the message's first byte: a complete
  // message has its descriptor queued. The bridge is inside the jail, so a message that
  // breaks the format, or a descriptor without one, ends the channel; closing it closes
  // every descriptor still queued on it.
  for (;;) {
    ChannelMessage m = parse_channel_message(c->in);
    if (m.status == ChannelMessage::Status::NeedMore) break;
    if (m.status == ChannelMessage::Status::Malformed || uv_pipe_pending_count(pipe) == 0) return w->close_channel(c);
    c->in.erase(0, m.consumed);
    if (uv_pipe_pending_type(pipe) == UV_TCP) {
      w->accept_from(stream, c->info, false, m.status == ChannelMessage::Status::Transparent ? &m.start : nullptr);
      continue;
    }
    // Anything but a TCP socket is not ours to serve: take it and close it.
    auto* other = new uv_pipe_t{};
    uv_pipe_init(&w->loop_, other, 0);
    uv_accept(stream, reinterpret_cast<uv_stream_t*>(other));
    uv_close(reinterpret_cast<uv_handle_t*>(other), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
  }
  // More descriptors than messages begun: not the bridge's protocol.
  if (uv_pipe_pending_count(pipe) > (c->in.empty() ? 0 : 1)) return w->close_channel(c);
  if (nread < 0) w->close_channel(c);  // the bridge is gone
}

void Worker::close_channel(Channel* c) {
  for (auto it = channels_.begin(); it != channels_.end(); ++it) {
    if (it->get() != c) continue;
    channels_.erase(it);  // UvHandle closes the pipe
    return;
  }
}

void Worker::connection_finished(void* c) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  shared_.active.fetch_sub(1);
  std::shared_ptr<const ListenerInfo> listener = std::move(it->second.listener);
  listener->active.fetch_sub(1);
  connections_.erase(it);
  // A removed listener's counters, unless a new listener of that name accepts here now.
  if (listener->removed.load() &&
      std::none_of(accepts_.begin(), accepts_.end(), [&](const auto& a) { return a->info->name == listener->name; }))
    metrics_.listeners.erase(listener->name);
  if (stopping_) maybe_finish();
}

void Worker::hand_over(void* from, OwnedConnection to) {
  auto it = connections_.find(from);
  const bool known = it != connections_.end();
  std::shared_ptr<const ListenerInfo> listener = known ? it->second.listener : nullptr;
  // `it` is not used past the emplace: a rehash there invalidates it.
  void* key = to.get();
  connections_.emplace(key, Entry{std::move(to), std::move(listener)});
  if (known) connections_.erase(from);
}

void Worker::begin_stop(int drain_ms) {
  if (stopping_) return;
  stopping_ = true;
  accepts_.clear();   // stop accepting: closes this worker's listener handles
  channels_.clear();  // and the launcher's channels
  std::vector<void*> all;
  for (auto& [c, _] : connections_) all.push_back(c);
  // drain() may finish a connection at once; only those still there are asked.
  for (void* c : all)
    if (auto it = connections_.find(c); it != connections_.end()) it->second.conn.drain();
  uv_timer_start(
      drain_timer_.get(),
      [](uv_timer_t* t) {
        auto* w = static_cast<Worker*>(t->data);
        std::vector<void*> left;
        for (auto& [c, _] : w->connections_) left.push_back(c);
        for (void* c : left)
          if (auto it = w->connections_.find(c); it != w->connections_.end()) it->second.conn.abort();
      },
      static_cast<uint64_t>(drain_ms), 0);
  maybe_finish();
}

void Worker::maybe_finish() {
  if (!connections_.empty()) return;
  // Nothing left to serve: close our own handles so uv_run returns.
  inbox_.close();
  drain_timer_.close();
  probe_.close();
  turn_probe_.close();
  resolver_.reset();
}

}  // namespace sluice::proxy
