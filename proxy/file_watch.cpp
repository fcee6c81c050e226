#include "proxy/file_watch.hpp"

#include <map>

namespace sluice::proxy {

FileWatch::FileWatch(uv_loop_t* loop, std::function<void()> on_change, uint64_t debounce_ms)
    : loop_(loop), on_change_(std::move(on_change)), debounce_ms_(debounce_ms) {
  timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); });
  timer_.get()->data = this;
}

FileWatch::~FileWatch() { close(); }

void FileWatch::close() {
  dirs_.clear();  // each UvHandle closes its watch
  timer_.close();
}

std::string FileWatch::watch(const std::vector<std::string>& files) {
  std::map<std::string, std::set<std::string>> by_dir;
  for (const auto& f : files) {
    size_t slash = f.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : f.substr(0, slash));
    by_dir[dir].insert(slash == std::string::npos ? f : f.substr(slash + 1));
  }
  dirs_.clear();
  std::string errors;
  for (auto& [path, names] : by_dir) {
    auto d = std::make_unique<Dir>();
    d->owner = this;
    d->path = path;
    d->names = std::move(names);
    int r = d->handle.init([&](uv_fs_event_t* h) { return uv_fs_event_init(loop_, h); });
    if (r == 0) {
      d->handle.get()->data = d.get();
      r = uv_fs_event_start(d->handle.get(), on_event, path.c_str(), 0);
    }
    if (r != 0) {
      errors += (errors.empty() ? "" : "\n") + ("cannot watch " + path + ": " + uv_strerror(r));
      continue;
    }
    dirs_.push_back(std::move(d));
  }
  return errors;
}

void FileWatch::on_event(uv_fs_event_t* h, const char* filename, int, int status) {
  auto* d = static_cast<Dir*>(h->data);
  if (status < 0) return;
  // No name: the kernel could not say which entry changed; assume ours.
  if (filename != nullptr && d->names.count(filename) == 0) return;
  FileWatch* self = d->owner;
  if (self->timer_.live()) uv_timer_start(self->timer_.get(), on_timer, self->debounce_ms_, 0);
}

void FileWatch::on_timer(uv_timer_t* t) {
  auto* self = static_cast<FileWatch*>(t->data);
  try {
    self->on_change_();
  } catch (...) {
    // The callback reports its own failures; the watch goes on.
  }
}

}  // namespace sluice::proxy
