#pragma once
// memkv::BatchPlan: the batch optimizer. It turns a list of transfer
// descriptors (a key's object bytes [offset, offset + length) <-> the
// caller's memory) into few wire operations, and says which descriptors each
// operation completes. Pure: no I/O, no engine; any caller with descriptor
// lists can use it (the NIXL plugin does, through libmemkv.so).
//
//   memkv::BatchPlan plan(memkv::PlanOp::kRead);
//   for (auto& d : descriptors) plan.Add(engine.RouteKey(d.key), d.key, d.offset, d.buf, d.len);
//   plan.Finish();
//   for (auto& c : plan.chunks()) ...  // one wire op each; ScatterChunk fills the rest
//
// Stage 1 (Add, incremental): descriptors are grouped by (server, key); a
// read merges into the group's last run when its range is contiguous with
// it or contained in it; a write merges only when it is contiguous both in
// the object and in its source memory (so the merged run is still one
// contiguous source).
// Stage 2 (Finish, global): the runs are sorted by (server, key, offset).
// Reads fold every run that touches or overlaps the next; a chunk's
// destinations collapse (duplicates, containment and destinations that
// continue one another in both object and memory become one copy), and a
// host destination spanning the whole chunk becomes the wire target (the
// cover), so the wire op lands in place and only the other destinations are
// copied. Writes fold strictly contiguous runs, and keep their order when
// ranges overlap (the later write of a byte wins, as one op per descriptor
// would have it).
//
// Each chunk lists the descriptors it completes, so completion per
// descriptor is exact. A zero-length descriptor belongs to no chunk: it
// moves nothing and is complete at once. Destinations that overlap in memory
// while naming different object bytes are undefined (as they are when each
// descriptor is its own operation: their order is not defined either).
//
// Threads: a plan is a value; one thread builds it, then any may read it.
// This header depends on the standard library and engine.h only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "memkv/engine.h"

namespace memkv {

enum class PlanOp { kRead, kWrite };
enum class MemoryKind : uint8_t { kHost, kDevice };

// Object bytes [offset, offset + length) <-> memory.
struct PlanCopy {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::byte* memory = nullptr;
  MemoryKind kind = MemoryKind::kHost;
};

// One wire operation.
struct PlanChunk {
  uint32_t group = 0;   // index into groups()
  uint64_t offset = 0;  // object range [offset, offset + length)
  uint64_t length = 0;
  // Reads: the cover (a host destination of the whole chunk) that the wire
  // op lands in, or null: land in staging memory, then copy every
  // destination. Writes: the chunk's source, contiguous.
  std::byte* target = nullptr;
  MemoryKind target_kind = MemoryKind::kHost;
  // Reads: copies()[first_copy, +copy_count): the destinations still to be
  // filled from the wire bytes (the cover excluded). Writes: none.
  uint32_t first_copy = 0;
  uint32_t copy_count = 0;
  // descriptor_order()[first_descriptor, +descriptor_count): the
  // descriptors (Add's order, from 0) that this chunk completes.
  uint32_t first_descriptor = 0;
  uint32_t descriptor_count = 0;
};

// One (server, key): its chunks are chunks()[first_chunk, +chunk_count),
// by offset (writes whose ranges overlap: in the order they were added).
struct PlanGroup {
  size_t server = 0;
  std::string key;
  uint32_t first_chunk = 0;
  uint32_t chunk_count = 0;
};

class BatchPlan {
 public:
  static constexpr uint32_t kNoChunk = UINT32_MAX;

  // `optimize` false: the naive plan, one chunk per descriptor (benchmarks
  // and comparisons); zero-length descriptors still move nothing.
  explicit BatchPlan(PlanOp op, bool optimize = true);
  BatchPlan(BatchPlan&&) noexcept;
  BatchPlan& operator=(BatchPlan&&) noexcept;
  ~BatchPlan();

  PlanOp op() const;
  // Stage 1. Descriptors are numbered from 0 in the order they are added.
  // After Finish, Add is ignored.
  void Add(size_t server, std::string_view key, uint64_t offset, void* memory, uint64_t length,
           MemoryKind kind = MemoryKind::kHost);
  // Stage 2. Idempotent.
  void Finish();

  size_t descriptors() const;
  // Wire operations: chunks().size() once finished.
  size_t wire_ops() const;
  // Object bytes the wire ops move (each chunk's length, summed).
  uint64_t wire_bytes() const;

  std::span<const PlanGroup> groups() const;
  std::span<const PlanChunk> chunks() const;
  std::span<const PlanCopy> copies() const;
  std::span<const uint32_t> descriptor_order() const;
  // The chunk that completes `descriptor`, or kNoChunk (zero length).
  uint32_t ChunkOf(uint32_t descriptor) const;

  // Writes: a memkv put writes a whole value, so a group's chunks must
  // cover [0, size) with no gap; returns size, or why not (naming the key).
  Expected<uint64_t> WholeValueSize(const PlanGroup& group) const;

  struct State;

 private:
  std::unique_ptr<State> s_;
};

// ---- scatter and gather ----

// Copies n bytes between host and device memory in either direction
// (unified addressing); returns 0 on success. Unless set, the process's one
// CUDA loader (common/cuda.h: libcuda.so.1 loaded at first use, cuMemcpy)
// when the process has a CUDA driver; null where it has none, and then the
// NIXL plugin advertises no device memory.
using DeviceCopyFn = int (*)(void* dst, const void* src, size_t n);
void SetDeviceCopy(DeviceCopyFn fn);
DeviceCopyFn GetDeviceCopy();

// After a read chunk's wire op: fills its remaining destinations from
// `wire`, the chunk's bytes (its target, or the staging memory when it has
// none): memcpy for host memory, the DeviceCopy hook for device memory
// (kUnsupported when none is set).
Outcome ScatterChunk(const BatchPlan& plan, const PlanChunk& chunk, const std::byte* wire);

// Before a write group's wire op: copies its chunks, in order, into
// value[0, size) (size from WholeValueSize).
Outcome GatherGroup(const BatchPlan& plan, const PlanGroup& group, std::byte* value, size_t size);

}  // namespace memkv
