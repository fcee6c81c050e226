// The subcommands: each declares its options on the root command line and says what runs it.
#pragma once
#include "cli/command_line.hpp"

namespace sluice::cli {

Subcommand serve_command(CLI::App& root);
Subcommand check_command(CLI::App& root);
Subcommand run_command(CLI::App& root);
Subcommand jail_init_command(CLI::App& root);  // internal: the jail's init, started by run
Subcommand connect_command(CLI::App& root);
Subcommand bench_command(CLI::App& root);
Subcommand ctl_command(CLI::App& root);
Subcommand ca_command(CLI::App& root);

}  // namespace sluice::cli
