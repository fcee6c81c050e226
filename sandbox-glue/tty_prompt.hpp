// `sluice run --ask` asks its questions on the terminal itself: /dev/tty, never
// stdin or stdout, which belong to the jailed command. A question starts on a
// line of its own (without adding a blank line when the command's output ended
// with a newline), the answer is one key read with echo off, and the terminal's
// modes are put back as they were right after.
#pragma once
#include <termios.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::glue {

// "sluice: sandbox wants api.example.com:443 — [o]nce / [a]lways / [d]eny? "
std::string ask_prompt_text(const std::string& sandbox, const std::string& target);

// Bytes that bring the cursor to the start of a line of its own, for a terminal `columns`
// wide: if the cursor is at column 0 they leave it there (on the same line); if not, they
// move it to the start of the next line. (Spaces that fill the line wrap only when the
// cursor was not at column 0; then a carriage return and an erase.) 0 columns: a newline.
std::string line_start_sequence(int columns);

class TtyPrompt {
 public:
  // The controlling terminal, or null when there is none (or `path` is not a terminal).
  static std::unique_ptr<TtyPrompt> open(const char* path = "/dev/tty");
  ~TtyPrompt();
  TtyPrompt(const TtyPrompt&) = delete;
  TtyPrompt& operator=(const TtyPrompt&) = delete;

  // Shows `question` on a line of its own and waits for one of `keys` (either case).
  // Returns the key (lower case), or 0 when the terminal went away, or when `cancel_fd`
  // became readable and `still_wanted()` said no (the prompt is then erased).
  char ask(const std::string& question, std::string_view keys, int cancel_fd,
           const std::function<bool()>& still_wanted);
  // Replaces the prompt line with `line` and ends it.
  void settle(const std::string& line);

 private:
  explicit TtyPrompt(int fd) : fd_(fd) {}
  void write_all(const std::string& s);
  void raw_mode(bool on);
  int fd_;
  termios saved_{};
  bool raw_ = false;
};

}  // namespace sluice::glue
