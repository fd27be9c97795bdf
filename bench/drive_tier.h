#pragma once
// memkv-bench --tier drive: the store's drive tier against fio, on the same
// machine, the same file system and in the same invocation.
//
// Each workload runs fio and memkv in turn (fio, memkv, fio, memkv, ...) so
// that drift of a shared machine hits both sides alike; the ratio of the
// medians is the figure to compare across machines. memkv runs a Store over
// one file drive (storage.mode file, O_DIRECT FileDevice) on one loop, with
// `qd` coroutines each keeping one operation in flight; fio runs one job
// with ioengine=io_uring, direct=1 and iodepth=qd on a file of the same size
// in the same directory. Every value memkv reads is checked (verify.h).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "common/result.h"
#include "report.h"

namespace memkv::bench {

struct DriveTierOptions {
  std::string dir = "./var/bench";
  uint64_t size = 1ull << 30;          // each of fio's file and memkv's drive (sparse)
  int runs = 3;                        // per side and workload
  double seconds = 5;                  // per run
  uint32_t qd = 32;                    // fio's iodepth = memkv's concurrent coroutines
  uint64_t memory = 8ull << 20;        // StoreOptions.memory_max_size: a cache too small to help
  uint64_t small_set = 256ull << 20;   // bytes of 4 KiB values read by workload (b)
  uint64_t reopen_keys = 1'000'000;    // 0 skips the reopen measurement
  uint64_t replay_keys = 100'000;      // puts left in the journal before the drop
  uint32_t fill_qd = 256;              // concurrent puts while filling (not measured against fio)
  bool use_fio = true;                 // false: memkv only (--no-fio)
  bool keep = false;                   // keep the files in dir afterwards
  std::string io_backend = "auto";     // the store's ring: auto, io_uring or threads (server.io_backend)
  std::vector<std::string> workloads = {"read-1m", "read-4k", "write-1m"};
};

// One timed run of one side.
struct Run {
  double seconds = 0;
  uint64_t ops = 0;
  uint64_t bytes = 0;
};

// The runs of one side of a workload (fio with one setting, or memkv).
struct Series {
  std::string id;     // "fio", "fio-fdatasync", "memkv"
  std::string label;  // for the table
  std::string what;   // what the figure is, in a sentence
  std::vector<std::string> command;  // fio's command line; empty for memkv
  std::vector<Run> runs;
  std::string skipped;  // why there are no runs, when there are none

  // memkv: what the store's counters (stats()) say about these runs.
  bool memkv = false;
  uint64_t gets = 0, cache_hits = 0, puts = 0, evictions = 0, journal_records = 0,
           checkpoints = 0, checksum_errors = 0;
  uint64_t verify_failures = 0, errors = 0, verified = 0;
  std::string first_error;
};

struct Ratio {
  std::string numerator, denominator;  // series ids
  double value = 0;                    // median GiB/s over median GiB/s
};

struct WorkloadResult {
  std::string id;     // read-1m, read-4k, write-1m
  std::string title;  // "(a) 1 MiB random reads, queue depth 32"
  std::string setup;  // what was read or written, in a sentence
  uint64_t block_size = 0;
  uint32_t qd = 0;
  bool iops = false;  // IOPS are the figure people look at (4 KiB)
  uint64_t working_set = 0;
  uint64_t keys = 0;
  double fill_seconds = 0;
  std::vector<Series> series;
  std::vector<Ratio> ratios;
};

struct ReopenResult {
  uint64_t keys = 0, replay_keys = 0;
  uint64_t drive_size = 0, drive_allocated = 0;
  double fill_seconds = 0, close_seconds = 0;
  double open_after_close = 0, open_after_drop = 0;
  uint64_t keys_after_close = 0, keys_after_drop = 0;
  // From the store's recovery log line; -1 when it was not seen.
  int64_t close_journal_records = -1, close_journal_ops = -1;
  int64_t drop_journal_records = -1, drop_journal_ops = -1;
  uint64_t checkpoints_during_replay_puts = 0;  // journal-full checkpoints while putting them
  uint64_t verified = 0, verify_failures = 0;
};

struct DriveTierResult {
  DriveTierOptions options;
  MachineInfo machine;
  std::string fio_version;  // empty: fio missing or not used
  std::string io_backend;   // the store's ring: "io_uring" or "threads"
  std::string fio_file, drive_file;
  uint64_t drive_data_bytes = 0;  // the drive's data region
  std::vector<WorkloadResult> workloads;
  std::optional<ReopenResult> reopen;
  std::vector<std::string> notes;
  uint64_t verify_failures = 0;  // over everything; must be 0
  uint64_t reads_verified = 0;
  bool ok = true;  // no verify failure and no operation error
};

// Runs the measurements; progress on stderr. An error means the bench could
// not run (a file it could not create, a store that would not open); wrong
// bytes are not an error here but ok == false in the result.
Result<DriveTierResult> RunDriveTier(const DriveTierOptions& options, Progress& progress);

// The table for people.
std::string DriveTierTable(const DriveTierResult& result);
// The same, for machines.
boost::json::object DriveTierJson(const DriveTierResult& result);

}  // namespace memkv::bench
