// The config loader's value readers: strings, booleans, lists, allow/deny entries, patterns,
// and the error every one of them reports with file:line:column.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "rules/config_loader.hpp"
#include "rules/host.hpp"
#include "rules/text_detail.hpp"

namespace sluice::rules::config_detail {

namespace {
std::string join_methods(const std::vector<std::string>& m) {
  std::string out;
  for (const auto& x : m) out += (out.empty() ? "" : ",") + x;
  return out;
}

constexpr size_t kMaxScriptBytes = 1024 * 1024;
}  // namespace

std::string one_line(const std::string& message) {
  std::string out;
  for (unsigned char c : message) {
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Rule paths are relative to the directory of the config file.
std::string directory_of(const std::string& file) {
  size_t slash = file.rfind('/');
  if (slash == std::string::npos) return "";
  return file.substr(0, slash + 1);
}

// "" on success, else why the file could not be read. Regular files only, and
// at most kMaxScriptBytes: a rule path naming /dev/zero or a FIFO must not hang a load.
std::string read_file(const std::string& path, std::string& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::strerror(errno);
  out.assign(kMaxScriptBytes + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (in.bad()) return std::strerror(errno ? errno : EIO);
  out.resize(static_cast<size_t>(in.gcount()));
  if (out.size() > kMaxScriptBytes) return "larger than 1 MiB";
  return "";
}

void Loader::error(const YAML::Node& at, const std::string& message) {
  const YAML::Mark m = at.Mark();
  errors.push_back({file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, one_line(message)});
}

bool Loader::check_map(const YAML::Node& map, const std::string& what, std::initializer_list<const char*> known,
                       bool any_key) {
  if (!map.IsMap()) {
    error(map, what + " must be a mapping");
    return false;
  }
  std::set<std::string> seen;
  for (const auto& kv : map) {
    std::string key = kv.first.Scalar();
    // yaml-cpp keeps both entries of a repeated key and lookups see only one: refuse it.
    if (!seen.insert(key).second) error(kv.first, "duplicate key '" + key + "' in " + what);
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (any_key) continue;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      error(kv.first, "unknown key '" + key + "' in " + what + " (expected one of: " + list + ")");
    }
  }
  return true;
}

bool Loader::string(const YAML::Node& n, const std::string& what, std::string& out) {
  if (!n.IsScalar()) {
    error(n, what + " must be a string");
    return false;
  }
  out = n.Scalar();
  return true;
}

void Loader::boolean(const YAML::Node& n, const std::string& what, bool& out) {
  if (!n) return;
  if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
    out = n.Scalar() == "true";
    return;
  }
  error(n, what + " must be true or false");
}

std::vector<std::string> Loader::string_list(const YAML::Node& n, const std::string& what,
                                             std::vector<YAML::Node>* nodes) {
  std::vector<std::string> out;
  if (!n) return out;
  if (!n.IsSequence()) {
    error(n, what + " must be a list");
    return out;
  }
  for (const auto& item : n) {
    std::string s;
    if (string(item, what + " entry", s)) {
      out.push_back(s);
      if (nodes) nodes->push_back(item);
    }
  }
  return out;
}

void Loader::entries(const YAML::Node& list, const std::string& what, HostSet& hosts, std::vector<PathEntry>& paths) {
  if (!list) return;
  if (!list.IsSequence()) {
    error(list, what + " must be a list");
    return;
  }
  for (const auto& item : list) {
    if (item.IsMap()) {
      if (!check_map(item, what + " entry", {"host", "path", "methods"})) continue;
      if (!item["host"] || !item["host"].IsScalar()) {
        error(item, what + " entry needs host: PATTERN");
        continue;
      }
      std::string path = item["path"] && item["path"].IsScalar() ? item["path"].Scalar() : "";
      if (item["path"] && !item["path"].IsScalar()) {
        error(item["path"], what + " entry path must be a string like /repos/myorg/");
        continue;
      }
      std::vector<YAML::Node> method_nodes;
      auto methods = string_list(item["methods"], what + " entry methods", &method_nodes);
      if (path.empty() && methods.empty()) {
        error(item, what + " entry needs path: or methods: (a host alone is a plain string entry)");
        continue;
      }
      std::string source = item["host"].Scalar() + path + (methods.empty() ? "" : " [" + join_methods(methods) + "]");
      auto e = make_path_entry(item["host"].Scalar(), path, std::move(methods), std::move(source));
      if (!e)
        error(item, e.error());
      else
        paths.push_back(std::move(e.value()));
      continue;
    }
    if (!item.IsScalar()) {
      error(item, what + " entries must be strings or {host:, path:, methods:} maps");
      continue;
    }
    const std::string text = item.Scalar();
    auto parsed = parse_pattern(text);
    if (parsed) {
      hosts.add(std::move(parsed.value()));
      continue;
    }
    // Not a host pattern; with a '/' after a host it is a path-scoped entry (a CIDR such as
    // 10.0.0.0/8 parsed above as a pattern).
    if (const size_t slash = text.find('/'); slash != std::string::npos && slash > 0 && !cidr_like(text)) {
      if (auto e = parse_path_entry(text)) {
        paths.push_back(std::move(e.value()));
        continue;
      } else if (parse_pattern(text.substr(0, slash))) {
        error(item, e.error());
        continue;
      }
    }
    error(item, parsed.error());
  }
}

// A list of host patterns only (inspect, inspect_exclude).
void Loader::patterns(const YAML::Node& list, const std::string& what, HostSet& hosts) {
  std::vector<YAML::Node> nodes;
  auto texts = string_list(list, what, &nodes);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto parsed = parse_pattern(texts[i]);
    if (!parsed)
      error(nodes[i], what + ": " + parsed.error());
    else
      hosts.add(std::move(parsed.value()));
  }
}

}  // namespace sluice::rules::config_detail
