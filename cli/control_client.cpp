#include "cli/control_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "proxy/http_parser.hpp"

namespace sluice::cli {

std::string default_control_socket() {
  const char* env = std::getenv("SLUICE_CONTROL");
  return env != nullptr && *env != '\0' ? env : "/run/sluice/control.sock";
}

ControlClient::ControlClient(std::string path) : path_(std::move(path)) {}

ControlClient::~ControlClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::string ControlClient::connect() {
  if (fd_ >= 0) return "";
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path_.size() >= sizeof sa.sun_path) return "control socket path too long: " + path_;
  std::memcpy(sa.sun_path, path_.c_str(), path_.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::string err =
        "cannot reach sluice at " + path_ + ": " + std::strerror(errno) +
        (errno == ENOENT || errno == ECONNREFUSED ? " (is sluice serve running with a control socket?)" : "");
    ::close(fd);
    return err;
  }
  fd_ = fd;
  return "";
}

std::string ControlClient::send_all(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::string("writing to ") + path_ + ": " + std::strerror(errno);
    off += static_cast<size_t>(n);
  }
  return "";
}

namespace {

std::string request_head(const std::string& method, const std::string& target, const std::string& body, bool close) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: sluice\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    out += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

}  // namespace

ControlResponse ControlClient::request(const std::string& method, const std::string& target, const std::string& body) {
  ControlResponse out;
  if (std::string err = connect(); !err.empty()) {
    out.error = err;
    return out;
  }
  if (std::string err = send_all(request_head(method, target, body, false) + body); !err.empty()) {
    out.error = err;
    return out;
  }
  proxy::HttpParser parser(proxy::HttpParser::Kind::Response, 1 << 20);
  parser.on_body = [&](const char* d, size_t n) { out.body.append(d, n); };
  std::string data;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  for (;;) {
    if (timeout_ms_ > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      int ready = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) {
        ::close(fd_);
        fd_ = -1;
        out.error = "no answer from " + path_ + " within " + std::to_string(timeout_ms_) + " ms";
        return out;
      }
    }
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    const bool eof = n <= 0;
    if (!eof) data.append(buf, static_cast<size_t>(n));
    bool kick = false;  // llhttp reports a body-less message's end only when run again
    while (kick || !data.empty() || eof) {
      kick = false;
      auto r = data.empty() && eof ? parser.finish() : parser.feed(data.data(), data.size());
      data.erase(0, r.consumed);
      if (r.event == proxy::HttpParser::Event::Head) {
        parser.resume();
        kick = true;
        continue;
      }
      if (r.event == proxy::HttpParser::Event::Done) {
        out.status = parser.head().status;
        parser.resume();
        return out;
      }
      if (r.event == proxy::HttpParser::Event::Error || r.event == proxy::HttpParser::Event::Upgrade) {
        out.error = "bad response from " + path_ + ": " + parser.error_message();
        return out;
      }
      if (eof) {
        out.error = "sluice closed the control connection without a whole response";
        return out;
      }
      break;  // NeedMore
    }
  }
}

std::string ControlClient::stream(const std::string& target, const std::function<bool(const std::string&)>& on_line) {
  if (std::string err = connect(); !err.empty()) return err;
  if (std::string err = send_all(request_head("GET", target, "", true)); !err.empty()) return err;
  proxy::HttpParser parser(proxy::HttpParser::Kind::Response, 1 << 20);
  std::string pending;
  bool stop = false;
  parser.on_body = [&](const char* d, size_t n) {
    if (stop) return;
    pending.append(d, n);
    size_t start = 0;
    for (size_t nl; !stop && (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      stop = !on_line(pending.substr(start, nl - start));
    pending.erase(0, start);
  };
  char buf[65536];
  int status = 0;
  std::string error_body;
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      parser.finish();
      break;
    }
    size_t off = 0;
    while (off < static_cast<size_t>(n) && !stop) {
      auto r = parser.feed(buf + off, static_cast<size_t>(n) - off);
      off += r.consumed;
      if (r.event == proxy::HttpParser::Event::Head) {
        status = parser.head().status;
        parser.resume();
        continue;
      }
      if (r.event == proxy::HttpParser::Event::Done)
        return status == 200 ? "" : "sluice answered " + std::to_string(status);
      if (r.event == proxy::HttpParser::Event::Error)
        return "bad response from " + path_ + ": " + parser.error_message();
      if (r.event == proxy::HttpParser::Event::NeedMore) break;
    }
    if (stop) return "";
  }
  if (status != 200) return "sluice answered " + std::to_string(status) + (pending.empty() ? "" : ": " + pending);
  return "";
}

}  // namespace sluice::cli
