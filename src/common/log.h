#pragma once
// Logging set-up: spdlog to stderr. Code logs through spdlog directly.

#include <string_view>

#include "common/result.h"

namespace memkv {

// Sets the default logger to stderr at `level` (trace, debug, info, warn,
// error, critical, off); any other name is common::errc::bad_name.
Status InitLogging(std::string_view level);

}  // namespace memkv
