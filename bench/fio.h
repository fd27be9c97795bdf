#pragma once
// Running fio (the reference the drive tier is measured against) as a child
// process and reading its JSON report. The bench never installs fio: where
// it is missing, FioVersion() says so and the fio side is skipped.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace memkv::bench {

// "fio-3.33", or nullopt when no fio is on PATH.
std::optional<std::string> FioVersion();

struct FioJob {
  std::string filename;
  std::string rw;           // read, randread, write, randwrite
  uint64_t block_size = 0;  // bs
  uint32_t iodepth = 1;
  uint64_t size = 0;        // bytes of the file the job covers, from offset 0
  double seconds = 0;       // > 0: time_based for this long; 0: `size` bytes once
  uint32_t fdatasync = 0;   // > 0: an fdatasync after every this many writes
  bool readonly = false;
};

struct FioResult {
  double seconds = 0;  // fio's runtime for the direction measured
  uint64_t bytes = 0;
  uint64_t ios = 0;
  double iops = 0;
  double bw_bytes = 0;  // bytes per second, as fio reports it
};

// The fio command line for `job` (ioengine=io_uring, direct=1), for the
// report and for people who want to run it themselves.
std::vector<std::string> FioCommand(const FioJob& job);

// Runs the job and parses its report. `tick` is called about five times a
// second while fio runs (progress display). On failure `error` says why,
// with the end of fio's stderr.
std::optional<FioResult> RunFio(const FioJob& job, std::string& error,
                                const std::function<void()>& tick = {});

}  // namespace memkv::bench
