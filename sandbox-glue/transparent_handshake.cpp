#include "sandbox-glue/transparent_handshake.hpp"

#include <sys/socket.h>
#include <unistd.h>

namespace sluice::glue {

std::string transparent_connect_request(std::string_view target, std::string_view original_dst, bool tls_first) {
  std::string out = "CONNECT ";
  out += target;
  out += " HTTP/1.1\r\nHost: ";
  out += target;
  if (!original_dst.empty()) {
    out += "\r\nX-Sluice-Original-Dst: ";
    out += original_dst;
  }
  if (tls_first) out += "\r\nX-Sluice-First-Bytes: tls";
  out += "\r\n\r\n";
  return out;
}

ConnectReply parse_connect_reply(std::string_view bytes) {
  ConnectReply r;
  const size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (bytes.size() > kMaxConnectReply) r.state = ConnectReply::State::Malformed;
    return r;
  }
  if (end + 4 > kMaxConnectReply) {
    r.state = ConnectReply::State::Malformed;
    return r;
  }
  r.header_bytes = end + 4;
  std::string_view line = bytes.substr(0, bytes.find("\r\n"));
  // "HTTP/1.x NNN reason"
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
    r.state = ConnectReply::State::Malformed;
    return r;
  }
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      r.state = ConnectReply::State::Malformed;
      return r;
    }
    status = status * 10 + (line[i] - '0');
  }
  r.status = status;
  if (line.size() > 13) r.reason = std::string(line.substr(13));
  r.state = status == 200 ? ConnectReply::State::Ok : ConnectReply::State::Refused;
  return r;
}

void reset_connection(int fd) {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

}  // namespace sluice::glue
