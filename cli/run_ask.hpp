// `sluice run --ask`: the thread that puts pending questions to the user on the
// terminal, one at a time, and answers them through the control plane.
#pragma once
#include <atomic>
#include <memory>
#include <thread>

#include "control/control_plane.hpp"
#include "proxy/ask.hpp"
#include "proxy/server.hpp"
#include "sandbox-glue/tty_prompt.hpp"

namespace sluice::cli {

class TerminalAsker {
 public:
  TerminalAsker(proxy::AskBroker& broker, proxy::ControlPlane& plane, std::unique_ptr<glue::TtyPrompt> tty);
  ~TerminalAsker();
  TerminalAsker(const TerminalAsker&) = delete;
  TerminalAsker& operator=(const TerminalAsker&) = delete;

  void start();
  // Ends the thread (an open prompt is erased and the terminal restored).
  void stop();

 private:
  void run();
  void wake();
  proxy::AskBroker& broker_;
  proxy::ControlPlane& plane_;
  std::unique_ptr<glue::TtyPrompt> tty_;
  int wake_fd_ = -1;  // an eventfd: the pending questions changed, or stop()
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The embedded proxy's control plane in `sluice run`: the state file's remembered answers
// and, with --ask on a terminal, the terminal asker. Without a terminal (or without
// --ask) nobody can be asked, so an Ask verdict is a denial at once.
class RunAsking {
 public:
  // After server.start(). `state_path` may be empty (no state file). "" or an error line.
  std::string start(proxy::Server& server, const std::string& state_path, bool ask);
  // Before server.stop(): the asker first (its prompt erased); after it: the plane.
  void stop_asking();
  void stop();

 private:
  std::unique_ptr<proxy::ControlPlane> plane_;
  std::unique_ptr<TerminalAsker> asker_;
};

// Where `always` answers of `sluice run --ask` live unless --state says otherwise:
// $XDG_STATE_HOME/sluice/run-state.json, else ~/.local/state/sluice/run-state.json.
// Missing directories are made (mode 0700). Empty when there is no home.
std::string default_state_file();

}  // namespace sluice::cli
