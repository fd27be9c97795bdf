#include "store/allocator.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace memkv::store {
namespace {

TEST(PageAllocator, HandsOutDisjointRunsUntilFull) {
  PageAllocator a(1000);
  std::vector<std::pair<uint64_t, uint32_t>> runs;
  uint64_t total = 0;
  for (uint32_t n : {1u, 7u, 64u, 65u, 130u, 3u}) {
    auto p = a.Allocate(n);
    ASSERT_TRUE(p) << n;
    runs.push_back({*p, n});
    total += n;
  }
  EXPECT_EQ(a.used_pages(), total);
  std::set<uint64_t> seen;
  for (auto [p, n] : runs)
    for (uint64_t i = p; i < p + n; ++i) {
      EXPECT_LT(i, 1000u);
      EXPECT_TRUE(seen.insert(i).second) << "page " << i << " handed out twice";
      EXPECT_TRUE(a.IsUsed(i));
    }
  EXPECT_FALSE(a.Allocate(1000 - static_cast<uint32_t>(total) + 1));
  EXPECT_TRUE(a.Allocate(1000 - static_cast<uint32_t>(total)));
  EXPECT_EQ(a.free_pages(), 0u);
  EXPECT_FALSE(a.Allocate(1));
}

TEST(PageAllocator, FreedPagesAreReused) {
  PageAllocator a(128);
  auto p = a.Allocate(128);
  ASSERT_TRUE(p);
  a.Free(10, 20);
  EXPECT_EQ(a.free_pages(), 20u);
  EXPECT_FALSE(a.Allocate(21));
  auto q = a.Allocate(20);
  ASSERT_TRUE(q);
  EXPECT_EQ(*q, 10u);
}

TEST(PageAllocator, FindsARunAcrossWordBoundaries) {
  PageAllocator a(256);
  ASSERT_TRUE(a.MarkUsed(0, 60));
  ASSERT_TRUE(a.MarkUsed(70, 100));
  auto p = a.Allocate(10);  // 60..69 spans words 0 and 1
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 60u);
  auto q = a.Allocate(80);
  ASSERT_TRUE(q);
  EXPECT_EQ(*q, 170u);
}

TEST(PageAllocator, DoubleFreeIsCountedNotApplied) {
  PageAllocator a(64);
  auto p = a.Allocate(4);
  a.Free(*p, 4);
  a.Free(*p, 4);
  EXPECT_EQ(a.double_frees(), 1u);
  EXPECT_EQ(a.used_pages(), 0u);
  a.Free(60, 10);  // outside the region
  EXPECT_EQ(a.double_frees(), 2u);
}

TEST(PageAllocator, MarkUsedRefusesOverlapsAndOutOfRange) {
  PageAllocator a(100);
  EXPECT_TRUE(a.MarkUsed(10, 10));
  EXPECT_FALSE(a.MarkUsed(19, 2));
  EXPECT_FALSE(a.MarkUsed(95, 10));
  EXPECT_FALSE(a.MarkUsed(0, 0));
  EXPECT_EQ(a.used_pages(), 10u);
}

TEST(PageAllocator, BitmapSurvivesSerializeAndLoad) {
  PageAllocator a(1000);
  ASSERT_TRUE(a.MarkUsed(3, 50));
  ASSERT_TRUE(a.MarkUsed(900, 99));
  PageAllocator b(1000);
  ASSERT_TRUE(b.Load(a.Serialize()));
  EXPECT_EQ(b.used_pages(), 149u);
  for (uint64_t p = 0; p < 1000; ++p) EXPECT_EQ(a.IsUsed(p), b.IsUsed(p)) << p;
  PageAllocator c(999);
  EXPECT_TRUE(c.Load(a.Serialize()));  // same word count: accepted, tail masked
  PageAllocator d(2000);
  EXPECT_FALSE(d.Load(a.Serialize()));
}

TEST(PageAllocator, RandomWorkloadKeepsTheCountAndNeverOverlaps) {
  PageAllocator a(4096);
  std::mt19937_64 rng(42);
  std::vector<std::pair<uint64_t, uint32_t>> live;
  std::vector<int> owner(4096, -1);
  for (int step = 0; step < 20000; ++step) {
    if (!live.empty() && rng() % 3 == 0) {
      const size_t i = rng() % live.size();
      a.Free(live[i].first, live[i].second);
      for (uint64_t p = live[i].first; p < live[i].first + live[i].second; ++p) owner[p] = -1;
      live[i] = live.back();
      live.pop_back();
    } else {
      const uint32_t n = 1 + rng() % 40;
      auto p = a.Allocate(n);
      if (!p) continue;
      for (uint64_t q = *p; q < *p + n; ++q) {
        ASSERT_EQ(owner[q], -1) << "page " << q << " handed out while in use";
        owner[q] = step;
      }
      live.push_back({*p, n});
    }
    uint64_t used = 0;
    for (auto& r : live) used += r.second;
    ASSERT_EQ(a.used_pages(), used);
  }
  EXPECT_EQ(a.double_frees(), 0u);
}

}  // namespace
}  // namespace memkv::store
