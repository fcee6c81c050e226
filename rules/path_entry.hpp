// Path-scoped allow and deny entries (issue 14): a host pattern plus a path prefix and/or
// methods, e.g. "github.com/myorg/" or {host: api.github.com, path: /repos/myorg/, methods: [GET]}.
// They decide plain-HTTP requests (and, with TLS inspection, requests inside HTTPS); an opaque
// tunnel cannot show them a path, so a tunnel to a host they decide is refused (needs-inspection).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rules/host.hpp"
#include "rules/host_set.hpp"
#include "rules/result.hpp"

namespace sluice::rules {

struct PathEntry {
  std::shared_ptr<const HostSet> host;  // one pattern (a set, for its matcher)
  std::string path;                     // a normalised prefix (rules/path.hpp); empty: any path
  std::vector<std::string> methods;     // upper case; empty: any method
  std::string source;                   // as written, for "which rule decided"

  bool matches_host(const CanonicalHost& h, uint16_t port) const { return host->match(h, port) != nullptr; }
  // `path` is normalised; `method` as sent (methods are case-sensitive, RFC 9110 9.1).
  bool matches(const CanonicalHost& h, uint16_t port, std::string_view method, std::string_view path) const;
};

// "10.0.0.1/8", "::1/200": an IP literal, '/', digits only: a CIDR (maybe a bad one), never a
// path-scoped entry, so its error is the CIDR's.
bool cidr_like(std::string_view text);
// "host[:port]/path/prefix" (the host part in allow-list syntax). The path is normalised; a
// prefix that needs refusing (rules/path.hpp) is an error.
Result<PathEntry> parse_path_entry(std::string_view text);
// The map form's parts: host pattern, path ("" for any), methods.
Result<PathEntry> make_path_entry(std::string_view host, std::string_view path, std::vector<std::string> methods,
                                  std::string source);

// The first entry of `entries` that matches, or nullptr.
const PathEntry* match_path_entry(const std::vector<PathEntry>& entries, const CanonicalHost& h, uint16_t port,
                                  std::string_view method, std::string_view path);
// The first entry whose host matches (whatever the path), or nullptr.
const PathEntry* match_path_host(const std::vector<PathEntry>& entries, const CanonicalHost& h, uint16_t port);

}  // namespace sluice::rules
