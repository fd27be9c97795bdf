#include "common/log.h"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/error.h"

namespace memkv {

Status InitLogging(std::string_view level) {
  const spdlog::level::level_enum lvl = spdlog::level::from_str(std::string(level));
  // from_str answers `off` for anything it does not know.
  if (lvl == spdlog::level::off && level != "off") return common::errc::bad_name;
  // Not registered by name, so set-up can run again (tests, re-configuration).
  auto logger = std::make_shared<spdlog::logger>(
      "memkv", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(std::move(logger));
  return {};
}

void LogToStderrUnlessSet() {
  static std::once_flag once;
  std::call_once(once, [] {
    const auto current = spdlog::default_logger();
    if (current && !current->name().empty()) return;  // the program's own
    auto logger = std::make_shared<spdlog::logger>(
        "memkv", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    if (current) logger->set_level(current->level());
    spdlog::set_default_logger(std::move(logger));
  });
}

void LogTaskFailure(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{} failed: {}", what, ex.what());
  } catch (...) {
    spdlog::error("{} failed: an exception that is not a std::exception", what);
  }
}

}  // namespace memkv
