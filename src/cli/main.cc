// memkv: the command-line entry point. Each subcommand group lives in its own
// file and registers itself here; main owns every thread the server runs.

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/version.h"
#include "common/log.h"

// jemalloc (the allocator memkv links) reads this at start-up; MALLOC_CONF
// still applies on top. By default jemalloc gives allocations of 8 MiB and
// more an arena that returns their pages to the kernel as soon as they are
// freed, and a batch's payload or inline reply is about that size: every
// request then faulted its buffer's pages in again and had the kernel zero
// them (about half the time of a 1 MiB tcp read, measured with perf).
// Threshold 0 keeps large buffers in the ordinary arenas, whose freed pages
// are reused and returned only after the usual decay.
extern "C" {
[[gnu::used]] const char* malloc_conf = "oversize_threshold:0";
}

namespace memkv::cli {

std::string VersionLine() {
  std::string line = "memkv " MEMKV_VERSION;
  const std::string rev = GitRevision();
  if (!rev.empty()) line += " (rev " + rev + ")";
  return line;
}

}  // namespace memkv::cli

int main(int argc, char** argv) {
  CLI::App app{"memkv: a fast, crash-safe store for the KV cache of LLM inference engines"};
  app.set_version_flag("--version", memkv::cli::VersionLine(), "Print the version and exit");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.require_subcommand(0, 1);
  int exit_code = 0;
  memkv::cli::AddServerCommand(app, exit_code);
  memkv::cli::AddDriveCommands(app, exit_code);
  memkv::cli::AddSetupCommand(app, exit_code);
  memkv::cli::AddKvCommands(app, exit_code);
  memkv::cli::AddAdminCommands(app, exit_code);
  memkv::cli::AddDocCommand(app, exit_code);

  // Logging is set up before any subcommand's callback runs.
  app.parse_complete_callback([&] {
    if (!memkv::InitLogging(log_level)) {
      std::fprintf(stderr, "memkv: --log-level: '%s' is not a log level\n", log_level.c_str());
      std::exit(2);
    }
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  return exit_code;
}
