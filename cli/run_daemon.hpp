// `sluice run --daemon`: the launcher prints this jail's denials on its stderr, as
// the embedded proxy does, by reading the daemon's event stream for its listener.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cli/control_client.hpp"

namespace sluice::cli {

class DenialWatcher {
 public:
  DenialWatcher(std::string socket, std::string listener);
  ~DenialWatcher();
  DenialWatcher(const DenialWatcher&) = delete;
  DenialWatcher& operator=(const DenialWatcher&) = delete;

  // Connects (here, so no event after this call is missed) and starts reading. "" or an error.
  std::string start();
  // After the sandbox was deleted: waits (up to 2 s) for the daemon's "sandbox removed"
  // event, which follows every decision of the jail, then stops reading.
  void stop();

 private:
  ControlClient client_;
  std::string listener_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool removed_ = false;
  std::thread thread_;
};

// The line `sluice run` prints for a denial in the decision-log / event line `e` (JSON text), or "".
std::string denial_line(const std::string& event_json, const std::string& listener);

}  // namespace sluice::cli
