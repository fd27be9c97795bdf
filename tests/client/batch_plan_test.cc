// The batch optimizer (include/memkv/batch_plan.h) and the host scatter and
// gather: random descriptor lists executed against a simulated object store
// land exactly the bytes the naive plan (one op per descriptor) lands.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../common/fake_cuda.h"
#include "memkv/batch_plan.h"

namespace memkv {
namespace {

struct Desc {
  size_t server;
  std::string key;
  uint64_t offset;
  size_t mem;  // offset into the arena
  uint64_t length;
};

using Store = std::map<std::pair<size_t, std::string>, std::vector<std::byte>>;

std::byte ObjectByte(size_t server, const std::string& key, uint64_t off) {
  return std::byte((off * 131 + key.size() * 7 + server * 29 + key.back()) & 0xff);
}

// Random descriptors over a few keys: runs of contiguous fragments, exact
// duplicates, contained and overlapping ranges, gaps, zero lengths.
// Destinations are either on the key's diagonal (arena = key base + offset,
// so overlapping destinations agree) or fresh, disjoint slots.
std::vector<Desc> RandomReads(std::mt19937_64& rng, size_t n, size_t arena_size, size_t* used) {
  const uint64_t kObject = 64 << 10;
  std::vector<Desc> v;
  const size_t keys = 1 + rng() % 8;
  size_t fresh = keys * kObject;  // fresh slots after the diagonals
  auto pick = [&](Desc d) {
    if (rng() % 2 == 0 || fresh + d.length > arena_size) {  // the key's diagonal
      d.mem = std::stoul(d.key.substr(1)) * kObject + d.offset;
    } else {
      d.mem = fresh;
      fresh += d.length;
    }
    v.push_back(d);
  };
  while (v.size() < n) {
    const size_t k = rng() % keys;
    const std::string key = "k" + std::to_string(k);
    const size_t server = k % 3;
    const int shape = static_cast<int>(rng() % 6);
    if (shape == 0 && !v.empty()) {  // duplicate
      v.push_back(v[rng() % v.size()]);
      continue;
    }
    if (shape == 1) {  // zero length
      pick({server, key, rng() % kObject, 0, 0});
      continue;
    }
    if (shape == 2) {  // a run of contiguous fragments
      uint64_t off = rng() % (kObject / 2);
      const size_t frags = 1 + rng() % 16;
      for (size_t i = 0; i < frags && v.size() < n; ++i) {
        const uint64_t len = 1 + rng() % 512;
        if (off + len > kObject) break;
        pick({server, key, off, 0, len});
        off += len;
      }
      continue;
    }
    if (shape == 3 && !v.empty()) {  // contained in an earlier one
      const Desc& o = v[rng() % v.size()];
      if (o.length > 1) {
        const uint64_t b = rng() % o.length, e = b + 1 + rng() % (o.length - b);
        pick({o.server, o.key, o.offset + b, 0, e - b});
        continue;
      }
    }
    const uint64_t off = rng() % kObject;
    const uint64_t len = 1 + rng() % std::min<uint64_t>(4096, kObject - off);
    pick({server, key, off, 0, len});
  }
  *used = std::max(fresh, keys * kObject);
  return v;
}

void ExecuteNaiveRead(const std::vector<Desc>& ds, std::byte* arena) {
  for (const Desc& d : ds)
    for (uint64_t i = 0; i < d.length; ++i)
      arena[d.mem + i] = ObjectByte(d.server, d.key, d.offset + i);
}

// Executes `plan` as the plugin does: one wire op per chunk into its target
// or staging, then the scatter. Returns the bytes on the wire.
uint64_t ExecutePlanRead(const BatchPlan& plan) {
  uint64_t wire = 0;
  std::vector<std::byte> staging;
  for (const PlanChunk& c : plan.chunks()) {
    const PlanGroup& g = plan.groups()[c.group];
    std::byte* dst = c.target;
    if (dst == nullptr) {
      staging.assign(c.length, std::byte{0});
      dst = staging.data();
    }
    for (uint64_t i = 0; i < c.length; ++i) dst[i] = ObjectByte(g.server, g.key, c.offset + i);
    wire += c.length;
    EXPECT_TRUE(ScatterChunk(plan, c, dst).ok());
  }
  return wire;
}

// The measure of the union of each (server, key)'s ranges: what any plan
// must read, no more.
uint64_t UnionBytes(const std::vector<Desc>& ds) {
  std::map<std::pair<size_t, std::string>, std::vector<std::pair<uint64_t, uint64_t>>> by;
  for (const Desc& d : ds)
    if (d.length) by[{d.server, d.key}].emplace_back(d.offset, d.offset + d.length);
  uint64_t total = 0;
  for (auto& [k, rs] : by) {
    std::sort(rs.begin(), rs.end());
    uint64_t b = rs[0].first, e = rs[0].second;
    for (auto [x, y] : rs) {
      if (x > e) {
        total += e - b;
        b = x;
        e = y;
      } else {
        e = std::max(e, y);
      }
    }
    total += e - b;
  }
  return total;
}

void CheckAccounting(const BatchPlan& plan, const std::vector<Desc>& ds) {
  std::vector<int> seen(ds.size(), 0);
  size_t total = 0;
  for (uint32_t c = 0; c < plan.chunks().size(); ++c) {
    const PlanChunk& ch = plan.chunks()[c];
    total += ch.descriptor_count;
    for (uint32_t d : plan.descriptor_order().subspan(ch.first_descriptor, ch.descriptor_count)) {
      ++seen[d];
      EXPECT_EQ(plan.ChunkOf(d), c);
      const Desc& x = ds[d];
      const PlanGroup& g = plan.groups()[ch.group];
      EXPECT_EQ(g.key, x.key);
      EXPECT_EQ(g.server, x.server);
      EXPECT_GE(x.offset, ch.offset);
      EXPECT_LE(x.offset + x.length, ch.offset + ch.length);
    }
  }
  for (size_t d = 0; d < ds.size(); ++d) {
    EXPECT_EQ(seen[d], ds[d].length ? 1 : 0) << "descriptor " << d;
    if (!ds[d].length) EXPECT_EQ(plan.ChunkOf(static_cast<uint32_t>(d)), BatchPlan::kNoChunk);
  }
  size_t nonempty = 0;
  for (const Desc& d : ds) nonempty += d.length != 0;
  EXPECT_EQ(total, nonempty);
}

TEST(BatchPlanTest, RandomReadsLandTheNaiveBytes) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    const size_t n = seed % 10 == 0 ? 5000 : 1 + rng() % 600;
    const size_t arena_size = 8 << 20;
    size_t used = 0;
    auto ds = RandomReads(rng, n, arena_size, &used);
    std::vector<std::byte> naive(arena_size, std::byte{0x5a}), planned(arena_size, std::byte{0x5a});
    ExecuteNaiveRead(ds, naive.data());
    for (const bool optimize : {true, false}) {
      std::fill(planned.begin(), planned.end(), std::byte{0x5a});
      BatchPlan plan(PlanOp::kRead, optimize);
      for (const Desc& d : ds)
        plan.Add(d.server, d.key, d.offset, planned.data() + d.mem, d.length);
      plan.Finish();
      EXPECT_EQ(plan.descriptors(), ds.size());
      const uint64_t wire = ExecutePlanRead(plan);
      ASSERT_TRUE(naive == planned) << "seed " << seed << " optimize " << optimize;
      CheckAccounting(plan, ds);
      EXPECT_EQ(wire, plan.wire_bytes());
      if (optimize) {
        EXPECT_EQ(wire, UnionBytes(ds)) << "seed " << seed;  // no gap read, no byte twice
        // Every chunk is disjoint from and not touching the next of its key.
        for (size_t i = 1; i < plan.chunks().size(); ++i) {
          const auto &a = plan.chunks()[i - 1], &b = plan.chunks()[i];
          if (a.group == b.group) EXPECT_LT(a.offset + a.length, b.offset);
        }
      }
    }
  }
}

// Writes: a byte-addressable store; the later write of a byte wins.
void ApplyWrite(Store& s, size_t server, const std::string& key, uint64_t off, const std::byte* src,
                uint64_t len) {
  auto& v = s[{server, key}];
  if (v.size() < off + len) v.resize(off + len);
  std::memcpy(v.data() + off, src, len);
}

TEST(BatchPlanTest, RandomWritesStoreTheNaiveBytes) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed * 7919);
    const size_t n = seed % 10 == 0 ? 4000 : 1 + rng() % 500;
    std::vector<std::byte> src(1 << 20);
    for (size_t i = 0; i < src.size(); ++i) src[i] = std::byte(rng() & 0xff);
    // Sources: contiguous in memory for runs (mergeable), or anywhere.
    std::vector<Desc> ds;
    while (ds.size() < n) {
      const std::string key = "w" + std::to_string(rng() % 6);
      const size_t server = rng() % 2;
      const int shape = static_cast<int>(rng() % 5);
      if (shape == 0 && !ds.empty()) {
        ds.push_back(ds[rng() % ds.size()]);
      } else if (shape == 1) {
        ds.push_back({server, key, rng() % 8192, rng() % (src.size() - 1), 0});
      } else if (shape == 2) {  // contiguous in both
        uint64_t off = rng() % 8192;
        size_t mem = rng() % (src.size() / 2);
        for (size_t i = 0, f = 1 + rng() % 12; i < f && ds.size() < n; ++i) {
          const uint64_t len = 1 + rng() % 300;
          ds.push_back({server, key, off, mem, len});
          off += len;
          mem += len + (rng() % 4 == 0 ? 1 : 0);  // sometimes not contiguous in memory
        }
      } else {
        const uint64_t len = 1 + rng() % 2000;
        ds.push_back({server, key, rng() % 8192, rng() % (src.size() - len), len});
      }
    }
    Store naive, planned;
    for (const Desc& d : ds)
      if (d.length) ApplyWrite(naive, d.server, d.key, d.offset, src.data() + d.mem, d.length);
    for (const bool optimize : {true, false}) {
      planned.clear();
      BatchPlan plan(PlanOp::kWrite, optimize);
      for (const Desc& d : ds) plan.Add(d.server, d.key, d.offset, src.data() + d.mem, d.length);
      plan.Finish();
      for (const PlanChunk& c : plan.chunks()) {
        const PlanGroup& g = plan.groups()[c.group];
        ApplyWrite(planned, g.server, g.key, c.offset, c.target, c.length);
      }
      ASSERT_TRUE(naive == planned) << "seed " << seed << " optimize " << optimize;
      CheckAccounting(plan, ds);
      uint64_t logical = 0;
      for (const Desc& d : ds) logical += d.length;
      EXPECT_EQ(plan.wire_bytes(), logical);  // writes merge, never drop
    }
  }
}

// Dynamo's onboard: 118 blocks, each 64 fragments (32 layers x K/V) at
// increasing offsets of its object, into a DRAM buffer laid out by layer.
TEST(BatchPlanTest, DynamoOnboardIs118WireOps) {
  const size_t kBlocks = 118, kFrags = 64, kFrag = 512;
  std::vector<std::byte> dram(kBlocks * kFrags * kFrag);
  BatchPlan plan(PlanOp::kRead);
  for (size_t b = 0; b < kBlocks; ++b)
    for (size_t f = 0; f < kFrags; ++f)
      plan.Add(b % 4, "block-" + std::to_string(b), f * kFrag,
               dram.data() + (f * kBlocks + b) * kFrag, kFrag);
  plan.Finish();
  EXPECT_EQ(plan.descriptors(), 7552u);
  EXPECT_EQ(plan.wire_ops(), 118u);
  EXPECT_EQ(plan.wire_bytes(), dram.size());
  for (const PlanChunk& c : plan.chunks()) {
    EXPECT_EQ(c.descriptor_count, kFrags);
    EXPECT_EQ(c.copy_count, kFrags);  // no cover: staged, then 64 copies
    EXPECT_EQ(c.target, nullptr);
  }
  BatchPlan naive(PlanOp::kRead, /*optimize=*/false);
  for (size_t b = 0; b < kBlocks; ++b)
    for (size_t f = 0; f < kFrags; ++f)
      naive.Add(0, "block-" + std::to_string(b), f * kFrag, dram.data() + (f * kBlocks + b) * kFrag,
                kFrag);
  naive.Finish();
  EXPECT_EQ(naive.wire_ops(), 7552u);
}

TEST(BatchPlanTest, CoverIsHoistedAndDuplicatesCollapse) {
  std::vector<std::byte> a(1000), b(1000);
  BatchPlan plan(PlanOp::kRead);
  plan.Add(0, "k", 100, b.data(), 50);       // [100,150) elsewhere
  plan.Add(0, "k", 0, a.data(), 1000);       // the whole chunk: the cover
  plan.Add(0, "k", 10, a.data() + 10, 20);   // inside the cover, same place: dropped
  plan.Add(0, "k", 100, b.data(), 50);       // duplicate: collapses
  plan.Add(0, "k", 150, b.data() + 50, 50);  // continues b in both: one copy
  plan.Finish();
  ASSERT_EQ(plan.wire_ops(), 1u);
  const PlanChunk& c = plan.chunks()[0];
  EXPECT_EQ(c.target, a.data());
  EXPECT_EQ(c.descriptor_count, 5u);
  ASSERT_EQ(c.copy_count, 1u);
  EXPECT_EQ(plan.copies()[c.first_copy].offset, 100u);
  EXPECT_EQ(plan.copies()[c.first_copy].length, 100u);
  EXPECT_EQ(plan.copies()[c.first_copy].memory, b.data());
}

TEST(BatchPlanTest, WritesMergeOnlyWhenContiguousInBoth) {
  std::vector<std::byte> m(100);
  BatchPlan plan(PlanOp::kWrite);
  plan.Add(0, "k", 0, m.data(), 10);
  plan.Add(0, "k", 10, m.data() + 10, 10);  // contiguous in both: merges
  plan.Add(0, "k", 20, m.data() + 40, 10);  // object contiguous, memory not
  plan.Add(0, "j", 30, m.data() + 30, 10);  // another key
  plan.Finish();
  EXPECT_EQ(plan.wire_ops(), 3u);
  ASSERT_EQ(plan.groups().size(), 2u);
  const PlanGroup& k = plan.groups()[1];
  EXPECT_EQ(k.key, "k");
  EXPECT_EQ(k.chunk_count, 2u);
  EXPECT_EQ(plan.chunks()[k.first_chunk].length, 20u);
  auto size = plan.WholeValueSize(k);
  ASSERT_TRUE(size);
  EXPECT_EQ(*size, 30u);
  EXPECT_FALSE(plan.WholeValueSize(plan.groups()[0]));  // j starts at 30: a gap
}

TEST(BatchPlanTest, GatherBuildsTheWholeValue) {
  std::vector<std::byte> m(64);
  for (size_t i = 0; i < m.size(); ++i) m[i] = std::byte(i);
  BatchPlan plan(PlanOp::kWrite);
  // The value [0, 48) from three fragments in reverse memory order.
  plan.Add(0, "k", 0, m.data() + 32, 16);
  plan.Add(0, "k", 16, m.data() + 16, 16);
  plan.Add(0, "k", 32, m.data(), 16);
  plan.Finish();
  EXPECT_EQ(plan.wire_ops(), 3u);
  const PlanGroup& g = plan.groups()[0];
  auto size = plan.WholeValueSize(g);
  ASSERT_TRUE(size);
  ASSERT_EQ(*size, 48u);
  std::vector<std::byte> value(48);
  ASSERT_TRUE(GatherGroup(plan, g, value.data(), value.size()).ok());
  for (size_t i = 0; i < 48; ++i)
    EXPECT_EQ(value[i], m[(i / 16 == 0 ? 32 : i / 16 == 1 ? 16 : 0) + i % 16]) << i;
  EXPECT_FALSE(GatherGroup(plan, g, value.data(), 40).ok());
}

TEST(BatchPlanTest, ScatterFillsHostDestinationsFromStaging) {
  std::vector<std::byte> d1(8), d2(8);
  BatchPlan plan(PlanOp::kRead);
  plan.Add(0, "k", 0, d1.data(), 8);
  plan.Add(0, "k", 8, d2.data(), 8);
  plan.Finish();
  ASSERT_EQ(plan.wire_ops(), 1u);
  const PlanChunk& c = plan.chunks()[0];
  EXPECT_EQ(c.target, nullptr);
  std::vector<std::byte> wire(16);
  for (size_t i = 0; i < 16; ++i) wire[i] = std::byte(i + 1);
  ASSERT_TRUE(ScatterChunk(plan, c, wire.data()).ok());
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(d1[i], std::byte(i + 1));
    EXPECT_EQ(d2[i], std::byte(i + 9));
  }
}

int g_device_copies = 0;
int FakeDeviceCopy(void* dst, const void* src, size_t n) {
  ++g_device_copies;
  std::memcpy(dst, src, n);
  return 0;
}

TEST(BatchPlanTest, DeviceDestinationsGoThroughTheHookAndAreNeverTheCover) {
  std::vector<std::byte> dev(16), host(8);
  BatchPlan plan(PlanOp::kRead);
  plan.Add(0, "k", 0, dev.data(), 16, MemoryKind::kDevice);
  plan.Add(0, "k", 8, host.data(), 8);
  plan.Finish();
  const PlanChunk& c = plan.chunks()[0];
  EXPECT_EQ(c.target, nullptr);  // device memory is staged through host memory
  EXPECT_EQ(c.copy_count, 2u);
  std::vector<std::byte> wire(16, std::byte{7});
  SetDeviceCopy(nullptr);
  EXPECT_EQ(ScatterChunk(plan, c, wire.data()).code, Code::kUnsupported);
  SetDeviceCopy(&FakeDeviceCopy);
  EXPECT_TRUE(ScatterChunk(plan, c, wire.data()).ok());
  EXPECT_EQ(g_device_copies, 1);
  EXPECT_EQ(dev[15], std::byte{7});
  EXPECT_EQ(host[0], std::byte{7});
  SetDeviceCopy(nullptr);
}

// With no hook set, device copies go through the process's CUDA loader
// when it has a driver (here a stand-in driver table), and nowhere without.
TEST(BatchPlanTest, WithoutAHookTheProcessCudaLoaderCopies) {
  SetDeviceCopy(nullptr);
  EXPECT_EQ(GetDeviceCopy(), nullptr);  // this machine: no libcuda.so.1
  testing::FakeGpu gpu;
  common::Cuda fake(gpu.Table());
  common::Cuda::SetProcessForTesting(&fake);
  ASSERT_NE(GetDeviceCopy(), nullptr);
  auto dev = fake.AllocDevice(0, 16);
  ASSERT_TRUE(dev);
  BatchPlan plan(PlanOp::kRead);
  plan.Add(0, "k", 0, *dev, 16, MemoryKind::kDevice);
  plan.Finish();
  std::vector<std::byte> wire(16, std::byte{9});
  EXPECT_TRUE(ScatterChunk(plan, plan.chunks()[0], wire.data()).ok());
  EXPECT_EQ(static_cast<const std::byte*>(*dev)[15], std::byte{9});
  fake.FreeDevice(*dev);
  common::Cuda::SetProcessForTesting(nullptr);
}

TEST(BatchPlanTest, ZeroLengthDescriptorsCompleteWithoutAnOp) {
  std::byte b[4];
  BatchPlan plan(PlanOp::kRead);
  plan.Add(0, "k", 0, b, 0);
  plan.Add(0, "k", 4, b, 0);
  plan.Finish();
  EXPECT_EQ(plan.descriptors(), 2u);
  EXPECT_EQ(plan.wire_ops(), 0u);
  EXPECT_EQ(plan.ChunkOf(0), BatchPlan::kNoChunk);
}

}  // namespace
}  // namespace memkv
