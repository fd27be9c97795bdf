#pragma once
// server::Metrics: the control plane's counters, per operation: requests,
// request bytes, entries and their failures, value bytes moved, and a
// latency histogram. Cheap enough for every request: relaxed atomics, no
// lock. Owned by the Server; written by every loop, read by the admin API.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>

#include "proto/messages.h"

namespace memkv::server {

enum class Op : uint8_t { kPing, kDetach, kPut, kGet, kExists, kDelete, kOther };
inline constexpr size_t kOpCount = 7;
// "ping", "detach", "put", "get", "exists", "delete", "other".
const char* OpName(Op op);
// The operation of a request opcode.
Op OpOf(proto::Opcode opcode);

// The rail a value's bytes moved on: tcp (inline over a TCP connection),
// shm (a shared region, or inline over a Unix socket), rdma.
enum class Rail : uint8_t { kTcp, kShm, kRdma };
inline constexpr size_t kRailCount = 3;
// "tcp", "shm", "rdma".
const char* RailName(Rail rail);

class Metrics {
 public:
  // Upper bounds of the latency buckets, in seconds (then +Inf).
  static constexpr std::array<double, 16> kBuckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   10.0};

  // A request finished: its payload size and the time from its arrival to
  // its last reply frame being queued.
  void Request(Op op, uint64_t request_bytes, std::chrono::nanoseconds latency);
  // A batch's entries: how many failed (any status but ok and not_found),
  // how many were misses (not_found), and the value bytes moved.
  void Entries(Op op, std::span<const proto::StatusCode> statuses, uint64_t value_bytes);
  void Entries(Op op, std::span<const proto::ReadResult> results, uint64_t value_bytes);
  void Entries(Op op, std::span<const proto::ExistsResult> results);

  struct OpCounters {
    uint64_t requests = 0;
    uint64_t request_bytes = 0;
    uint64_t entries = 0;
    uint64_t entry_errors = 0;
    uint64_t entry_misses = 0;
    uint64_t value_bytes = 0;
    uint64_t latency_ns_sum = 0;
    std::array<uint64_t, kBuckets.size() + 1> buckets{};  // not cumulative; last: +Inf
  };
  OpCounters Get(Op op) const;

  // Value bytes moved on a rail: received from clients (puts) or sent to
  // them (gets), counted for the entries that succeeded.
  void RailBytes(Rail rail, bool to_clients, uint64_t bytes);
  struct RailCounters {
    uint64_t from_clients = 0;
    uint64_t to_clients = 0;
  };
  RailCounters GetRail(Rail rail) const;

 private:
  struct PerOp {
    std::atomic<uint64_t> requests{0}, request_bytes{0}, entries{0}, entry_errors{0},
        entry_misses{0}, value_bytes{0}, latency_ns_sum{0};
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};
  };
  void Count(Op op, uint64_t entries, uint64_t errors, uint64_t misses, uint64_t value_bytes);
  std::array<PerOp, kOpCount> ops_;
  std::array<std::array<std::atomic<uint64_t>, 2>, kRailCount> rails_{};  // [rail][to_clients]
};

}  // namespace memkv::server
