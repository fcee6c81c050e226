#include "rules/body_replace.hpp"

#include <algorithm>
#include <utility>

namespace sluice::rules {

void BodyReplacer::add(std::string stand_in, std::string secret) {
  if (stand_in.empty() || stand_in.size() != secret.size()) return;
  hold_ = std::max(hold_, stand_in.size() - 1);
  pairs_.push_back({std::move(stand_in), std::move(secret)});
}

std::string BodyReplacer::feed(std::string_view data) {
  bytes_in_ += data.size();
  pending_.append(data);
  std::string out;
  size_t pos = 0;
  // Left to right, the earliest stand-in at each step; a swapped-in secret is never searched again.
  for (;;) {
    size_t best = std::string::npos;
    const Pair* which = nullptr;
    for (const auto& p : pairs_) {
      size_t at = pending_.find(p.stand_in, pos);
      if (at < best) {
        best = at;
        which = &p;
      }
    }
    if (which == nullptr) break;
    out.append(pending_, pos, best - pos);
    out += which->secret;
    pos = best + which->stand_in.size();
    ++replaced_;
  }
  // Keep the tail a stand-in could still start in (never bytes of a secret just swapped in).
  const size_t keep_from = std::max(pos, pending_.size() > hold_ ? pending_.size() - hold_ : size_t{0});
  out.append(pending_, pos, keep_from - pos);
  pending_.erase(0, keep_from);
  return out;
}

std::string BodyReplacer::finish() { return std::exchange(pending_, {}); }

}  // namespace sluice::rules
