#include "cli/run_ask.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace sluice::cli {

namespace {

std::string target_of(const proxy::Question& q) {
  std::string host = q.host.find(':') != std::string::npos ? "[" + q.host + "]" : q.host;
  return host + ":" + std::to_string(q.port);
}

}  // namespace

TerminalAsker::TerminalAsker(proxy::AskBroker& broker, proxy::ControlPlane& plane, std::unique_ptr<glue::TtyPrompt> tty)
    : broker_(broker), plane_(plane), tty_(std::move(tty)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

TerminalAsker::~TerminalAsker() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void TerminalAsker::wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void TerminalAsker::start() {
  broker_.on_pending_changed([this] { wake(); });
  thread_ = std::thread([this] { run(); });
}

void TerminalAsker::stop() {
  if (!thread_.joinable()) return;
  broker_.on_pending_changed(nullptr);
  stopping_ = true;
  wake();
  thread_.join();
}

void TerminalAsker::run() {
  auto drain = [this] {
    uint64_t n;
    while (::read(wake_fd_, &n, sizeof n) == sizeof n) {
    }
  };
  while (!stopping_) {
    auto pending = broker_.pending();
    if (pending.empty()) {
      pollfd p{wake_fd_, POLLIN, 0};
      if (::poll(&p, 1, -1) < 0 && errno != EINTR) return;
      drain();
      continue;
    }
    const proxy::Question q = pending.front();  // the oldest first
    const std::string sandbox = q.listeners.empty() ? "sandbox" : q.listeners.front();
    char key = tty_->ask(glue::ask_prompt_text(sandbox, target_of(q)), "oad", wake_fd_, [&] {
      drain();
      return !stopping_ && broker_.find(q.id).has_value();
    });
    if (key == 0) {
      if (stopping_) return;
      if (!broker_.find(q.id)) {
        tty_->settle("sluice: " + target_of(q) + " was not answered in time: denied");
        continue;
      }
      return;  // the terminal went away: the remaining questions time out
    }
    rules::Action action = key == 'd' ? rules::Action::Deny : rules::Action::Allow;
    rules::Remember remember = key == 'a' ? rules::Remember::Always : rules::Remember::Once;
    proxy::ApiResult r = plane_.answer(q.id, action, remember, "terminal");
    if (r.status != 200) {
      tty_->settle("sluice: " + target_of(q) + " was not answered in time: denied");
      continue;
    }
    const char* how = key == 'a' ? "allowed always" : key == 'o' ? "allowed once" : "denied";
    tty_->settle("sluice: " + target_of(q) + " " + how);
  }
}

std::string RunAsking::start(proxy::Server& server, const std::string& state_path, bool ask) {
  plane_ =
      std::make_unique<proxy::ControlPlane>(server, proxy::ControlPlane::Options{"", state_path, "", SLUICE_VERSION});
  if (std::string err = plane_->start(); !err.empty()) return err;
  if (!ask) return "";
  auto tty = glue::TtyPrompt::open();
  if (!tty) return "";  // no terminal: asking means denying
  server.asks().set_answerable(true);
  asker_ = std::make_unique<TerminalAsker>(server.asks(), *plane_, std::move(tty));
  asker_->start();
  return "";
}

void RunAsking::stop_asking() {
  if (asker_) asker_->stop();
}

void RunAsking::stop() {
  stop_asking();
  if (plane_) plane_->stop();
}

std::string default_state_file() {
  std::string base;
  const char* xdg = std::getenv("XDG_STATE_HOME");
  const char* home = std::getenv("HOME");
  if (xdg != nullptr && *xdg == '/')
    base = xdg;
  else if (home != nullptr && *home == '/')
    base = std::string(home) + "/.local/state";
  else
    return "";
  std::string dir = base + "/sluice";
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0700);
  return dir + "/run-state.json";
}

}  // namespace sluice::cli
