#include "server/metrics.h"

namespace memkv::server {
namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kPing:
      return "ping";
    case Op::kDetach:
      return "detach";
    case Op::kPut:
      return "put";
    case Op::kGet:
      return "get";
    case Op::kExists:
      return "exists";
    case Op::kDelete:
      return "delete";
    case Op::kOther:
      break;
  }
  return "other";
}

Op OpOf(proto::Opcode opcode) {
  switch (opcode) {
    case proto::Opcode::kPing:
      return Op::kPing;
    case proto::Opcode::kDetach:
      return Op::kDetach;
    case proto::Opcode::kBatchWrite:
      return Op::kPut;
    case proto::Opcode::kBatchRead:
      return Op::kGet;
    case proto::Opcode::kExists:
      return Op::kExists;
    case proto::Opcode::kDelete:
      return Op::kDelete;
    default:
      return Op::kOther;
  }
}

void Metrics::Request(Op op, uint64_t request_bytes, std::chrono::nanoseconds latency) {
  PerOp& p = ops_[static_cast<size_t>(op)];
  p.requests.fetch_add(1, kRelaxed);
  p.request_bytes.fetch_add(request_bytes, kRelaxed);
  const uint64_t ns = latency.count() > 0 ? static_cast<uint64_t>(latency.count()) : 0;
  p.latency_ns_sum.fetch_add(ns, kRelaxed);
  const double seconds = static_cast<double>(ns) * 1e-9;
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  p.buckets[b].fetch_add(1, kRelaxed);
}

void Metrics::Count(Op op, uint64_t entries, uint64_t errors, uint64_t misses,
                    uint64_t value_bytes) {
  PerOp& p = ops_[static_cast<size_t>(op)];
  p.entries.fetch_add(entries, kRelaxed);
  p.entry_errors.fetch_add(errors, kRelaxed);
  p.entry_misses.fetch_add(misses, kRelaxed);
  p.value_bytes.fetch_add(value_bytes, kRelaxed);
}

void Metrics::Entries(Op op, std::span<const proto::StatusCode> statuses, uint64_t value_bytes) {
  uint64_t errors = 0, misses = 0;
  for (proto::StatusCode s : statuses) {
    misses += s == proto::StatusCode::kNotFound;
    errors += s != proto::StatusCode::kOk && s != proto::StatusCode::kNotFound;
  }
  Count(op, statuses.size(), errors, misses, value_bytes);
}

void Metrics::Entries(Op op, std::span<const proto::ReadResult> results, uint64_t value_bytes) {
  uint64_t errors = 0, misses = 0;
  for (const auto& r : results) {
    misses += r.status == proto::StatusCode::kNotFound;
    errors += r.status != proto::StatusCode::kOk && r.status != proto::StatusCode::kNotFound;
  }
  Count(op, results.size(), errors, misses, value_bytes);
}

void Metrics::Entries(Op op, std::span<const proto::ExistsResult> results) {
  uint64_t errors = 0, misses = 0;
  for (const auto& r : results) {
    misses += r.status == proto::StatusCode::kNotFound;
    errors += r.status != proto::StatusCode::kOk && r.status != proto::StatusCode::kNotFound;
  }
  Count(op, results.size(), errors, misses, 0);
}

const char* RailName(Rail rail) {
  switch (rail) {
    case Rail::kTcp:
      return "tcp";
    case Rail::kShm:
      return "shm";
    case Rail::kRdma:
      return "rdma";
  }
  return "?";
}

void Metrics::RailBytes(Rail rail, bool to_clients, uint64_t bytes) {
  if (bytes) rails_[static_cast<size_t>(rail)][to_clients ? 1 : 0].fetch_add(bytes, kRelaxed);
}

Metrics::RailCounters Metrics::GetRail(Rail rail) const {
  const auto& r = rails_[static_cast<size_t>(rail)];
  return {r[0].load(kRelaxed), r[1].load(kRelaxed)};
}

Metrics::OpCounters Metrics::Get(Op op) const {
  const PerOp& p = ops_[static_cast<size_t>(op)];
  OpCounters c;
  c.requests = p.requests.load(kRelaxed);
  c.request_bytes = p.request_bytes.load(kRelaxed);
  c.entries = p.entries.load(kRelaxed);
  c.entry_errors = p.entry_errors.load(kRelaxed);
  c.entry_misses = p.entry_misses.load(kRelaxed);
  c.value_bytes = p.value_bytes.load(kRelaxed);
  c.latency_ns_sum = p.latency_ns_sum.load(kRelaxed);
  for (size_t i = 0; i < c.buckets.size(); ++i) c.buckets[i] = p.buckets[i].load(kRelaxed);
  return c;
}

}  // namespace memkv::server
