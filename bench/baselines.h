#pragma once
// The references memkv's rails are measured against, run by memkv-bench
// --tier rail --baseline in the same invocation as memkv's own runs:
//   - memcpy: one thread copying blocks of the same size (the limit of a
//     one-copy path such as the shm rail);
//   - iperf3: one TCP stream over loopback (the limit of the tcp rail);
//   - Redis 7: GET and SET of the same value sizes, pipelined to the same
//     batch size, over one or N connections (a store people know).
// Each runs for a given time and returns what it moved; nothing here
// decides how often or in which order (rail_tier.cc interleaves them).

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <string_view>
#include <optional>
#include <string>
#include <vector>

#include "child.h"

namespace memkv::bench {

// What one timed run of a baseline moved.
struct BaselineRun {
  double seconds = 0;
  uint64_t bytes = 0;
  uint64_t entries = 0;    // values (memcpy blocks, Redis keys)
  uint64_t requests = 0;   // round trips (Redis pipelines)
  std::vector<double> latencies_ms;  // per request, when measured
  uint64_t verify_failures = 0;
  std::string error;       // set when the run failed
};

// One thread copies `batch` blocks of `block_size` bytes from one buffer to
// another, over and over, for `seconds`.
BaselineRun RunMemcpy(uint64_t block_size, uint32_t batch, double seconds);

// iperf3 3.x: `iperf3 --version`'s first line, or nullopt when missing.
std::optional<std::string> Iperf3Version();
// One loopback run: `iperf3 -s -1 -p PORT` as a child and
// `iperf3 -c 127.0.0.1 -p PORT -l BLOCK -O 1 -t SECONDS -J`: writes of the
// measured block size (iperf3 takes at most 1 MiB: larger blocks are
// written 1 MiB at a time), its first second left out; bytes and seconds
// are what the receiver reports.
BaselineRun RunIperf3(double seconds, uint64_t block_size);
// The block iperf3 writes for a measured block size.
inline uint64_t Iperf3Block(uint64_t block_size) { return block_size < (1u << 20) ? block_size : 1u << 20; }

// redis-benchmark, the client Redis users run, against `port`: `-t set,get
// -d SIZE -P PIPELINE -c CONNECTIONS --csv`, enough requests for about
// `seconds`; the rate of `op` ("GET" or "SET") times the value size.
BaselineRun RunRedisBenchmark(uint16_t port, const std::string& op, uint64_t size,
                              uint32_t pipeline, uint32_t connections, double seconds);
bool RedisBenchmarkInstalled();
// Reads one test's requests per second out of its --csv output.
inline std::optional<double> ParseRedisBenchmarkCsv(const std::string& csv, const std::string& op) {
  // "SET","12345.67",... : the test's name, then its requests per second.
  const std::string head = "\"" + op + "\",\"";
  const size_t at = csv.find(head);
  if (at == std::string::npos) return std::nullopt;
  const size_t from = at + head.size();
  const size_t to = csv.find('"', from);
  if (to == std::string::npos) return std::nullopt;
  try {
    const double rps = std::stod(csv.substr(from, to - from));
    if (rps > 0) return rps;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}
// Reads the receiver's figures out of iperf3's JSON report (-J).
bool ParseIperf3Json(const std::string& json, BaselineRun& out, std::string& error);

// redis-server: its version ("7.0.15"), or nullopt when missing.
std::optional<std::string> RedisVersion();

// A redis-server child on loopback with persistence off, stopped by the
// destructor (and by the signal handler).
class RedisServer {
 public:
  // Starts it on a free port and waits until it answers PING.
  static std::optional<RedisServer> Start(const std::string& log, std::string& error);
  uint16_t port() const { return port_; }

 private:
  ChildProcess child_;
  uint16_t port_ = 0;
};

// A blocking RESP connection to one Redis: pipelines of commands, each
// pipeline written while its replies are read (no deadlock on large ones).
// Used from one thread.
class RedisConnection {
 public:
  static std::optional<RedisConnection> Connect(uint16_t port, std::string& error);
  RedisConnection(RedisConnection&& o) noexcept : fd_(o.fd_), in_(std::move(o.in_)) { o.fd_ = -1; }
  RedisConnection& operator=(RedisConnection&&) = delete;
  ~RedisConnection();

  // SET keys[i] values[i] for every i, in one pipeline; false (and `error`)
  // unless every reply is +OK.
  bool Set(const std::vector<std::string>& keys, const std::vector<std::string_view>& values,
           std::string& error);
  // GET keys[i] for every i, in one pipeline; `check(i, bytes)` sees each
  // value (a view into the read buffer); false on a miss or an error reply.
  bool Get(const std::vector<std::string>& keys,
           const std::function<void(size_t, std::string_view)>& check, std::string& error);
  // The same with the pipeline's bytes made beforehand (outside a timed
  // loop), by SetCommands/GetCommands for the same keys.
  static std::string SetCommands(const std::vector<std::string>& keys,
                                 const std::vector<std::string_view>& values);
  static std::string GetCommands(const std::vector<std::string>& keys);
  bool Set(std::string_view commands, const std::vector<std::string>& keys, std::string& error);
  bool Get(std::string_view commands, const std::vector<std::string>& keys,
           const std::function<void(size_t, std::string_view)>& check, std::string& error);
  // One command; its reply's text (simple string or bulk) in `reply`.
  bool Command(std::initializer_list<std::string_view> args, std::string& reply,
               std::string& error);

 private:
  explicit RedisConnection(int fd) : fd_(fd) {}
  // Writes `out` while reading `replies` replies; `on_reply(i, kind, text)`
  // for each (kind: '+', '-', ':', '$', or 'n' for a null).
  bool Pipeline(std::string_view out, size_t replies,
                const std::function<bool(size_t, char, std::string_view)>& on_reply,
                std::string& error);

  int fd_ = -1;
  std::string in_;  // bytes read and not yet parsed
};

}  // namespace memkv::bench
