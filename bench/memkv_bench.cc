// memkv-bench: measures memkv against the hardware under it and against
// known baselines. --tier drive sets the store's drive tier beside fio on
// the same file system (drive_tier.h); --tier rail sweeps the data rails of
// a real server, with memcpy, iperf3 and Redis beside it under --baseline
// (rail_tier.h, rail_cli.h). A table goes to stdout, progress to stderr and,
// with --json FILE, the results to FILE.
//
//   memkv-bench --tier drive [--dir ./var/bench] [--size "1 GiB"] [--runs 3]
//               [--seconds 5] [--qd 32] [--reopen-keys 1000000] [--json FILE]
//   memkv-bench --tier rail [--sizes 4K,...,16M] [--threads 1,4] [--batch auto]
//               [--rails tcp,shm] [--ops read,write,mixed] [--auth both]
//               [--baseline] [--runs 3] [--seconds 2] [--json F] [--csv F]
//               [--svg F] [--markdown F]
//   memkv-bench --tier fan-in [--minutes 10 | --seconds 60] [--processes 8]
//               [--workers 2] [--worker-batches 3] [--entries 7500]
//               [--min-value 64] [--max-value 16384] [--fan-in-servers H:P,...]

#include <cstdio>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/json/serialize.hpp>

#include "common/log.h"
#include "common/size.h"
#include "drive_tier.h"
#include "fan_in.h"
#include "rail_cli.h"
#include "report.h"

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "memkv-bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace memkv;
  CLI::App app{"memkv-bench: memkv measured against the hardware it runs on"};
  app.set_version_flag("--version", std::string(MEMKV_BENCH_VERSION));
  bench::DriveTierOptions o;
  std::string tier, size_text = "1 GiB", memory_text = "8 MiB", small_set_text = "256 MiB";
  std::string json_path, log_level = "warn", workloads;
  bool no_fio = false;
  double seconds = 0;
  app.add_option("--tier", tier,
                 "What to measure: drive (the store's drive tier against fio) or rail (the "
                 "data rails of a server, against memcpy, iperf3 and Redis) or fan-in (client "
                 "processes with rotating threads against one server, checked byte by byte)")
      ->required()
      ->check(CLI::IsMember({"drive", "rail", "fan-in"}));
  app.add_option("--dir", o.dir, "Directory for fio's file and memkv's drive (sparse files)")
      ->capture_default_str();
  app.add_option("--size", size_text, "Size of each of the two files, e.g. \"4 GiB\"")
      ->capture_default_str();
  app.add_option("--runs", o.runs, "Runs per side and workload (interleaved fio, memkv, ...)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--seconds", seconds, "Length of each run (default: 5 for drive, 2 for rail)")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--qd", o.qd, "Queue depth: fio's iodepth, memkv's concurrent operations")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--memory", memory_text,
                 "memory.max_size of the store: small, so its DRAM cache cannot hold the reads")
      ->capture_default_str();
  app.add_option("--small-set", small_set_text, "Bytes of 4 KiB values workload (b) reads")
      ->capture_default_str();
  app.add_option("--reopen-keys", o.reopen_keys,
                 "Keys (1-byte values) for the reopen timing; 0 skips it")
      ->capture_default_str();
  app.add_option("--replay-keys", o.replay_keys,
                 "Puts after the last Close that the reopen after a drop replays")
      ->capture_default_str();
  app.add_option("--workloads", workloads,
                 "Comma-separated subset of read-1m,read-4k,write-1m,reopen (default: all)");
  app.add_flag("--no-fio", no_fio, "Measure memkv alone");
  app.add_option("--io-backend", o.io_backend,
                 "drive: the store's I/O backend, as server.io_backend (auto, io_uring, threads)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "io_uring", "threads"}));
  app.add_flag("--keep", o.keep, "Keep the files in --dir afterwards");
  app.add_option("--json", json_path, "Also write the results as JSON to this file");
  app.add_option("--log-level", log_level, "Level of the store's log lines on stderr")
      ->capture_default_str();
  bench::RailCli rail;
  rail.AddOptions(app);
  bench::FanInOptions fan_in;
  fan_in.memkv_binary = MEMKV_BINARY;
  bench::AddFanInOptions(app, fan_in);
  CLI11_PARSE(app, argc, argv);

  if (tier == "fan-in") {
    if (seconds > 0) fan_in.seconds = seconds;
    if (!InitLogging(log_level)) return Fail("--log-level: unknown level '" + log_level + "'");
    if (fan_in.child >= 0) return bench::RunFanInChild(fan_in);
    bench::Progress progress;
    return bench::RunFanIn(fan_in, "/proc/self/exe", progress);
  }

  if (tier == "rail") {
    if (!InitLogging(log_level)) return Fail("--log-level: unknown level '" + log_level + "'");
    std::string command_line;
    for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
    return rail.Run(o.runs, seconds > 0 ? seconds : 2.0, json_path, command_line);
  }
  if (seconds > 0) o.seconds = seconds;

  if (!InitLogging(log_level)) return Fail("--log-level: unknown level '" + log_level + "'");
  auto size = ParseSize(size_text);
  if (!size) return Fail("--size: '" + size_text + "': " + size.error().message());
  if (*size < (64ull << 20)) return Fail("--size: " + FormatSize(*size) + " is below 64 MiB");
  o.size = *size / (1 << 20) * (1 << 20);
  auto memory = ParseSize(memory_text);
  if (!memory) return Fail("--memory: '" + memory_text + "': " + memory.error().message());
  o.memory = *memory;
  auto small_set = ParseSize(small_set_text);
  if (!small_set) return Fail("--small-set: '" + small_set_text + "': " + small_set.error().message());
  o.small_set = *small_set;
  o.use_fio = !no_fio;
  o.workloads.push_back("reopen");
  if (!workloads.empty()) {
    o.workloads.clear();
    for (const std::string& w : CLI::detail::split(workloads, ',')) {
      if (w != "read-1m" && w != "read-4k" && w != "write-1m" && w != "reopen")
        return Fail("--workloads: unknown workload '" + w +
                    "' (read-1m, read-4k, write-1m, reopen)");
      o.workloads.push_back(w);
    }
  }

  bench::Progress progress;
  auto result = bench::RunDriveTier(o, progress);
  if (!result) return Fail(result.error().message());
  std::fputs(bench::DriveTierTable(*result).c_str(), stdout);
  std::fflush(stdout);
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << boost::json::serialize(bench::DriveTierJson(*result)) << "\n";
    if (!out) return Fail(json_path + ": cannot write the JSON results");
  }
  return result->ok ? 0 : 1;
}
