// Path normalisation for path-scoped entries: one row per trick an agent could try to step out
// of an allowed prefix, and what the origin would make of it.
#include <doctest/doctest.h>

#include <string>

#include "rules/path.hpp"

using sluice::rules::normalize_path;
using sluice::rules::path_has_prefix;

namespace {

struct PathRow {
  const char* raw;
  const char* want;  // nullptr: refused
};

const PathRow kPathRows[] = {
    {"/", "/"},
    {"/a/b", "/a/b"},
    {"/a/b/", "/a/b/"},
    {"/a/./b", "/a/b"},
    {"/a/.", "/a/"},
    {"/a/b/..", "/a/"},
    {"/a/b/../c", "/a/c"},
    {"/myorg/../other/repo", "/other/repo"},
    {"/myorg/%2e%2e/other", "/other"},
    {"/myorg/%2E%2e/other", "/other"},
    {"/myorg/.%2e/other", "/other"},
    {"/myorg/%2e/x", "/myorg/x"},
    {"/%6d%79org/x", "/myorg/x"},  // unreserved escapes decoded: the origin reads "myorg"
    {"/a%7eb", "/a~b"},
    {"/a%3ab", "/a%3Ab"},  // reserved escapes kept, hex upper-cased
    {"/a%20b", "/a%20b"},
    {"/a/b?x=/../y", "/a/b?x=/../y"},  // the query is not a path
    {"/a/../b?q", "/b?q"},
    {"/a/b%2f..", nullptr},  // an encoded slash: origins disagree
    {"/myorg%2f..%2fother", nullptr},
    {"/myorg%2F../other", nullptr},
    {"/myorg/%5c../other", nullptr},
    {"/myorg\\..\\other", nullptr},
    {"//other/x", nullptr},  // empty segments: some origins merge them, some do not
    {"/myorg//x", nullptr},
    {"/..", nullptr},  // above the root
    {"/a/../..", nullptr},
    {"/%2e%2e/x", nullptr},
    {"a/b", nullptr},
    {"", nullptr},
    {"*", nullptr},
    {"/a%00b", nullptr},
    {"/a%zzb", nullptr},
    {"/a%2", nullptr},
    {"/a%", nullptr},
    {"/a\tb", nullptr},
    {"/a#frag", nullptr},
};

}  // namespace

TEST_CASE("normalize_path: each escape trick, row by row") {
  for (const auto& row : kPathRows) {
    CAPTURE(std::string(row.raw));
    auto got = normalize_path(row.raw);
    if (row.want == nullptr) {
      CHECK_FALSE(got.ok());
      if (!got.ok()) CHECK(!got.error().empty());
    } else {
      REQUIRE(got.ok());
      CHECK(got.value() == row.want);
      auto again = normalize_path(got.value());  // idempotent
      REQUIRE(again.ok());
      CHECK(again.value() == got.value());
    }
  }
}

TEST_CASE("path_has_prefix: at segment boundaries only") {
  CHECK(path_has_prefix("/myorg/repo", "/myorg/"));
  CHECK(path_has_prefix("/myorg/", "/myorg/"));
  CHECK_FALSE(path_has_prefix("/myorg", "/myorg/"));
  CHECK(path_has_prefix("/myorg", "/myorg"));
  CHECK(path_has_prefix("/myorg/x", "/myorg"));
  CHECK_FALSE(path_has_prefix("/myorganisation/x", "/myorg"));
  CHECK(path_has_prefix("/myorg?x", "/myorg"));
  CHECK_FALSE(path_has_prefix("/other?/myorg/", "/myorg/"));
  CHECK(path_has_prefix("/anything", "/"));
  // Normalise first, then match: the trick rows never land under the prefix they started in.
  auto escaped = normalize_path("/myorg/%2e%2e/other");
  REQUIRE(escaped.ok());
  CHECK_FALSE(path_has_prefix(escaped.value(), "/myorg/"));
}
