// sluice: one binary, thin subcommand front ends; the logic lives in the rooms.
#include <sys/prctl.h>

#include "cli/command_line.hpp"
#include "cli/commands.hpp"

int main(int argc, char** argv) {
  using namespace sluice::cli;
  // sluice holds CA keys, real credentials and parent-proxy passwords in memory: no core
  // file may carry them, and no other process of this user (a jailed one included) may
  // ptrace this one or read its /proc/PID/mem. Programs it starts get dumpable back at exec.
  prctl(PR_SET_DUMPABLE, 0);
  CLI::App root{"", "sluice"};
  root.description("sluice — an egress proxy for sandboxed processes");
  root.set_version_flag("-V,--version", "sluice " SLUICE_VERSION " (commit " SLUICE_GIT_COMMIT ")",
                        "print the version and the commit it was built from");
  root.set_help_flag("-h,--help", "show this help (sluice COMMAND --help: that command's)");
  std::vector<Subcommand> commands = {run_command(root), serve_command(root),    check_command(root),
                                      ctl_command(root), connect_command(root),  bench_command(root),
                                      ca_command(root),  jail_init_command(root)};
  return run_command_line(root, commands, argc, argv);
}
