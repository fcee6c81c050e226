// The state file (remembered `always` answers) is replaced, never edited in
// place: a temporary file in the same directory is written and synced, then
// renamed over the old one, so a crash leaves the old file or the new one, never
// half of either. Saving happens on a writer thread of its own; callers (the
// control loop, the terminal asker) never wait for the disk.
#pragma once
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace sluice::proxy {

// "" or an error line. Creates the file with mode 0600.
std::string write_file_atomically(const std::string& path, const std::string& contents);

class StateFileWriter {
 public:
  // `on_error` runs on the writer thread with a one-line message.
  StateFileWriter(std::string path, std::function<void(const std::string&)> on_error);
  ~StateFileWriter();  // writes what was saved last, then joins
  StateFileWriter(const StateFileWriter&) = delete;
  StateFileWriter& operator=(const StateFileWriter&) = delete;

  // The file should hold `contents`; when saves come faster than the disk, only the last is written.
  void save(std::string contents);
  // Waits until everything saved so far is on disk.
  void flush();
  const std::string& path() const { return path_; }

 private:
  void run();
  std::string path_;
  std::function<void(const std::string&)> on_error_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable written_;
  std::optional<std::string> next_;
  bool writing_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice::proxy
