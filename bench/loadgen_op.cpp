// One operation's outcome: begun, completed, failed (classified), retried once on a stale
// keep-alive connection, timed out; and the libuv callbacks that lead there.

#include "bench/loadgen_runner.hpp"

namespace sluice::bench::loadgen_detail {

void Runner::begin_op(Slot* s, uint64_t start) {
  s->op_active = true;
  s->op_start = start;
  s->sent_at = now_ns();
  s->in_begin = true;
  s->retried = false;
  started++;
  active++;
  arm_timeout(s);
  if (s->conn && scen == Scenario::HttpForward)
    send_request(s);
  else
    open_conn(s);
  s->in_begin = false;
}

void Runner::end_op(Slot* s) {
  if (!s->op_active) return;
  s->op_active = false;
  active--;
  uv_timer_stop(&s->timer);
}

void Runner::arm_timeout(Slot* s) {
  s->timer_use = Slot::TimerUse::Timeout;
  uv_timer_start(&s->timer, on_slot_timer, static_cast<uint64_t>(o.timeout_ms), 0);
}

// A kept-alive connection the peer closed before answering the request we sent on it: send it
// again on a new connection, once, as HTTP clients do (RFC 9112 9.3.1). Some proxies close
// after each response without saying `Connection: close`.
bool Runner::retry_stale(Slot* s) {
  if (scen != Scenario::HttpForward || s->phase != Slot::Phase::Exchange || !s->op_active || s->retried || !s->conn ||
      s->conn->exchanges == 0 || s->reader.started())
    return false;
  s->retried = true;
  part.retries++;
  open_conn(s);
  return true;
}

void Runner::on_eof(Slot* s) {
  if (s->phase == Slot::Phase::Holding) return held_lost(s, "closed-while-held");
  if (!s->op_active) return close_conn(s);  // an idle keep-alive connection the peer closed
  if (retry_stale(s)) return;
  if (s->phase == Slot::Phase::Exchange) {
    s->reader.on_eof();
    if (s->reader.done()) return complete(s);
  }
  fail(s, ErrorKind::ShortRead);
}

void Runner::on_io_error(Slot* s, int err, Phase phase) {
  if (s->phase == Slot::Phase::Holding)
    return held_lost(s, error_key(classify_uv_error(err, phase), err) + "-while-held");
  if (!s->op_active) return close_conn(s);
  if (classify_uv_error(err, phase) == ErrorKind::Reset && retry_stale(s)) return;
  fail(s, classify_uv_error(err, phase), err);
}

void Runner::held_lost(Slot* s, const std::string& key) {
  part.errors.add_key(key);
  close_conn(s);
  s->phase = Slot::Phase::Done;
  if (held) held--;
}

void Runner::complete(Slot* s) {
  const ResponseReader& rd = s->reader;
  int status = rd.status();
  if (status < 200 || status > 299) {
    bool from_proxy = via_proxy && scen == Scenario::HttpForward;
    return fail(s, from_proxy ? ErrorKind::ProxyStatus : ErrorKind::UpstreamStatus, status);
  }
  if (scen == Scenario::TunnelThroughput) {
    if (o.upload) {
      if (rd.body_text() != std::to_string(o.size) + "\n") return fail(s, ErrorKind::ByteMismatch);
    } else if (rd.body_bytes() != o.size) {
      return fail(s, ErrorKind::ByteMismatch);
    }
  }
  uint64_t now = now_ns();
  part.latency.record(now - s->op_start);
  part.service.record(now - s->sent_at);
  part.ops_ok++;
  if (s->conn) s->conn->exchanges++;
  end_op(s);
  switch (scen) {
    case Scenario::IdleTunnels:
      s->phase = Slot::Phase::Holding;
      held++;
      opening--;
      return open_next();
    case Scenario::HttpForward:
      s->phase = Slot::Phase::Idle;
      if (rd.wants_close()) close_conn(s);
      return after_op(s);
    default:
      s->phase = Slot::Phase::Idle;
      close_conn(s);
      return after_op(s);
  }
}

void Runner::fail(Slot* s, ErrorKind kind, int v) {
  if (!s->op_active) {  // a late error on a connection whose operation already ended
    close_conn(s);
    return;
  }
  part.errors.add(kind, v);
  part.ops_failed++;
  end_op(s);
  close_conn(s);
  s->phase = Slot::Phase::Idle;
  if (scen == Scenario::IdleTunnels) opening--;
  if (s->in_begin) {
    // Failed before reaching the loop (e.g. no free port): continue from the loop, so a run of
    // synchronous failures cannot recurse, and the deadline timer still gets its turn.
    s->timer_use = Slot::TimerUse::Deferred;
    uv_timer_start(&s->timer, on_slot_timer, 0, 0);
    return;
  }
  after_op(s);
}

// The slot is free again: take the next operation, or retire.
void Runner::after_op(Slot* s) {
  if (scen == Scenario::IdleTunnels) {
    s->phase = Slot::Phase::Done;
    return open_next();
  }
  if (stopping) {
    s->phase = Slot::Phase::Done;
    return maybe_finish();
  }
  if (rate > 0) {
    update_scheduled();
    if (dispatched < scheduled)
      begin_op(s, scheduled_at(dispatched++));
    else
      idle.push_back(s);
  } else if (started < budget) {
    begin_op(s, now_ns());
  } else {
    s->phase = Slot::Phase::Done;
  }
  maybe_finish();
}

void Runner::on_timer(Slot* s) {
  if (s->timer_use == Slot::TimerUse::Deferred) return after_op(s);
  if (s->op_active) fail(s, ErrorKind::Timeout);
}

void on_conn_closed(uv_handle_t* h) { delete static_cast<Conn*>(h->data); }

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  Runner* r = static_cast<Conn*>(h->data)->r;
  *buf = uv_buf_init(r->read_buf.data(), static_cast<unsigned>(r->read_buf.size()));
}

void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(stream->data);
  Slot* s = c->slot;
  if (!s) return;
  if (n == UV_EOF) return c->r->on_eof(s);
  if (n < 0) return c->r->on_io_error(s, static_cast<int>(n), Phase::Io);
  if (n > 0) c->r->on_data(s, buf->base, static_cast<size_t>(n));
}

void on_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  Slot* s = c->slot;
  if (!s) return;  // closed while connecting (UV_ECANCELED)
  if (status < 0) return c->r->fail(s, classify_uv_error(status, Phase::Connect), status);
  c->r->on_connected(s);
}

void on_write(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  Conn* c = w->conn;
  size_t upload_len = w->upload_len;
  delete w;
  Slot* s = c->slot;
  if (!s) return;
  if (status < 0) return c->r->on_io_error(s, status, Phase::Io);
  if (upload_len) {
    c->r->part.bytes += upload_len;
    c->r->pump_upload(s);
  }
}

void on_slot_timer(uv_timer_t* t) {
  auto* s = static_cast<Slot*>(t->data);
  s->r->on_timer(s);
}

}  // namespace sluice::bench::loadgen_detail
