// Renders a Result: a short text table for people, or one JSON object (--json) for scripts.
#pragma once
#include <string>

#include "bench/loadgen.hpp"

namespace sluice::bench {

std::string render_text(const Result& r);
std::string render_json(const Result& r);

}  // namespace sluice::bench
