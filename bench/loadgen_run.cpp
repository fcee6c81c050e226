// The runner's life: its loop and timers, the open-loop schedule, the deadline and the grace
// period, and idle-tunnels' opening and holding.
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "bench/loadgen_runner.hpp"

namespace sluice::bench::loadgen_detail {

Runner::Runner(const Options& opts, int conc, uint64_t ops, double r, ssl_ctx_st* ctx)
    : o(opts),
      scen(tunnel_twin(opts.scenario)),
      socks(uses_socks(opts.scenario)),
      via_proxy(!opts.direct),
      concurrency(conc),
      budget(ops),
      rate(r),
      tls_ctx(ctx) {
  part.options = opts;
  const std::string a = o.target.authority();
  if (tls_ctx) {
    tls_verify_name = o.sni.empty() ? o.target.host : o.sni;
    plain_buf.resize(kReadBuf);
  }
  const std::string& name = o.sni.empty() ? o.name : o.sni;
  const std::string host = name.empty() ? a : name + ":" + std::to_string(o.target.port);
  const std::string auth = via_proxy ? proxy_authorization(o.proxy) : "";
  // With --sni the client names the target as a URL would: CONNECT, Host and SNI carry the name.
  connect_req = "CONNECT " + host + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: sluice-bench\r\n" + auth + "\r\n";
  socks_req = socks_connect_request(o.target);
  if (via_proxy && !o.proxy.auth.empty()) socks_user_pass = socks_user_pass_request(o.proxy.auth);
  switch (scen) {
    case Scenario::ConnectStorm: request = "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"; break;
    case Scenario::IdleTunnels: request = "GET / HTTP/1.1\r\nHost: " + a + "\r\n\r\n"; break;
    case Scenario::HttpForward:
      if (tls_ctx)  // inside the TLS tunnel: origin-form, and nothing for the proxy to read
        request = "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
      else
        request = std::string("GET ") + (via_proxy ? "http://" + a + "/" : "/") + " HTTP/1.1\r\nHost: " + a + "\r\n" +
                  auth + "\r\n";
      break;
    case Scenario::TunnelThroughput:
      if (o.upload)
        request = "POST /sink HTTP/1.1\r\nHost: " + a + "\r\nContent-Length: " + std::to_string(o.size) +
                  "\r\nConnection: close\r\n\r\n";
      else
        request = "GET /bytes?n=" + std::to_string(o.size) + (o.upstream_close ? "&close=1" : "") +
                  " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
      break;
    case Scenario::SocksStorm:
    case Scenario::SocksThroughput: break;  // never: `scen` is the CONNECT twin
  }
}

void Runner::run() {
  uv_loop_init(&loop);
  for (uv_timer_t* t : {&deadline, &tick, &grace, &hold}) {
    uv_timer_init(&loop, t);
    t->data = this;
  }
  slots.reserve(static_cast<size_t>(concurrency));
  for (int i = 0; i < concurrency; ++i) {
    auto s = std::make_unique<Slot>();
    s->r = this;
    uv_timer_init(&loop, &s->timer);
    s->timer.data = s.get();
    slots.push_back(std::move(s));
  }
  t0 = now_ns();
  uv_timer_start(
      &deadline, [](uv_timer_t* t) { static_cast<Runner*>(t->data)->on_deadline(); },
      static_cast<uint64_t>(o.duration_s * 1000), 0);
  if (scen == Scenario::IdleTunnels) {
    open_next();
  } else if (rate > 0) {
    period_ns = 1e9 / rate;
    for (auto& s : slots) idle.push_back(s.get());
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // this thread's timers fire on time
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd >= 0 && uv_poll_init(&loop, &tick_poll, tfd) == 0) {
      tick_poll.data = this;
      uv_poll_start(&tick_poll, UV_READABLE, [](uv_poll_t* p, int, int) {
        auto* r = static_cast<Runner*>(p->data);
        uint64_t expirations;
        ssize_t got = ::read(r->tfd, &expirations, sizeof expirations);
        (void)got;
        r->on_tick();
      });
    } else if (tfd >= 0) {
      ::close(tfd);
      tfd = -1;
    }
    on_tick();
    if (tfd < 0)
      uv_timer_start(
          &tick, [](uv_timer_t* t) { static_cast<Runner*>(t->data)->on_tick(); }, 1, 1);
  } else {
    for (auto& s : slots) {
      if (started >= budget) break;
      begin_op(s.get(), now_ns());
    }
    maybe_finish();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (tfd >= 0) ::close(tfd);
  if (t_end == 0) t_end = now_ns();
  part.elapsed_s = static_cast<double>(t_end - t0) / 1e9;
}

uint64_t Runner::scheduled_at(uint64_t index) const {
  return t0 + static_cast<uint64_t>(static_cast<double>(index) * period_ns);
}

// Open loop: operations 0..scheduled-1 are due by now.
void Runner::update_scheduled() {
  if (stopping) return;
  auto due = static_cast<uint64_t>(static_cast<double>(now_ns() - t0) / period_ns) + 1;
  scheduled = std::max(scheduled, std::min(due, budget));
}

void Runner::on_tick() {
  if (stopping || finished) return;
  update_scheduled();
  while (!idle.empty() && dispatched < scheduled) {
    Slot* s = idle.back();
    idle.pop_back();
    begin_op(s, scheduled_at(dispatched++));
  }
  if (tfd >= 0 && scheduled < budget && !finished) {
    uint64_t next = scheduled_at(scheduled);
    itimerspec its{};
    its.it_value.tv_sec = static_cast<time_t>(next / 1'000'000'000);
    its.it_value.tv_nsec = static_cast<long>(next % 1'000'000'000);
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
  }
  maybe_finish();
}

void Runner::on_deadline() {
  if (stopping || finished) return;
  stopping = true;
  uv_timer_stop(&tick);
  if (tfd >= 0) uv_poll_stop(&tick_poll);
  if (rate > 0) {
    part.unsent += scheduled - dispatched;
    scheduled = dispatched;
  }
  if (scen == Scenario::IdleTunnels) {
    abort_active();
    return start_hold();
  }
  if (scen == Scenario::TunnelThroughput || active == 0) {
    t_end = now_ns();
    abort_active();
    return finish();
  }
  t_end = 0;
  uv_timer_start(
      &grace,
      [](uv_timer_t* t) {
        auto* r = static_cast<Runner*>(t->data);
        r->abort_active();
        r->finish();
      },
      std::min<uint64_t>(kMaxGraceMs, static_cast<uint64_t>(o.timeout_ms)), 0);
}

void Runner::maybe_finish() {
  if (finished || active != 0 || scen == Scenario::IdleTunnels) return;
  bool budget_spent = rate > 0 ? dispatched >= budget : started >= budget;
  if (stopping || budget_spent) {
    t_end = now_ns();
    finish();
  }
}

// Ends the run: every handle closes, so uv_run returns.
void Runner::finish() {
  if (finished) return;
  finished = true;
  if (t_end == 0) t_end = now_ns();
  for (uv_timer_t* t : {&deadline, &tick, &grace, &hold}) uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  if (tfd >= 0) uv_close(reinterpret_cast<uv_handle_t*>(&tick_poll), nullptr);
  for (auto& s : slots) {
    close_conn(s.get());
    uv_close(reinterpret_cast<uv_handle_t*>(&s->timer), nullptr);
  }
}

void Runner::abort_active() {
  for (auto& s : slots) {
    if (!s->op_active) continue;
    part.aborted++;
    end_op(s.get());
    close_conn(s.get());
    s->phase = Slot::Phase::Done;
  }
}

void Runner::open_next() {
  while (!stopping && opening < kOpenWindow && next_unopened < slots.size()) {
    Slot* s = slots[next_unopened++].get();
    opening++;
    begin_op(s, now_ns());
  }
  if (opening == 0 && (stopping || next_unopened == slots.size())) start_hold();
}

void Runner::start_hold() {
  if (hold_phase || finished) return;
  hold_phase = true;
  stopping = true;
  uv_timer_stop(&deadline);
  t_end = now_ns();
  uv_timer_start(
      &hold,
      [](uv_timer_t* t) {
        auto* r = static_cast<Runner*>(t->data);
        r->part.tunnels_held = r->held;
        if (!r->o.pids.empty()) r->part.proxy_at_hold = sample_procs(r->o.pids);
        uv_timer_start(
            &r->hold, [](uv_timer_t* t2) { static_cast<Runner*>(t2->data)->finish(); },
            static_cast<uint64_t>(r->o.hold_s * 1000), 0);
      },
      kSettleMs, 0);
}

}  // namespace sluice::bench::loadgen_detail
