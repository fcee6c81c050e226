// The terminal prompt of `sluice run --ask`, on a real pseudo-terminal: the
// question starts a line, keys are read one at a time without echo, the modes
// come back, and a question that goes away is erased.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "sandbox-glue/tty_prompt.hpp"

using namespace sluice::glue;

namespace {

std::string drain(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) return out;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

struct Pty {
  int master = -1, slave = -1;
  char name[128] = {};
  Pty() {
    winsize ws{};
    ws.ws_col = 20;
    ws.ws_row = 5;
    REQUIRE(::openpty(&master, &slave, name, nullptr, &ws) == 0);
  }
  ~Pty() {
    ::close(master);
    ::close(slave);
  }
};

}  // namespace

TEST_CASE("the question text and the line-start sequence") {
  CHECK(ask_prompt_text("sandbox", "api.example.com:443") ==
        "sluice: sandbox wants api.example.com:443 \u2014 [o]nce / [a]lways / [d]eny? ");
  CHECK(line_start_sequence(0) == "\n");
  CHECK(line_start_sequence(4) == "    \r\x1b[K");
}

TEST_CASE("TtyPrompt::open refuses what is not a terminal") {
  CHECK(TtyPrompt::open("/dev/null") == nullptr);
  CHECK(TtyPrompt::open("/nonexistent/tty") == nullptr);
}

TEST_CASE("TtyPrompt::ask reads one of the keys, unechoed, and restores the modes") {
  Pty pty;
  termios before{};
  REQUIRE(::tcgetattr(pty.slave, &before) == 0);
  auto prompt = TtyPrompt::open(pty.name);
  REQUIRE(prompt != nullptr);
  std::thread typist([&] {
    // Wait for the question, then type a key it ignores and one it takes (upper case).
    std::string seen;
    while (seen.find("[d]eny? ") == std::string::npos) seen += drain(pty.master);
    CHECK(seen.rfind(std::string(20, ' ') + "\r\x1b[Ksluice: sb wants x.test:1", 0) == 0);
    (void)!::write(pty.master, "zA", 2);
  });
  char key = prompt->ask(ask_prompt_text("sb", "x.test:1"), "oad", -1, [] { return true; });
  typist.join();
  CHECK(key == 'a');
  termios after{};
  REQUIRE(::tcgetattr(pty.slave, &after) == 0);
  CHECK(after.c_lflag == before.c_lflag);
  prompt->settle("sluice: x.test:1 allowed always");
  std::string out = drain(pty.master);
  CHECK(out.find("zA") == std::string::npos);  // nothing echoed
  CHECK(out.find("\r\x1b[Ksluice: x.test:1 allowed always\r\n") != std::string::npos);
}

TEST_CASE("TtyPrompt::ask gives up, erasing the question, when it is no longer wanted") {
  Pty pty;
  auto prompt = TtyPrompt::open(pty.name);
  REQUIRE(prompt != nullptr);
  int cancel = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::atomic<int> checks{0};
  std::thread canceller([&] {
    std::string seen;
    while (seen.find("q? ") == std::string::npos) seen += drain(pty.master);
    uint64_t one = 1;
    (void)!::write(cancel, &one, sizeof one);  // still wanted the first time
    while (checks < 1) std::this_thread::yield();
    (void)!::write(cancel, &one, sizeof one);
  });
  char key = prompt->ask("q? ", "oad", cancel, [&] {
    uint64_t n;
    (void)!::read(cancel, &n, sizeof n);
    return ++checks < 2;
  });
  canceller.join();
  CHECK(key == 0);
  CHECK(checks == 2);
  CHECK(drain(pty.master).find("\r\x1b[K") != std::string::npos);
  ::close(cancel);
}
