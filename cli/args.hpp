// A minimal argument reader for the subcommands: flags with values, repeatable
// flags, and positionals. Errors are one line for the CLI to print.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sluice::cli {

struct Args {
  std::map<std::string, std::vector<std::string>> values;  // --flag VALUE (repeatable)
  std::set<std::string> switches;                          // --flag with no value
  std::vector<std::string> positional;
  std::vector<std::string> rest;  // after "--"
  std::string error;

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

// `with_value`: flags that take a value; `without`: switches. Anything else is an error.
inline Args parse_args(int argc, char** argv, int from, const std::set<std::string>& with_value,
                       const std::set<std::string>& without) {
  Args a;
  for (int i = from; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--") {
      for (++i; i < argc; ++i) a.rest.emplace_back(argv[i]);
      break;
    }
    if (s.size() > 1 && s[0] == '-') {
      std::string value;
      bool inline_value = false;
      if (auto eq = s.find('='); eq != std::string::npos && s.rfind("--", 0) == 0) {
        value = s.substr(eq + 1);
        s = s.substr(0, eq);
        inline_value = true;
      }
      if (with_value.count(s)) {
        if (!inline_value) {
          if (i + 1 >= argc) {
            a.error = s + " needs a value";
            return a;
          }
          value = argv[++i];
        }
        a.values[s].push_back(value);
      } else if (without.count(s) && !inline_value) {
        a.switches.insert(s);
      } else {
        a.error = "unknown option " + s;
        return a;
      }
      continue;
    }
    a.positional.push_back(s);
  }
  return a;
}

}  // namespace sluice::cli
