// The batch optimizer and the host scatter (include/memkv/batch_plan.h).

#include "memkv/batch_plan.h"

#include "common/cuda.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <numeric>
#include <unordered_map>
#include <utility>
#include <vector>

namespace memkv {

namespace {

// One descriptor inside a run.
struct Piece {
  uint32_t descriptor = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::byte* memory = nullptr;
  MemoryKind kind = MemoryKind::kHost;
  uint64_t end() const { return offset + length; }
};

// Stage 1's unit: object range [offset, end) of one group.
struct Run {
  uint32_t group = 0;
  uint32_t seq = 0;  // creation order, for writes that overlap
  uint64_t offset = 0;
  uint64_t end = 0;
  std::byte* source = nullptr;  // writes: the contiguous source of [offset, end)
  MemoryKind kind = MemoryKind::kHost;
  std::vector<Piece> pieces;
};

struct GroupKey {
  size_t server;
  std::string_view key;
  bool operator==(const GroupKey&) const = default;
};
struct GroupKeyHash {
  size_t operator()(const GroupKey& k) const {
    return std::hash<std::string_view>()(k.key) ^ (k.server * 0x9e3779b97f4a7c15ull);
  }
};

// The "diagonal" of a destination: memory minus object offset. Two
// destinations on one diagonal hold the same object byte at the same
// address, so where they overlap or touch they are one copy.
uintptr_t Diagonal(const Piece& p) {
  return reinterpret_cast<uintptr_t>(p.memory) - static_cast<uintptr_t>(p.offset);
}

std::atomic<DeviceCopyFn> g_device_copy{nullptr};

}  // namespace

struct BatchPlan::State {
  PlanOp op;
  bool optimize;
  bool finished = false;
  uint32_t descriptors = 0;

  // Stage 1. Group names live in group_names (stable: a deque of strings
  // would do; strings in a vector of unique_ptr keep their addresses).
  std::vector<std::unique_ptr<std::string>> group_names;
  std::vector<size_t> group_servers;
  std::vector<uint32_t> last_run;  // per group: its newest run
  std::unordered_map<GroupKey, uint32_t, GroupKeyHash> group_index;
  std::vector<Run> runs;

  // Stage 2.
  std::vector<PlanGroup> groups;
  std::vector<PlanChunk> chunks;
  std::vector<PlanCopy> copies;
  std::vector<uint32_t> order;
  std::vector<uint32_t> chunk_of;  // per descriptor
  uint64_t wire_bytes = 0;

  uint32_t Group(size_t server, std::string_view key) {
    auto it = group_index.find(GroupKey{server, key});
    if (it != group_index.end()) return it->second;
    const auto g = static_cast<uint32_t>(group_names.size());
    group_names.push_back(std::make_unique<std::string>(key));
    group_servers.push_back(server);
    last_run.push_back(UINT32_MAX);
    group_index.emplace(GroupKey{server, *group_names.back()}, g);
    return g;
  }

  // Stage 1: can `p` join run `r`?
  bool Joins(const Run& r, const Piece& p) const {
    if (!optimize) return false;
    if (op == PlanOp::kRead) return p.offset == r.end || (p.offset >= r.offset && p.end() <= r.end);
    return p.offset == r.end && p.kind == r.kind && p.memory == r.source + (r.end - r.offset);
  }

  void Add(size_t server, std::string_view key, uint64_t offset, std::byte* memory, uint64_t length,
           MemoryKind kind) {
    const uint32_t d = descriptors++;
    chunk_of.push_back(kNoChunk);
    if (length == 0) return;
    const uint32_t g = Group(server, key);
    const Piece p{d, offset, length, memory, kind};
    if (last_run[g] != UINT32_MAX) {
      Run& r = runs[last_run[g]];
      if (Joins(r, p)) {
        r.end = std::max(r.end, p.end());
        r.pieces.push_back(p);
        return;
      }
    }
    last_run[g] = static_cast<uint32_t>(runs.size());
    runs.push_back(Run{g, static_cast<uint32_t>(runs.size()), offset, p.end(), memory, kind, {p}});
  }

  // Stage 2 for one read chunk made of `rs`: collapse its destinations,
  // hoist the cover.
  void EmitRead(uint32_t g, std::vector<Run*>& rs) {
    PlanChunk c;
    c.group = g;
    c.offset = rs.front()->offset;
    uint64_t end = 0;
    std::vector<Piece> pieces;
    for (Run* r : rs) {
      end = std::max(end, r->end);
      pieces.insert(pieces.end(), r->pieces.begin(), r->pieces.end());
    }
    c.length = end - c.offset;
    const auto ci = static_cast<uint32_t>(chunks.size());
    c.first_descriptor = static_cast<uint32_t>(order.size());
    c.descriptor_count = static_cast<uint32_t>(pieces.size());
    for (const Piece& p : pieces) {
      order.push_back(p.descriptor);
      chunk_of[p.descriptor] = ci;
    }
    // Collapse: by (kind, diagonal, offset), folding what touches or overlaps.
    std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
      if (a.kind != b.kind) return a.kind < b.kind;
      if (Diagonal(a) != Diagonal(b)) return Diagonal(a) < Diagonal(b);
      return a.offset < b.offset;
    });
    std::vector<Piece> merged;
    for (const Piece& p : pieces) {
      if (!merged.empty()) {
        Piece& m = merged.back();
        if (m.kind == p.kind && Diagonal(m) == Diagonal(p) && p.offset <= m.end()) {
          m.length = std::max(m.end(), p.end()) - m.offset;
          continue;
        }
      }
      merged.push_back(p);
    }
    // The cover: a host destination of the whole chunk.
    auto cover = std::find_if(merged.begin(), merged.end(), [&](const Piece& p) {
      return p.kind == MemoryKind::kHost && p.offset == c.offset && p.length == c.length;
    });
    if (cover != merged.end()) {
      c.target = cover->memory;
      c.target_kind = MemoryKind::kHost;
      merged.erase(cover);
    }
    c.first_copy = static_cast<uint32_t>(copies.size());
    c.copy_count = static_cast<uint32_t>(merged.size());
    for (const Piece& p : merged) copies.push_back({p.offset, p.length, p.memory, p.kind});
    wire_bytes += c.length;
    chunks.push_back(c);
  }

  void EmitWrite(uint32_t g, std::vector<Run*>& rs) {
    PlanChunk c;
    c.group = g;
    c.offset = rs.front()->offset;
    c.length = rs.back()->end - c.offset;
    c.target = rs.front()->source;
    c.target_kind = rs.front()->kind;
    const auto ci = static_cast<uint32_t>(chunks.size());
    c.first_descriptor = static_cast<uint32_t>(order.size());
    for (Run* r : rs)
      for (const Piece& p : r->pieces) {
        order.push_back(p.descriptor);
        chunk_of[p.descriptor] = ci;
      }
    c.descriptor_count = static_cast<uint32_t>(order.size()) - c.first_descriptor;
    c.first_copy = static_cast<uint32_t>(copies.size());
    wire_bytes += c.length;
    chunks.push_back(c);
  }

  void Finish() {
    if (finished) return;
    finished = true;
    // Groups in (server, key) order.
    std::vector<uint32_t> gorder(group_names.size());
    std::iota(gorder.begin(), gorder.end(), 0u);
    std::sort(gorder.begin(), gorder.end(), [&](uint32_t a, uint32_t b) {
      if (group_servers[a] != group_servers[b]) return group_servers[a] < group_servers[b];
      return *group_names[a] < *group_names[b];
    });
    std::vector<uint32_t> rank(gorder.size());
    for (uint32_t i = 0; i < gorder.size(); ++i) rank[gorder[i]] = i;
    for (Run& r : runs) r.group = rank[r.group];
    groups.resize(gorder.size());
    for (uint32_t i = 0; i < gorder.size(); ++i) {
      groups[i].server = group_servers[gorder[i]];
      groups[i].key = *group_names[gorder[i]];
    }

    std::vector<Run*> sorted;
    sorted.reserve(runs.size());
    for (Run& r : runs) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(), [](const Run* a, const Run* b) {
      if (a->group != b->group) return a->group < b->group;
      if (a->offset != b->offset) return a->offset < b->offset;
      return a->seq < b->seq;
    });

    std::vector<Run*> fold;
    for (size_t i = 0; i < sorted.size();) {
      size_t j = i;
      while (j < sorted.size() && sorted[j]->group == sorted[i]->group) ++j;
      const uint32_t g = sorted[i]->group;
      groups[g].first_chunk = static_cast<uint32_t>(chunks.size());
      std::span<Run*> rs(sorted.data() + i, j - i);
      if (op == PlanOp::kRead) {
        for (size_t k = 0; k < rs.size();) {
          fold.assign(1, rs[k]);
          uint64_t end = rs[k]->end;
          size_t n = k + 1;
          while (optimize && n < rs.size() && rs[n]->offset <= end) {
            end = std::max(end, rs[n]->end);
            fold.push_back(rs[n++]);
          }
          EmitRead(g, fold);
          k = n;
        }
      } else {
        bool overlap = false;
        for (size_t k = 1; k < rs.size(); ++k) overlap |= rs[k]->offset < rs[k - 1]->end;
        if (overlap)  // keep the order of the writes: the later byte wins
          std::sort(rs.begin(), rs.end(),
                    [](const Run* a, const Run* b) { return a->seq < b->seq; });
        for (size_t k = 0; k < rs.size();) {
          fold.assign(1, rs[k]);
          size_t n = k + 1;
          while (optimize && !overlap && n < rs.size() && rs[n]->offset == fold.back()->end &&
                 rs[n]->kind == fold.back()->kind &&
                 rs[n]->source == fold.back()->source + (fold.back()->end - fold.back()->offset))
            fold.push_back(rs[n++]);
          EmitWrite(g, fold);
          k = n;
        }
      }
      groups[g].chunk_count = static_cast<uint32_t>(chunks.size()) - groups[g].first_chunk;
      i = j;
    }
    runs.clear();
    runs.shrink_to_fit();
    group_index.clear();
  }
};

BatchPlan::BatchPlan(PlanOp op, bool optimize) : s_(std::make_unique<State>()) {
  s_->op = op;
  s_->optimize = optimize;
}
BatchPlan::BatchPlan(BatchPlan&&) noexcept = default;
BatchPlan& BatchPlan::operator=(BatchPlan&&) noexcept = default;
BatchPlan::~BatchPlan() = default;

PlanOp BatchPlan::op() const { return s_->op; }

void BatchPlan::Add(size_t server, std::string_view key, uint64_t offset, void* memory,
                    uint64_t length, MemoryKind kind) {
  if (s_->finished) return;
  s_->Add(server, key, offset, static_cast<std::byte*>(memory), length, kind);
}

void BatchPlan::Finish() { s_->Finish(); }

size_t BatchPlan::descriptors() const { return s_->descriptors; }
size_t BatchPlan::wire_ops() const { return s_->chunks.size(); }
uint64_t BatchPlan::wire_bytes() const { return s_->wire_bytes; }
std::span<const PlanGroup> BatchPlan::groups() const { return s_->groups; }
std::span<const PlanChunk> BatchPlan::chunks() const { return s_->chunks; }
std::span<const PlanCopy> BatchPlan::copies() const { return s_->copies; }
std::span<const uint32_t> BatchPlan::descriptor_order() const { return s_->order; }
uint32_t BatchPlan::ChunkOf(uint32_t descriptor) const {
  return descriptor < s_->chunk_of.size() ? s_->chunk_of[descriptor] : kNoChunk;
}

Expected<uint64_t> BatchPlan::WholeValueSize(const PlanGroup& group) const {
  auto cs = chunks().subspan(group.first_chunk, group.chunk_count);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const PlanChunk& c : cs) ranges.emplace_back(c.offset, c.offset + c.length);
  std::sort(ranges.begin(), ranges.end());
  uint64_t covered = 0;
  for (auto [b, e] : ranges) {
    if (b > covered)
      return Outcome{Code::kInvalidArgument,
                     "key '" + group.key + "': a write must cover the whole value, from offset 0 " +
                         "with no gap; bytes [" + std::to_string(covered) + ", " +
                         std::to_string(b) + ") are missing"};
    covered = std::max(covered, e);
  }
  return covered;
}

namespace {
int CudaCopy(void* dst, const void* src, size_t n) {
  return common::Cuda::Process().Copy(dst, src, n) ? 0 : -1;
}
}  // namespace

void SetDeviceCopy(DeviceCopyFn fn) { g_device_copy.store(fn); }
DeviceCopyFn GetDeviceCopy() {
  if (DeviceCopyFn fn = g_device_copy.load()) return fn;
  return common::Cuda::Process().available() ? &CudaCopy : nullptr;
}

namespace {
Outcome Copy(void* dst, const void* src, size_t n, bool device) {
  if (!device) {
    std::memcpy(dst, src, n);
    return {};
  }
  DeviceCopyFn fn = GetDeviceCopy();
  if (fn == nullptr) return {Code::kUnsupported, "device memory: no CUDA in this process"};
  if (fn(dst, src, n) != 0) return {Code::kInternal, "device memory: the CUDA copy failed"};
  return {};
}
}  // namespace

Outcome ScatterChunk(const BatchPlan& plan, const PlanChunk& chunk, const std::byte* wire) {
  for (const PlanCopy& c : plan.copies().subspan(chunk.first_copy, chunk.copy_count)) {
    if (auto o = Copy(c.memory, wire + (c.offset - chunk.offset), c.length,
                      c.kind == MemoryKind::kDevice);
        !o)
      return o;
  }
  return {};
}

Outcome GatherGroup(const BatchPlan& plan, const PlanGroup& group, std::byte* value, size_t size) {
  for (const PlanChunk& c : plan.chunks().subspan(group.first_chunk, group.chunk_count)) {
    if (c.offset + c.length > size)
      return {Code::kBufferTooSmall, "key '" + group.key + "': the value buffer is too small"};
    if (auto o = Copy(value + c.offset, c.target, c.length, c.target_kind == MemoryKind::kDevice);
        !o)
      return o;
  }
  return {};
}

}  // namespace memkv
