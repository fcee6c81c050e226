#include "control/control_server.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "control/control_plane.hpp"
#include "proxy/decision_log.hpp"
#include "proxy/http_message.hpp"
#include "proxy/http_parser.hpp"
#include "proxy/server.hpp"
#include "rules/json_escape.hpp"

namespace sluice::proxy {

namespace {

// Readers dropped for falling behind get this long to take their final note.
constexpr uint64_t kDropGraceMs = 10000;
constexpr uint64_t kSweepMs = 1000;
// Bytes of pipelined requests held while one is handled.
constexpr size_t kMaxPendingInput = 1024 * 1024;

struct WriteReq {
  uv_write_t req;
  std::shared_ptr<const std::string> bytes;
};

}  // namespace

struct ControlServer::Conn : std::enable_shared_from_this<Conn> {
  ControlServer* server = nullptr;
  uint64_t id = 0;
  UvHandle<uv_pipe_t> pipe;
  HttpParser parser{HttpParser::Kind::Request, HttpParser::Limits{65536, 100, 8192}};
  std::string in;
  std::string body;
  bool body_too_large = false;
  bool busy = false;    // a request is being handled
  bool reader = false;  // GET /v1/events
  bool reading = false;
  bool closing = false;
  bool dropped = false;
  uint64_t dropped_at_ms = 0;
  PeerCred peer;
  std::vector<std::string> leases;
  // An event reader's own queue: libuv holds at most one batch of it at a time, so a
  // reader that is dropped gets its final note right after that batch, not behind the rest.
  std::deque<std::shared_ptr<const std::string>> outq;
  size_t outq_bytes = 0;
  bool writing = false;
  char buf[16384];
};

ControlServer::ControlServer(uv_loop_t* loop, ControlPlane& plane) : loop_(loop), plane_(plane) {
  events_wake_.init([&](uv_async_t* a) {
    return uv_async_init(loop_, a, [](uv_async_t* h) { static_cast<ControlServer*>(h->data)->fan_out(); });
  });
  events_wake_.get()->data = this;
  inbox_.open(loop_);
  sweep_timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); });
  sweep_timer_.get()->data = this;
  uv_timer_start(sweep_timer_.get(), [](uv_timer_t* t) { static_cast<ControlServer*>(t->data)->sweep(); }, kSweepMs,
                 kSweepMs);
  uv_async_t* wake = events_wake_.get();
  plane_.server().events().set_wake([wake] { uv_async_send(wake); });
  jobs_thread_ = std::thread([this] { run_jobs(); });
}

ControlServer::~ControlServer() {
  close();
  stop_jobs();
}

void ControlServer::stop_jobs() {
  {
    std::lock_guard lock(jobs_mu_);
    jobs_stop_ = true;
    jobs_.clear();
  }
  jobs_cv_.notify_one();
  if (jobs_thread_.joinable()) jobs_thread_.join();
}

std::string ControlServer::listen(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return "control socket path longer than 107 bytes: " + path;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return "control socket " + path + " exists and is not a socket";
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return "control socket " + path + " is in use by another process";
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("control socket: ") + std::strerror(errno);
  // Mode 0600 from the start: with the umask narrowed, there is no moment in which the
  // socket is open to others (a chmod after bind would leave one).
  mode_t old = ::umask(0177);
  int r = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::umask(old);
  if (r != 0 || ::listen(fd, 64) != 0) {
    std::string err = "control socket: cannot listen on " + path + ": " + std::strerror(errno);
    ::close(fd);
    return err;
  }
  r = listener_.init([&](uv_pipe_t* p) {
    int rc = uv_pipe_init(loop_, p, 0);
    return rc != 0 ? rc : uv_pipe_open(p, fd);
  });
  if (r != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return std::string("control socket: ") + uv_strerror(r);
  }
  listener_.get()->data = this;
  if ((r = uv_listen(listener_.stream(), 64, on_connection)) != 0) {
    listener_.close();
    ::unlink(path.c_str());
    return std::string("control socket: ") + uv_strerror(r);
  }
  path_ = path;
  return "";
}

void ControlServer::close() {
  if (closed_) return;
  closed_ = true;
  plane_.server().events().set_wake(nullptr);
  listener_.close();
  if (!path_.empty()) ::unlink(path_.c_str());
  std::vector<std::shared_ptr<Conn>> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto& c : all) close_conn(c);
  events_wake_.close();
  sweep_timer_.close();
  inbox_.close();
}

void ControlServer::post(std::function<void()> fn) { inbox_.post(std::move(fn)); }

void ControlServer::off_loop(std::function<void()> work, std::function<void()> done) {
  std::lock_guard lock(jobs_mu_);
  jobs_.push_back(Job{std::move(work), std::move(done)});
  jobs_cv_.notify_one();
}

void ControlServer::run_jobs() {
  // SCHED_IDLE: a worker that wakes up takes the core from a list build at once (nice 19 where
  // SCHED_IDLE is refused).
  sched_param none{};
  if (::sched_setscheduler(0, SCHED_IDLE, &none) != 0)
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
  std::unique_lock lock(jobs_mu_);
  for (;;) {
    jobs_cv_.wait(lock, [&] { return jobs_stop_ || !jobs_.empty(); });
    if (jobs_stop_ || jobs_.empty()) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    try {
      job.work();
    } catch (...) {
      // the job reports its own failures in what `done` sees
    }
    post(std::move(job.done));  // dropped if the control loop has closed meanwhile
    lock.lock();
  }
}

void ControlServer::lease(uint64_t conn, const std::string& name) {
  if (auto it = conns_.find(conn); it != conns_.end()) it->second->leases.push_back(name);
}

// ---- connections -----------------------------------------------------------------

void ControlServer::on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  static_cast<ControlServer*>(server->data)->accept_one();
}

void ControlServer::accept_one() {
  auto c = std::make_shared<Conn>();
  c->server = this;
  c->id = next_conn_++;
  if (c->pipe.init([&](uv_pipe_t* p) { return uv_pipe_init(loop_, p, 0); }) != 0) return;
  c->pipe.get()->data = c.get();
  if (uv_accept(listener_.stream(), c->pipe.stream()) != 0) return;  // UvHandle closes it
  uv_os_fd_t fd = -1;
  uv_fileno(c->pipe.handle(), &fd);
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) c->peer = PeerCred{true, cred.pid, cred.uid, cred.gid};
  c->parser.on_body = [raw = c.get()](const char* d, size_t n) {
    if (raw->body_too_large) return;
    if (raw->body.size() + n > kMaxBody) {
      raw->body_too_large = true;
      raw->body.clear();
      return;
    }
    raw->body.append(d, n);
  };
  conns_[c->id] = c;
  read_more(*c);
}

void ControlServer::read_more(Conn& c) {
  bool want = !c.closing && (c.reader || (!c.busy && c.in.size() < kMaxPendingInput));
  if (want == c.reading || !c.pipe.live()) return;
  c.reading = want;
  if (!want) {
    uv_read_stop(c.pipe.stream());
    return;
  }
  uv_read_start(
      c.pipe.stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* b) {
        auto* conn = static_cast<Conn*>(h->data);
        *b = uv_buf_init(conn->buf, sizeof conn->buf);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        auto* raw = static_cast<Conn*>(s->data);
        std::shared_ptr<Conn> c = raw->shared_from_this();
        ControlServer* self = raw->server;
        try {
          if (n < 0) return self->close_conn(c);
          if (n == 0 || c->reader || c->dropped) return;  // a reader's input means nothing: discarded
          c->in.append(c->buf, static_cast<size_t>(n));
          self->process(c, false);
        } catch (...) {
          self->close_conn(c);
        }
      });
}

void ControlServer::process(const std::shared_ptr<Conn>& c, bool kick) {
  while (!c->busy && !c->closing && !c->reader && (kick || !c->in.empty())) {
    kick = false;
    auto r = c->parser.feed(c->in.data(), c->in.size());
    c->in.erase(0, r.consumed);
    switch (r.event) {
      case HttpParser::Event::NeedMore:
        break;
      case HttpParser::Event::Head: {
        const HttpHead& h = c->parser.head();
        if (h.has_content_length && h.content_length > kMaxBody) {
          c->busy = true;
          ControlReply r{413, ApiResult::error(413, "the body is larger than 64 MiB").body.dump()};
          r.close = true;
          return respond(c, std::move(r));
        }
        c->parser.resume();
        kick = true;  // llhttp reports the end of a body-less message only when run again
        break;
      }
      case HttpParser::Event::Done:
        return dispatch(c);
      case HttpParser::Event::Upgrade:
        c->busy = true;
        c->in.clear();
        {
          ControlReply reply{400, ApiResult::error(400, "CONNECT and upgrades are not spoken here").body.dump()};
          reply.close = true;
          return respond(c, std::move(reply));
        }
      case HttpParser::Event::Error: {
        c->busy = true;
        c->in.clear();
        int status = c->parser.error_status();
        if (status < 400 || status > 499) status = 400;
        ControlReply reply{status, ApiResult::error(status, "bad request: " + c->parser.error_message()).body.dump()};
        reply.close = true;
        return respond(c, std::move(reply));
      }
    }
  }
  read_more(*c);
}

void ControlServer::dispatch(const std::shared_ptr<Conn>& c) {
  c->busy = true;
  read_more(*c);
  const HttpHead& h = c->parser.head();
  if (c->body_too_large) {
    c->body_too_large = false;
    return respond(c, ControlReply{413, ApiResult::error(413, "the body is larger than 64 MiB").body.dump()});
  }
  ControlRequest req;
  req.method = h.method;
  std::string target = h.target;
  if (auto q = target.find('?'); q != std::string::npos) {
    req.query = target.substr(q + 1);
    target.resize(q);
  }
  req.path = std::move(target);
  req.body = std::exchange(c->body, {});
  req.peer = c->peer;
  req.conn = c->id;
  std::weak_ptr<Conn> weak = c;
  auto reply = [this, weak](ControlReply r) {
    if (auto conn = weak.lock(); conn && !conn->closing) respond(conn, std::move(r));
  };
  try {
    handle_control_request(*this, req, std::move(reply));
  } catch (...) {
    respond(c, ControlReply{500, ApiResult::error(500, "internal error").body.dump()});
  }
}

void ControlServer::respond(const std::shared_ptr<Conn>& c, ControlReply r) {
  if (c->closing || !c->pipe.live()) return;
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) + "\r\n";
  head += "Content-Type: " + r.content_type + "\r\n";
  if (r.events) {
    head += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
    c->outq.push_back(std::make_shared<const std::string>(std::move(head)));
    pump(c);
    c->reader = true;
    c->busy = false;
    readers_.push_back(c);
    plane_.server().events().add_reader();
    return read_more(*c);  // only to notice the reader leaving
  }
  if (!r.allow.empty()) head += "Allow: " + r.allow + "\r\n";
  r.body += '\n';
  const bool keep_alive = !r.close && c->parser.head().keep_alive;
  head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  head += r.body;
  write(*c, std::make_shared<const std::string>(std::move(head)));
  if (!keep_alive) {
    c->closing = true;
    read_more(*c);
    auto* req = new uv_shutdown_t{};
    req->data = new std::weak_ptr<Conn>(c);
    if (uv_shutdown(req, c->pipe.stream(), [](uv_shutdown_t* q, int) {
          auto* w = static_cast<std::weak_ptr<Conn>*>(q->data);
          if (auto conn = w->lock()) conn->server->close_conn(conn);
          delete w;
          delete q;
        }) != 0) {
      delete static_cast<std::weak_ptr<Conn>*>(req->data);
      delete req;
      close_conn(c);
    }
    return;
  }
  c->busy = false;
  c->parser.resume();
  process(c, false);
}

void ControlServer::write(Conn& c, std::shared_ptr<const std::string> bytes) {
  if (!c.pipe.live() || bytes->empty()) return;
  auto* w = new WriteReq{{}, std::move(bytes)};
  uv_buf_t buf = uv_buf_init(const_cast<char*>(w->bytes->data()), static_cast<unsigned>(w->bytes->size()));
  if (uv_write(&w->req, c.pipe.stream(), &buf, 1, [](uv_write_t* req, int) { delete reinterpret_cast<WriteReq*>(req); }) != 0)
    delete w;
}

void ControlServer::close_conn(const std::shared_ptr<Conn>& c) {
  if (!c->pipe.live() && conns_.count(c->id) == 0) return;
  c->closing = true;
  if (c->reader) {
    c->reader = false;
    plane_.server().events().remove_reader();
  }
  // A sandbox leased by this connection ends with it (sluice run --daemon exited, or died).
  for (const auto& name : std::exchange(c->leases, {})) plane_.remove_sandbox(name);
  conns_.erase(c->id);
  c->pipe.close();  // no callback of this handle runs after this
}

// ---- events ----------------------------------------------------------------------

void ControlServer::fan_out() {
  std::vector<std::string> lines = plane_.server().events().take();
  if (lines.empty()) return;
  size_t total = 0;
  for (const auto& l : lines) total += l.size() + 1;
  auto batch = std::make_shared<std::string>();
  batch->reserve(total);
  for (const auto& l : lines) {
    *batch += l;
    *batch += '\n';
  }
  std::shared_ptr<const std::string> shared = batch;
  std::vector<std::shared_ptr<Conn>> live;
  for (auto& w : readers_)
    if (auto c = w.lock(); c && c->reader && !c->dropped) live.push_back(c);
  for (auto& c : live) {
    if (c->outq_bytes + shared->size() > kReaderMaxQueued) {
      drop_reader(c, "more than " + std::to_string(kReaderMaxQueued) + " bytes of events were waiting for this reader");
      continue;
    }
    c->outq.push_back(shared);
    c->outq_bytes += shared->size();
    pump(c);
  }
}

void ControlServer::pump(const std::shared_ptr<Conn>& c) {
  if (c->writing || c->outq.empty() || !c->pipe.live() || c->closing) return;
  struct ReaderWrite {
    uv_write_t req;
    std::weak_ptr<Conn> conn;
    std::shared_ptr<const std::string> bytes;
  };
  auto* w = new ReaderWrite{{}, c, c->outq.front()};
  c->outq.pop_front();
  c->writing = true;
  uv_buf_t buf = uv_buf_init(const_cast<char*>(w->bytes->data()), static_cast<unsigned>(w->bytes->size()));
  int r = uv_write(&w->req, c->pipe.stream(), &buf, 1, [](uv_write_t* req, int status) {
    auto* rw = reinterpret_cast<ReaderWrite*>(req);
    auto conn = rw->conn.lock();
    size_t n = rw->bytes->size();
    delete rw;
    if (!conn || status == UV_ECANCELED) return;
    ControlServer* self = conn->server;
    conn->writing = false;
    conn->outq_bytes -= std::min(conn->outq_bytes, n);
    if (status < 0) return self->close_conn(conn);
    if (conn->dropped && conn->outq.empty()) return self->close_conn(conn);  // the final note is out
    self->pump(conn);
  });
  if (r != 0) {
    delete w;
    c->writing = false;
    close_conn(c);
  }
}

void ControlServer::drop_reader(const std::shared_ptr<Conn>& c, const std::string& why) {
  c->dropped = true;
  c->dropped_at_ms = uv_now(loop_);
  ++readers_dropped_;
  plane_.server().events().remove_reader();
  c->reader = false;
  std::string note = "{\"ts\":\"" + DecisionLog::now_iso8601() + "\",\"event\":\"dropped\",\"reason\":";
  rules::append_json_string(note, "reader too slow: " + why);
  note += "}\n";
  // What was still queued is dropped with the reader; the note follows the batch in flight.
  c->outq.clear();
  c->outq_bytes = 0;
  c->outq.push_back(std::make_shared<const std::string>(std::move(note)));
  c->outq_bytes = c->outq.back()->size();
  pump(c);
}

void ControlServer::sweep() {
  // A retired 100,000-entry list takes milliseconds to free: the job thread does it, at its
  // low priority, not this loop.
  auto dead = std::make_shared<ControlPlane::Dead>(plane_.take_dead());
  if (!dead->empty())
    off_loop([dead] {
      dead->configs.clear();
      dead->lua.clear();
    }, [] {});
  uint64_t now = uv_now(loop_);
  std::vector<std::shared_ptr<Conn>> expired;
  for (auto it = readers_.begin(); it != readers_.end();) {
    auto c = it->lock();
    if (!c || c->closing) {
      it = readers_.erase(it);
      continue;
    }
    if (c->dropped && now - c->dropped_at_ms >= kDropGraceMs) expired.push_back(c);
    ++it;
  }
  for (auto& c : expired) close_conn(c);
}

}  // namespace sluice::proxy
