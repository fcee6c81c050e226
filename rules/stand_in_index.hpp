// Every stand-in the daemon issued, to every sandbox, searchable in one pass (docs/credentials.md).
// Adding or removing a sandbox's stand-ins costs only their own entries.
// A connection's own stand-ins are its listener's; this index answers the other question:
// does a request carry a stand-in issued to some sandbox at all? One found on a listener other
// than its sandbox's is misuse. The cost of a search does not grow with the number of stand-ins:
// each is keyed by its last kKey bytes (random letters and digits), and a text is probed once per
// position inside a run of letters and digits.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::rules {

struct IssuedStandIn {
  std::string sandbox;     // the listener it is honoured on
  std::string credential;  // the credential's name (never the secret)
  std::string value;
};

class StandInIndex {
 public:
  static constexpr size_t kKey = 16;

  void add(IssuedStandIn s);
  // Removes the entry for `value` issued to `sandbox`; false when there is none.
  bool remove(const std::string& sandbox, const std::string& value);
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // The first stand-in issued to a sandbox other than `except` that occurs in `text`, or null.
  // The pointer is good until the index changes.
  const IssuedStandIn* find(std::string_view text, std::string_view except = {}) const;
  // In a header value, also inside HTTP Basic credentials.
  const IssuedStandIn* find_header(std::string_view value, std::string_view except = {}) const;
  // In raw bytes (a tunnel's first bytes), also inside any "Basic BASE64" among them.
  const IssuedStandIn* find_bytes(std::string_view bytes, std::string_view except = {}) const;

 private:
  std::unordered_map<std::string, std::vector<IssuedStandIn>> by_tail_;  // last kKey bytes -> entries
  std::vector<IssuedStandIn> others_;  // values without kKey letters and digits at the end (none of make_stand_in's)
  size_t size_ = 0;
};

}  // namespace sluice::rules
