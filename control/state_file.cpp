#include "control/state_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::proxy {

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string sys(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

std::string write_file_atomically(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sys("cannot write " + tmp);
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = sys("cannot write " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string err = sys("cannot sync " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = sys("cannot rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return err;
  }
  // The rename itself is durable only once the directory is synced.
  int dir = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return "";
}

StateFileWriter::StateFileWriter(std::string path, std::function<void(const std::string&)> on_error)
    : path_(std::move(path)), on_error_(std::move(on_error)) {
  thread_ = std::thread([this] { run(); });
}

StateFileWriter::~StateFileWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void StateFileWriter::save(std::string contents) {
  {
    std::lock_guard lock(mu_);
    next_ = std::move(contents);
  }
  cv_.notify_one();
}

void StateFileWriter::flush() {
  std::unique_lock lock(mu_);
  written_.wait(lock, [&] { return !next_ && !writing_; });
}

void StateFileWriter::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || next_; });
    if (!next_) return;  // stopping, and everything is written
    std::string contents = std::move(*next_);
    next_.reset();
    writing_ = true;
    lock.unlock();
    std::string err = write_file_atomically(path_, contents);
    if (!err.empty() && on_error_) on_error_(err);
    lock.lock();
    writing_ = false;
    written_.notify_all();
  }
}

}  // namespace sluice::proxy
