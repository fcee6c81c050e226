// Builds a Config from command-line flags (--listen, --allow, --deny, ...), so
// quick use needs no file. Shared by `serve` and `check`.
#pragma once
#include <memory>

#include "cli/command_line.hpp"
#include "rules/config.hpp"
#include "rules/result.hpp"

namespace sluice::cli {

rules::Result<std::shared_ptr<rules::Config>> config_from_flags(const Args& a);

}  // namespace sluice::cli
