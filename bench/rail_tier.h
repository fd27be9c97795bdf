#pragma once
// memkv-bench --tier rail: the data rails (tcp, shm) of a real `memkv
// server` measured through the client library, over a sweep of block
// sizes, client threads, batch sizes, operations and auth on/off; with
// --baseline, the references of baselines.h run in the same invocation,
// interleaved with memkv's runs (memkv run 1, its baselines' run 1, memkv
// run 2, ...), and every figure gets its ratio to them.
//
// The bench starts its own server (storage.mode memory, loopback, a free
// port, a Unix socket in a temp dir; a second one with an auth key for
// --auth on) and stops it at the end, on error and on SIGINT; or it targets
// --servers. All client threads of a point share one connection per
// (server, rail), as an engine's threads do. Every read is checked
// (verify.h) by default; values written are FillBlock patterns.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "baselines.h"
#include "common/result.h"
#include "report.h"

namespace memkv::bench {

struct RailTierOptions {
  std::vector<uint64_t> sizes = {4ull << 10, 16ull << 10, 64ull << 10, 256ull << 10,
                                 1ull << 20,  4ull << 20,  16ull << 20};
  std::vector<uint32_t> threads = {1, 4};
  std::vector<uint32_t> batches = {0};  // entries per request; 0: ~8 MiB a request, <= 7,500
  std::vector<std::string> rails = {"tcp", "shm"};
  std::vector<std::string> ops = {"read", "write", "mixed"};
  std::vector<bool> auth = {false, true};  // --auth both
  int runs = 3;
  double seconds = 2;
  bool baseline = false;
  // Also measure 4 KiB entries in 7,500-entry batches (the goals' batch)
  // when the sweep does not: one thread, auth off, each rail and op.
  bool goal_points = true;
  bool verify_all = true;  // false: one request in 16 per thread (and the first)
  std::vector<std::string> servers;  // empty: start our own
  std::string auth_key_hex;          // the key of --servers (--auth on)
  std::string memkv_binary;          // our own server's binary
  uint64_t server_memory = 0;        // 0: from the working set
  uint32_t server_threads = 0;       // 0: the server's default
  std::string command_line;          // for the report
};

// The batch a point uses for `block_size` when --batch is auto (0): enough
// entries to move kAutoBatchBytes per request, at most kMaxAutoBatch.
inline constexpr uint64_t kAutoBatchBytes = 8ull << 20;
inline constexpr uint32_t kMaxAutoBatch = 7500;
uint32_t AutoBatch(uint64_t block_size);

struct RailRun {
  double seconds = 0;
  uint64_t bytes = 0, entries = 0, requests = 0;
};

struct RailPoint {
  std::string rail, op;  // tcp|shm, read|write|mixed
  uint64_t block_size = 0;
  uint32_t threads = 1, batch = 1;
  bool auth = false;
  bool goal_point = false;  // added for the goals, not in the sweep asked for
  std::string refused;      // why memkv refused it ("n/a"); no runs then
  std::vector<RailRun> runs;
  std::vector<double> latencies_ms;  // every request of every run
  uint64_t verified = 0, verify_failures = 0, errors = 0;
  std::string first_error;
  // Ratios of medians (NaN: no baseline); ids of the baselines used.
  double vs_memcpy = 0, vs_iperf3 = 0, vs_redis = 0;
  // rdma rows: against the raw libfabric loop over the same provider.
  double vs_fabric = std::numeric_limits<double>::quiet_NaN();
  std::string memcpy_id, iperf3_id, redis_id, fabric_id;
};

struct BaselineSeries {
  std::string id;    // memcpy/4096x2048, iperf3, redis-get/4096x2048/c1, fi-write/4096
  std::string kind;  // memcpy, iperf3, redis-get, redis-set, redis-mixed, fi-write, fi-read, fi-mixed
  std::string label;
  uint64_t block_size = 0;
  uint32_t batch = 0, connections = 1;
  std::vector<BaselineRun> runs;
  std::vector<double> latencies_ms;
  std::string skipped;  // why it has no runs
  uint64_t verify_failures = 0;
};

struct Goal {
  std::string id, text;
  double value = 0;   // the measured ratio (or figure); NaN: not measured
  double target = 0;  // pass when value >= target; 0: a figure, no target
  std::string unit;   // "x" for ratios, "ms" for latencies
  std::string how;    // which figures made it
};

struct RailTierResult {
  RailTierOptions options;
  MachineInfo machine;
  std::string memkv_version, redis_version, iperf3_version;
  std::string fabric_provider;  // the raw fi_writemsg baseline's provider, once it ran
  std::vector<std::string> server_commands;
  std::vector<RailPoint> points;
  std::vector<BaselineSeries> baselines;
  std::vector<Goal> goals;
  std::vector<std::string> notes;
  uint64_t verified = 0, verify_failures = 0;
  bool ok = true;  // no verify failure and no error other than a refusal
};

// Runs the sweep; progress on stderr. An error means the bench could not
// run at all (no server); everything else is in the result.
Result<RailTierResult> RunRailTier(const RailTierOptions& options, Progress& progress);

std::string RailTierTable(const RailTierResult& result);
boost::json::object RailTierJson(const RailTierResult& result);
std::string RailTierCsv(const RailTierResult& result);
std::string RailTierSvg(const RailTierResult& result);
// docs/performance.md: machine, command, tables, goals, auth cost, chart.
std::string RailTierMarkdown(const RailTierResult& result, const std::string& svg_link,
                             const std::string& drive_tier_text);

// Pure helpers, unit-tested.
// Median GiB/s of a point's or a series' runs.
double MedianGiBps(const std::vector<RailRun>& runs);
double MedianGiBps(const std::vector<BaselineRun>& runs);
// "4 KiB", "16 MiB"
std::string SizeName(uint64_t bytes);
// Parses "4K,16KiB,1M" / "1,4" lists; false with `error` on a bad item.
bool ParseSizeList(const std::string& text, std::vector<uint64_t>& out, std::string& error);

}  // namespace memkv::bench
