// SessionTimer on a real loop, with a stand-in session: the handle it holds open is counted,
// a released timer is made again only when armed for a wait while the session is open, and
// it fires for the wait it was last armed for.
#include <doctest/doctest.h>

#include <uv.h>

#include "proxy/session_timer.hpp"

using sluice::proxy::SessionTimer;

namespace {

enum class Wait { None, Header, Linger };

struct FakeSession {
  SessionTimer<Wait> timer;
  int open_handles = 0;
  bool closed = false;
  int fired = 0;
  Wait fired_for = Wait::None;
  static void on_timer(uv_timer_t* t) {
    auto* s = static_cast<FakeSession*>(t->data);
    ++s->fired;
    s->fired_for = s->timer.kind();
  }
  static void on_closed(void* data) { --static_cast<FakeSession*>(data)->open_handles; }
};

}  // namespace

TEST_CASE("session timer: counted while open, made again after a release, never once the session is closing") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    FakeSession s;
    s.timer.open(&loop, &s, FakeSession::on_timer, s.open_handles);
    CHECK(s.open_handles == 1);
    s.timer.arm(Wait::Header, 1, s.closed, s.open_handles);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(s.fired == 1);
    CHECK(s.fired_for == Wait::Header);

    s.timer.close(FakeSession::on_closed);  // a tunnel releases it
    CHECK(s.timer.kind() == Wait::None);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(s.open_handles == 0);
    s.timer.arm(Wait::None, 0, s.closed, s.open_handles);  // stopping needs no timer
    CHECK(s.open_handles == 0);
    s.timer.arm(Wait::Linger, 1, s.closed, s.open_handles);  // a wait does
    CHECK(s.open_handles == 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(s.fired == 2);
    CHECK(s.fired_for == Wait::Linger);

    s.timer.arm(Wait::Header, 1, s.closed, s.open_handles);
    s.timer.arm(Wait::None, 0, s.closed, s.open_handles);  // stopped before it fires
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(s.fired == 2);

    s.closed = true;  // the session closes: the handle goes and is not made again
    s.timer.close(FakeSession::on_closed);
    s.timer.arm(Wait::Linger, 1, s.closed, s.open_handles);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(s.open_handles == 0);
    CHECK(s.fired == 2);
  }
  CHECK(uv_loop_close(&loop) == 0);
}
