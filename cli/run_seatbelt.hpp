// `sluice run`'s macOS path: the embedded proxy on a localhost TCP port and CMD
// under `sandbox-exec -p PROFILE`. Plain POSIX, so it also runs on Linux (`--jail
// seatbelt`), where the tests exercise it with a stand-in sandbox-exec.
#pragma once
#include <memory>
#include <string>

#include "rules/config.hpp"
#include "sandbox-glue/jail_spec.hpp"

namespace sluice::cli {

struct SeatbeltRun {
  std::shared_ptr<rules::Config> config;  // policies, resolver, limits; no listeners yet
  std::string policy;                     // the policy the jail's listener uses
  glue::JailSpec spec;                    // command, cwd, home, writable, denied reads/writes
  bool quiet = false;
  bool dry_run = false;
  int workers = 1;
  bool ask = false;        // --ask: questions on the terminal
  std::string state_path;  // remembered `always` answers; empty: none
};

// The first executable `name` in $PATH (/usr/bin:/bin when unset), or "".
std::string find_in_path(const std::string& name);

// Returns the exit status `sluice run` exits with.
int run_seatbelt(SeatbeltRun run);

}  // namespace sluice::cli
