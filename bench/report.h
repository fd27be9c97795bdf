#pragma once
// What memkv-bench prints around its figures: the machine it ran on, the
// median and spread of a series of runs, progress on stderr, and number
// formatting for the tables.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace memkv::bench {

struct MachineInfo {
  std::string cpu_model;    // /proc/cpuinfo "model name"
  unsigned cpus = 0;        // online processors (what nproc prints)
  std::string kernel;       // uname -sr
  std::string dir;          // --dir, absolute
  std::string filesystem;   // the type of the file system holding dir (ext4, xfs, ...)
  std::string device;       // its mount source (/dev/vda)
  std::string mount_point;  // where it is mounted
  std::string date;         // ISO 8601, UTC
};

// Describes this machine and the file system of `dir` (which must exist).
MachineInfo DescribeMachine(const std::string& dir);

// Median and range of a series; all zero for an empty one.
struct Spread {
  double median = 0, min = 0, max = 0;
};
Spread SpreadOf(std::span<const double> values);

// The p-th percentile (0..100) of a series, nearest rank on the sorted
// values (p50 of {1, 2, 3, 4} is 2; p99 of 100 values is the 99th); 0 for an
// empty one.
double Percentile(std::span<const double> values, double p);

// How many times `denominator` the `numerator` is: the ratio of two
// medians. NaN when either side is missing (not a number, or a
// denominator of 0), which the tables print as "-".
double RatioOf(double numerator, double denominator);

// "1,000,000"
std::string Thousands(uint64_t n);
// "%.*f"
std::string Fixed(double v, int decimals);

// Progress lines on stderr: a bar redrawn in place when stderr is a
// terminal, plain lines (start and end of each step) otherwise. Used from
// one thread.
class Progress {
 public:
  Progress();
  bool tty() const { return tty_; }

  // A step starts: `label` says what runs.
  void Begin(const std::string& label);
  // Part `fraction` (0..1) of the step is done; `detail` is shown beside the
  // bar. Redraws at most ten times a second; nothing without a terminal.
  void Update(double fraction, const std::string& detail = {});
  // The step ended; `result` is printed after its label.
  void End(const std::string& result);
  // A note of its own, between steps.
  void Note(const std::string& line);

 private:
  void ClearLine();

  bool tty_ = false;
  bool drawn_ = false;
  std::string label_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace memkv::bench
