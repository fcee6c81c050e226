#include "rules/path_entry.hpp"

#include "rules/ip.hpp"
#include "rules/path.hpp"
#include "rules/pattern.hpp"

namespace sluice::rules {

bool PathEntry::matches(const CanonicalHost& h, uint16_t port, std::string_view method, std::string_view p) const {
  if (!matches_host(h, port)) return false;
  if (!methods.empty()) {
    bool any = false;
    for (const auto& m : methods) any = any || m == method;
    if (!any) return false;
  }
  return path.empty() || path_has_prefix(p, path);
}

Result<PathEntry> make_path_entry(std::string_view host, std::string_view path, std::vector<std::string> methods,
                                  std::string source) {
  auto pattern = parse_pattern(host);
  if (!pattern) return Err{pattern.error()};
  PathEntry e;
  auto set = std::make_shared<HostSet>();
  set->add(std::move(pattern.value()));
  e.host = std::move(set);
  if (!path.empty()) {
    if (path.find('?') != std::string_view::npos) return Err{"a path entry's prefix has no query: '" + source + "'"};
    auto norm = normalize_path(path);
    if (!norm) return Err{"path '" + std::string(path) + "': " + norm.error()};
    e.path = std::move(norm.value());
  }
  for (auto& m : methods) {
    if (m.empty()) return Err{"an empty method in '" + source + "'"};
    for (char& c : m) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
        return Err{"method '" + m + "' is not an HTTP method token"};
    }
  }
  e.methods = std::move(methods);
  e.source = std::move(source);
  return e;
}

bool cidr_like(std::string_view text) {
  const size_t slash = text.rfind('/');
  if (slash == std::string_view::npos || slash + 1 == text.size()) return false;
  for (char c : text.substr(slash + 1))
    if (c < '0' || c > '9') return false;
  return IpAddr::parse(text.substr(0, slash)).has_value();
}

Result<PathEntry> parse_path_entry(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) return Err{"'" + std::string(text) + "' is no host/path entry"};
  return make_path_entry(text.substr(0, slash), text.substr(slash), {}, std::string(text));
}

const PathEntry* match_path_entry(const std::vector<PathEntry>& entries, const CanonicalHost& h, uint16_t port,
                                  std::string_view method, std::string_view path) {
  for (const auto& e : entries)
    if (e.matches(h, port, method, path)) return &e;
  return nullptr;
}

const PathEntry* match_path_host(const std::vector<PathEntry>& entries, const CanonicalHost& h, uint16_t port) {
  for (const auto& e : entries)
    if (e.matches_host(h, port)) return &e;
  return nullptr;
}

}  // namespace sluice::rules
