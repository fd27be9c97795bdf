#pragma once
// Logging set-up: spdlog to stderr. Code logs through spdlog directly.

#include <exception>
#include <string_view>

#include "common/result.h"

namespace memkv {

// Sets the default logger to stderr at `level` (trace, debug, info, warn,
// error, critical, off); any other name is common::errc::bad_name.
Status InitLogging(std::string_view level);

// For a library (the client, inside programs not ours): where the process
// has not set spdlog's default logger (spdlog's own writes to stdout, the
// program's output), one on stderr at the same level takes its place, once.
// A logger the program set is left alone.
void LogToStderrUnlessSet();

// Logs what ended a spawned task (`e` may be null: nothing to say), whatever
// was thrown. Every completion handler of a spawned coroutine calls it, and
// catches everything: an exception that escaped a handler would end its
// loop's thread.
void LogTaskFailure(std::string_view what, std::exception_ptr e);

}  // namespace memkv
