// A blocking HTTP/1.1 client for the control socket (sluice ctl, sluice run
// --daemon). One request at a time on one connection; responses are read with
// the same llhttp wrapper the proxy uses.
#pragma once
#include <functional>
#include <string>

namespace sluice::cli {

struct ControlResponse {
  int status = 0;  // 0: no response (error says why)
  std::string body;
  std::string error;  // transport error, one line
};

// $SLUICE_CONTROL, else /run/sluice/control.sock.
std::string default_control_socket();

class ControlClient {
 public:
  explicit ControlClient(std::string path);
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  // Connects (once); "" or an error line naming the socket.
  std::string connect();
  ControlResponse request(const std::string& method, const std::string& target, const std::string& body = "");
  // GET `target` and pass each body line to `on_line` until the server closes, or
  // `on_line` returns false. "" or an error line.
  std::string stream(const std::string& target, const std::function<bool(const std::string&)>& on_line);
  // Bounds request(): no answer within `ms` (0: wait forever) is an error, and the
  // connection is closed (a late answer must not be read as the next one's).
  void set_timeout_ms(int ms) { timeout_ms_ = ms; }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string send_all(const std::string& bytes);
  std::string path_;
  int fd_ = -1;
  int timeout_ms_ = 0;
};

}  // namespace sluice::cli
