// macOS: a sandbox-exec (seatbelt) profile for the jailed command. Pure text
// building, unit-tested on Linux; see docs/sandbox.md for what ran on a Mac.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::glue {

struct SeatbeltSpec {
  std::vector<std::string> writable;       // cwd, tmp dirs, --write paths
  std::vector<std::string> denied_reads;   // absolute paths
  std::vector<std::string> denied_writes;  // absolute paths inside writable dirs
  uint16_t proxy_port = 0;                 // the embedded proxy on localhost
};

std::string build_seatbelt_profile(const SeatbeltSpec& spec);

}  // namespace sluice::glue
