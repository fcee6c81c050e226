// The command line, declared with CLI11: each subcommand declares its options (the help is
// generated from them) and receives the parsed values as Args. Usage errors are one line on
// stderr and exit 2, the same for every subcommand.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace sluice::cli {

// What a subcommand was given, by flag name ("--allow"); values in command-line order.
struct Args {
  std::map<std::string, std::vector<std::string>> values;  // --flag VALUE (repeatable)
  std::set<std::string> switches;                          // --flag with no value
  std::vector<std::string> positional;
  std::vector<std::string> rest;  // after "--" (run, jail-init)

  bool has(const std::string& f) const { return values.count(f) || switches.count(f); }
  const std::vector<std::string>& all(const std::string& f) const {
    static const std::vector<std::string> none;
    auto it = values.find(f);
    return it == values.end() ? none : it->second;
  }
  std::string one(const std::string& f, const std::string& def = "") const {
    auto it = values.find(f);
    return it == values.end() || it->second.empty() ? def : it->second.back();
  }
};

// One subcommand's declarations. Each value option is named by its long flag.
class Command {
 public:
  Command(CLI::App& root, const std::string& name, const std::string& summary);

  // --flag VALUE; `repeatable` keeps every occurrence, else the last one counts.
  Command& value(const std::string& flag, const std::string& type, const std::string& help, bool repeatable = false);
  Command& flag(const std::string& flag, const std::string& help);
  // Words that are not options, in order (COMMAND ARGS, HOST[:PORT], ...).
  Command& positionals(const std::string& name, const std::string& help);
  Command& description(const std::string& text);  // printed under the usage line
  Command& footer(const std::string& text);       // printed after the options
  Command& usage_tail(const std::string& text);   // appended to the usage line ("-- CMD [ARGS...]")
  // Words after "--" become Args::rest instead of positionals.
  Command& takes_rest();
  Command& hidden();

  CLI::App* app() const { return app_; }
  bool splits_rest() const { return rest_; }
  const std::string& tail() const { return tail_; }
  Args args() const;

 private:
  CLI::App* app_;
  std::vector<std::string> positional_;
  bool rest_ = false;
  std::string tail_;
};

// A subcommand: its declarations and what runs it.
struct Subcommand {
  std::shared_ptr<Command> command;
  std::function<int(const Args&)> run;
  int usage_exit = 2;  // the exit status of a usage error
};

// Parses argv (argv[0] the program) against the subcommands and runs the one named.
int run_command_line(CLI::App& root, const std::vector<Subcommand>& subcommands, int argc, char** argv);

}  // namespace sluice::cli
