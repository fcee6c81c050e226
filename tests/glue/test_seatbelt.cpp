// The macOS profile builder, checked on Linux against the exact expected text.
#include <doctest/doctest.h>

#include "sandbox-glue/seatbelt.hpp"

using namespace sluice::glue;

TEST_CASE("seatbelt profile: deny by default, writes to cwd and tmp, network only to the proxy") {
  SeatbeltSpec spec;
  spec.writable = {"/Users/me/project", "/private/tmp"};
  spec.denied_reads = {"/Users/me/.ssh"};
  spec.denied_writes = {"/Users/me/project/.git/hooks"};
  spec.proxy_port = 43128;
  const std::string expected =
      "(version 1)\n"
      "(deny default)\n"
      "(allow process-exec)\n"
      "(allow process-fork)\n"
      "(allow signal (target same-sandbox))\n"
      "(allow sysctl-read mach-lookup ipc-posix-shm iokit-open)\n"
      "(allow file-read*)\n"
      "(deny file-read* (subpath \"/Users/me/.ssh\"))\n"
      "(allow file-write* (literal \"/dev/null\") (literal \"/dev/tty\") (literal \"/dev/dtracehelper\"))\n"
      "(allow file-write* (subpath \"/Users/me/project\"))\n"
      "(allow file-write* (subpath \"/private/tmp\"))\n"
      "(deny file-write* (subpath \"/Users/me/project/.git/hooks\"))\n"
      "(allow network-outbound (remote tcp \"localhost:43128\"))\n"
      "(deny network-outbound (remote unix-socket))\n";
  CHECK(build_seatbelt_profile(spec) == expected);
}

TEST_CASE("seatbelt profile: paths are quoted, so a hostile path cannot add rules") {
  SeatbeltSpec spec;
  spec.writable = {"/tmp/a\") (allow network*) (\"x"};
  spec.proxy_port = 1;
  std::string p = build_seatbelt_profile(spec);
  CHECK(p.find("(subpath \"/tmp/a\\\") (allow network*) (\\\"x\")") != std::string::npos);
  CHECK(p.find("\n(allow network*)") == std::string::npos);
}
