// sluice: one binary, thin subcommand front ends; the logic lives in the rooms.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.hpp"

namespace {

const char* kUsage =
    "sluice — an egress proxy for sandboxed processes\n"
    "\n"
    "usage: sluice COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  run      run a command in a jail whose only way out is sluice (sluice run --help)\n"
    "  serve    run the proxy daemon (sluice serve --help)\n"
    "  check    validate a config, or ask whether HOST[:PORT] would be allowed\n"
    "  ctl      talk to a running sluice serve: status, metrics, watch, pending, allow, ...\n"
    "  connect  relay stdin/stdout through the proxy to HOST PORT (ssh ProxyCommand)\n"
    "  bench    load generator and built-in upstream (sluice bench --help)\n"
    "\n"
    "options:\n"
    "  -h, --help     show this help\n"
    "  -V, --version  print the version\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "-V" || cmd == "--version") {
    std::printf("sluice %s\n", SLUICE_VERSION);
    return 0;
  }
  if (cmd == "serve") return sluice::cli::serve_main(argc - 1, argv + 1);
  if (cmd == "check") return sluice::cli::check_main(argc - 1, argv + 1);
  if (cmd == "run") return sluice::cli::run_main(argc - 1, argv + 1);
  if (cmd == "connect") return sluice::cli::connect_main(argc - 1, argv + 1);
  if (cmd == "jail-init") return sluice::cli::jail_init_main(argc - 1, argv + 1);
  if (cmd == "bench") return sluice::cli::bench_main(argc - 1, argv + 1);
  if (cmd == "ctl") return sluice::cli::ctl_main(argc - 1, argv + 1);
  std::fprintf(stderr, "sluice: unknown command '%s' (see sluice --help)\n", cmd.c_str());
  return 2;
}
