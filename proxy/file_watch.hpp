// Calls back when any of a set of files changes (uv_fs_event). It watches the
// files' directories, not the files: editors and deploy tools replace a file by
// renaming a new one over it, which a watch on the old inode would miss.
// Events are coalesced: one callback `debounce_ms` after the last of a burst.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "proxy/base_aliases.hpp"

namespace sluice::proxy {

class FileWatch {
 public:
  FileWatch(uv_loop_t* loop, std::function<void()> on_change, uint64_t debounce_ms = 100);
  ~FileWatch();
  FileWatch(const FileWatch&) = delete;
  FileWatch& operator=(const FileWatch&) = delete;

  // Replaces the watched set. Returns "" or one line per directory that cannot be watched.
  std::string watch(const std::vector<std::string>& files);
  size_t directories() const { return dirs_.size(); }
  void close();

 private:
  struct Dir {
    FileWatch* owner = nullptr;
    std::string path;
    std::set<std::string> names;
    UvHandle<uv_fs_event_t> handle;
  };
  static void on_event(uv_fs_event_t* h, const char* filename, int events, int status);
  static void on_timer(uv_timer_t* t);

  uv_loop_t* loop_;
  std::function<void()> on_change_;
  uint64_t debounce_ms_;
  UvHandle<uv_timer_t> timer_;
  std::vector<std::unique_ptr<Dir>> dirs_;
};

}  // namespace sluice::proxy
