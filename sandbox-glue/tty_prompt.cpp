#include "sandbox-glue/tty_prompt.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

namespace sluice::glue {

std::string ask_prompt_text(const std::string& sandbox, const std::string& target) {
  return "sluice: " + sandbox + " wants " + target + " \u2014 [o]nce / [a]lways / [d]eny? ";
}

std::string line_start_sequence(int columns) {
  if (columns <= 0) return "\n";
  // From column 0, `columns` spaces end in the last column (no wrap yet); from column k > 0
  // they wrap and end at column k of the next line. The carriage return then goes to the
  // start of that line and the erase clears what the spaces left on it.
  return std::string(static_cast<size_t>(columns), ' ') + "\r\x1b[K";
}

std::unique_ptr<TtyPrompt> TtyPrompt::open(const char* path) {
  int fd = ::open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  if (!::isatty(fd)) {
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<TtyPrompt> t(new TtyPrompt(fd));
  if (::tcgetattr(fd, &t->saved_) != 0) return nullptr;
  return t;
}

TtyPrompt::~TtyPrompt() {
  raw_mode(false);
  ::close(fd_);
}

void TtyPrompt::write_all(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// One key at a time, not echoed. Signals (Ctrl-C) and output processing stay as they were.
void TtyPrompt::raw_mode(bool on) {
  if (on == raw_) return;
  if (on) {
    termios t = saved_;
    t.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (::tcsetattr(fd_, TCSANOW, &t) == 0) raw_ = true;
    return;
  }
  ::tcsetattr(fd_, TCSANOW, &saved_);
  raw_ = false;
}

char TtyPrompt::ask(const std::string& question, std::string_view keys, int cancel_fd,
                    const std::function<bool()>& still_wanted) {
  winsize ws{};
  int columns = ::ioctl(fd_, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
  ::tcgetattr(fd_, &saved_);  // whatever the command left the terminal in is what we restore
  raw_mode(true);             // before the question shows: a key typed at once is not echoed
  write_all(line_start_sequence(columns) + question);
  char answer = 0;
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    int n = ::poll(fds, cancel_fd >= 0 ? 2 : 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (cancel_fd >= 0 && (fds[1].revents & POLLIN) && !still_wanted()) {
      write_all("\r\x1b[K");
      break;
    }
    if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) break;
    if (!(fds[0].revents & POLLIN)) continue;
    char c = 0;
    ssize_t r = ::read(fd_, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (keys.find(lower) != std::string_view::npos) {
      answer = lower;
      break;
    }
  }
  raw_mode(false);
  return answer;
}

void TtyPrompt::settle(const std::string& line) { write_all("\r\x1b[K" + line + "\n"); }

}  // namespace sluice::glue
