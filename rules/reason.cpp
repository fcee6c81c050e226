#include "rules/reason.hpp"

namespace sluice::rules {

std::optional<Reason> reason_from_string(std::string_view text) {
  for (size_t i = 1; i < kReasonCount; ++i) {
    const auto r = static_cast<Reason>(i);
    if (to_string(r) == text) return r;
  }
  return std::nullopt;
}

}  // namespace sluice::rules
