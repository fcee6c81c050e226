#include "cli/command_line.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace sluice::cli {

namespace {

// CLI11's layout with the usage line first (as man pages and `git CMD -h` have it), "usage:" in
// lower case, and a per-command tail on the usage line for what follows "--".
class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter() {
    label("Usage", "usage");
    label("SUBCOMMAND", "COMMAND");
    column_width(26);
  }
  std::map<const CLI::App*, std::string> tails;
  std::map<const CLI::App*, std::string> long_texts;  // a command's own help; its description is the one-line summary

  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string line = CLI::Formatter::make_usage(app, name);
    auto it = tails.find(app);
    if (it != tails.end() && !line.empty() && line.back() == '\n') line.insert(line.size() - 1, " " + it->second);
    return line;
  }
  // A positional is shown by its name alone ("HOST[:PORT]"): the command checks how many it takes.
  std::string make_option_usage(const CLI::Option* opt) const override {
    return opt->get_positional() ? opt->get_name(true, false) : CLI::Formatter::make_option_usage(opt);
  }
  std::string make_option_opts(const CLI::Option* opt) const override {
    return opt->get_positional() ? "" : CLI::Formatter::make_option_opts(opt);
  }
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
    if (mode == CLI::AppFormatMode::Sub) return make_expanded(app);
    std::stringstream out;
    out << make_usage(app, name);
    auto text = long_texts.find(app);
    std::string description = text == long_texts.end() ? app->get_description() : text->second;
    if (!description.empty()) out << "\n" << description << "\n";
    out << make_positionals(app) << make_groups(app, mode) << make_subcommands(app, mode);
    if (!app->get_footer().empty()) out << "\n" << app->get_footer() << "\n";
    return out.str();
  }
};

std::shared_ptr<HelpFormatter> formatter_of(CLI::App& app) {
  auto f = std::dynamic_pointer_cast<HelpFormatter>(app.get_formatter());
  if (!f) {
    f = std::make_shared<HelpFormatter>();
    app.formatter(f);
  }
  return f;
}

// The first word CLI11 left over, as one line: an unknown option or a stray argument.
std::string leftover_error(const std::vector<std::string>& left) {
  const std::string& w = left.front();
  return (w.size() > 1 && w[0] == '-' ? "unknown option " : "unexpected argument ") + w;
}

}  // namespace

Command::Command(CLI::App& root, const std::string& name, const std::string& summary) {
  formatter_of(root);  // subcommands take the root's formatter when they are made
  app_ = root.add_subcommand(name, summary);
  app_->group("commands");
  app_->set_help_flag("-h,--help", "show this help");
  app_->allow_extras();  // reported by run_command_line as one line
  app_->fallthrough(false);
}

Command& Command::value(const std::string& flag, const std::string& type, const std::string& help, bool repeatable) {
  app_->add_option(flag, help)
      ->type_name(type)
      ->multi_option_policy(repeatable ? CLI::MultiOptionPolicy::TakeAll : CLI::MultiOptionPolicy::TakeLast);
  return *this;
}

Command& Command::flag(const std::string& flag, const std::string& help) {
  app_->add_flag(flag, help);
  return *this;
}

Command& Command::positionals(const std::string& name, const std::string& help) {
  app_->add_option(name, positional_, help);
  return *this;
}

Command& Command::description(const std::string& text) {
  formatter_of(*app_)->long_texts[app_] = text;
  return *this;
}

Command& Command::footer(const std::string& text) {
  app_->footer(text);
  return *this;
}

Command& Command::usage_tail(const std::string& text) {
  tail_ = text;
  formatter_of(*app_)->tails[app_] = text;
  return *this;
}

Command& Command::takes_rest() {
  rest_ = true;
  return *this;
}

Command& Command::hidden() {
  app_->group("");
  return *this;
}

Args Command::args() const {
  Args a;
  for (const CLI::Option* opt : app_->get_options()) {
    if (opt->count() == 0 || opt->get_positional() || opt == app_->get_help_ptr()) continue;
    std::string name = opt->get_lnames().empty() ? "-" + opt->get_snames().front() : "--" + opt->get_lnames().front();
    if (opt->get_type_size() == 0)
      a.switches.insert(name);
    else
      a.values[name] = opt->results();
  }
  a.positional = positional_;
  return a;
}

int run_command_line(CLI::App& root, const std::vector<Subcommand>& subcommands, int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty()) {
    std::cerr << root.help();
    return 2;
  }
  if (words[0] == "help") words[0] = "--help";
  const Subcommand* sub = nullptr;
  for (const auto& s : subcommands)
    if (s.command->app()->get_name() == words[0]) sub = &s;
  if (sub == nullptr && words[0][0] != '-') {
    std::fprintf(stderr, "sluice: unknown command '%s' (see sluice --help)\n", words[0].c_str());
    return 2;
  }
  std::vector<std::string> rest;
  if (sub != nullptr && sub->command->splits_rest()) {
    auto dashes = std::find(words.begin() + 1, words.end(), "--");
    if (dashes != words.end()) {
      rest.assign(dashes + 1, words.end());
      words.erase(dashes, words.end());
    }
  }
  const std::string who = sub ? "sluice " + words[0] : "sluice";
  const int usage_exit = sub ? sub->usage_exit : 2;
  auto usage_error = [&](const std::string& message) {
    std::fprintf(stderr, "%s: %s (see %s --help)\n", who.c_str(), message.c_str(), who.c_str());
    return usage_exit;
  };
  root.allow_extras();
  root.require_subcommand(0, 1);  // so a word after the command is never taken for another command
  try {
    std::reverse(words.begin(), words.end());  // CLI11 takes the words last first
    root.parse(words);
  } catch (const CLI::Success& e) {  // --help, --version
    std::cout.flush();
    return root.exit(e, std::cout, std::cerr);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  if (!root.remaining().empty()) return usage_error(leftover_error(root.remaining()));
  if (sub == nullptr) {
    std::cerr << root.help();
    return 2;
  }
  Args a = sub->command->args();
  for (const auto& w : sub->command->app()->remaining()) {
    // Words before "--" of a command that takes one are for its own message ("put CMD after --").
    if (w.size() > 1 && w[0] == '-') return usage_error("unknown option " + w);
    if (!sub->command->splits_rest()) return usage_error("unexpected argument " + w);
    a.positional.push_back(w);
  }
  a.rest = std::move(rest);
  std::cout.flush();
  return sub->run(a);
}

}  // namespace sluice::cli
