#include "sandbox-glue/seatbelt.hpp"

namespace sluice::glue {

namespace {

// Seatbelt strings are double-quoted with backslash escapes.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string build_seatbelt_profile(const SeatbeltSpec& spec) {
  std::string p;
  p += "(version 1)\n";
  p += "(deny default)\n";
  p += "(allow process-exec)\n(allow process-fork)\n(allow signal (target same-sandbox))\n";
  p += "(allow sysctl-read mach-lookup ipc-posix-shm iokit-open)\n";
  p += "(allow file-read*)\n";
  for (const auto& d : spec.denied_reads) p += "(deny file-read* (subpath " + quoted(d) + "))\n";
  p += "(allow file-write* (literal \"/dev/null\") (literal \"/dev/tty\") (literal \"/dev/dtracehelper\"))\n";
  for (const auto& w : spec.writable) p += "(allow file-write* (subpath " + quoted(w) + "))\n";
  for (const auto& d : spec.denied_writes) p += "(deny file-write* (subpath " + quoted(d) + "))\n";
  // The only way out is the proxy on localhost.
  p += "(allow network-outbound (remote tcp \"localhost:" + std::to_string(spec.proxy_port) + "\"))\n";
  p += "(deny network-outbound (remote unix-socket))\n";
  return p;
}

}  // namespace sluice::glue
