#pragma once
// The command line of memkv-bench --tier rail: its options, registered on
// the bench's CLI11 app beside the drive tier's, and the run that writes
// the table, JSON, CSV, SVG and Markdown.

#include <string>

#include <CLI/CLI.hpp>

#include "rail_tier.h"

namespace memkv::bench {

class RailCli {
 public:
  // Adds the rail tier's options to `app` (those shared with the drive
  // tier, --runs, --seconds and --json, are the caller's).
  void AddOptions(CLI::App& app);
  // Runs the sweep; the process's exit status.
  int Run(int runs, double seconds, const std::string& json_path, const std::string& command_line);

 private:
  RailTierOptions o_;
  std::string sizes_, threads_ = "1,4", batches_ = "auto", rails_ = "tcp,shm",
                      ops_ = "read,write,mixed", auth_ = "both", servers_, auth_key_;
  std::string server_memory_, verify_ = "all";
  std::string csv_, svg_, markdown_, markdown_drive_, svg_link_, label_;
  bool no_goal_points_ = false;
};

}  // namespace memkv::bench
