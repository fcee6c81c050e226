// The bubblewrap command line for a JailSpec. Pure: the filesystem is asked
// through a probe, so tests can describe any tree.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "sandbox-glue/jail_spec.hpp"

namespace sluice::glue {

enum class PathKind { Missing, File, Dir };
using PathProbe = std::function<PathKind(const std::string&)>;
PathKind probe_path(const std::string& path);  // the real filesystem (lstat)

struct BwrapPlan {
  std::vector<std::string> argv;  // argv[0] is "bwrap"
  // Host paths bwrap creates as mount points for not-yet-existing write-denied
  // names; the launcher removes them after the run if they are still empty.
  std::vector<std::string> placeholders;
};

// `empty_dir`: an empty directory on the host, bound read-only over denied
// directories that do not exist yet.
BwrapPlan build_bwrap_plan(const JailSpec& spec, const PathProbe& probe, const std::string& empty_dir);

// Shell-quotes one word for --dry-run output.
std::string shell_quote(const std::string& word);

}  // namespace sluice::glue
