#include "store/dram_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace memkv::store {
namespace {

Buffer Value(size_t size, uint8_t fill) { return Buffer(size, std::byte{fill}); }

std::string AsString(const CachedValue& v) {
  return {reinterpret_cast<const char*>(v.bytes.data()), v.bytes.size()};
}

Bytes AsBytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(DramCache, HitAndMiss) {
  DramCache cache(1 << 20, 1);
  EXPECT_EQ(cache.Lookup("k", 1), nullptr);
  cache.Insert("k", 1, AsBytes("hello"));
  auto hit = cache.Lookup("k", 1);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(AsString(*hit), "hello");
  EXPECT_EQ(hit->key, "k");
  EXPECT_EQ(hit->version, 1u);
  EXPECT_EQ(cache.Lookup("other", 1), nullptr);
  const DramCacheStats st = cache.stats();
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 2u);
  EXPECT_EQ(st.entries, 1u);
  EXPECT_EQ(st.bytes, 1u + 5u);  // key and value
  EXPECT_EQ(st.evictions, 0u);
}

TEST(DramCache, AnotherVersionNeverHits) {
  DramCache cache(1 << 20, 1);
  cache.Insert("k", 2, AsBytes("two"));
  // A reader that knows an older version (its index lookup raced the put)
  // misses, and the newer copy stays.
  EXPECT_EQ(cache.Lookup("k", 1), nullptr);
  EXPECT_NE(cache.Lookup("k", 2), nullptr);
  // An older copy inserted late (a slow read's fill) does not replace it.
  cache.Insert("k", 1, AsBytes("one"));
  auto hit = cache.Lookup("k", 2);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(AsString(*hit), "two");
  // The value was overwritten: the stale copy misses and is dropped.
  EXPECT_EQ(cache.Lookup("k", 3), nullptr);
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().bytes, 0u);
  // A newer copy replaces an older one, and the charge follows.
  cache.Insert("k", 4, AsBytes("four"));
  cache.Insert("k", 5, AsBytes("five!"));
  EXPECT_EQ(cache.Lookup("k", 4), nullptr);
  hit = cache.Lookup("k", 5);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(AsString(*hit), "five!");
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(cache.stats().bytes, 1u + 5u);
}

TEST(DramCache, EvictsInLeastRecentlyUsedOrder) {
  // Room for exactly eight copies of 2-byte keys and 100-byte values.
  DramCache cache(8 * 102, 1);
  for (int i = 0; i < 8; ++i) cache.Insert("k" + std::to_string(i), 1, Value(100, i));
  EXPECT_EQ(cache.stats().entries, 8u);
  EXPECT_EQ(cache.stats().evictions, 0u);
  // k0 and k1 are used again: k2 is now the least recently used.
  ASSERT_NE(cache.Lookup("k0", 1), nullptr);
  ASSERT_NE(cache.Lookup("k1", 1), nullptr);
  cache.Insert("k8", 1, Value(100, 8));
  EXPECT_EQ(cache.Lookup("k2", 1), nullptr);
  cache.Insert("k9", 1, Value(100, 9));
  EXPECT_EQ(cache.Lookup("k3", 1), nullptr);
  for (const char* k : {"k0", "k1", "k4", "k5", "k6", "k7", "k8", "k9"})
    EXPECT_NE(cache.Lookup(k, 1), nullptr) << k;
  EXPECT_EQ(cache.stats().evictions, 2u);
  EXPECT_EQ(cache.stats().entries, 8u);
  EXPECT_EQ(cache.stats().bytes, 8u * 102);
}

TEST(DramCache, LargeValuesAreNotCached) {
  DramCache one(8000, 1);
  EXPECT_EQ(one.max_value_bytes(), 1000u);
  one.Insert("big", 1, Value(1001, 1));
  EXPECT_EQ(one.Lookup("big", 1), nullptr);
  one.Insert("fits", 1, Value(1000, 1));
  EXPECT_NE(one.Lookup("fits", 1), nullptr);
  // With 16 shards a shard's share (1000 bytes) is the tighter bound.
  DramCache sharded(16000, 16);
  EXPECT_EQ(sharded.max_value_bytes(), 1000u);
  sharded.Insert("big", 1, Value(1500, 1));
  EXPECT_EQ(sharded.Lookup("big", 1), nullptr);
  EXPECT_EQ(sharded.stats().entries, 0u);
  // A zero-capacity cache caches nothing.
  DramCache none(0);
  none.Insert("k", 1, Value(1, 1));
  EXPECT_EQ(none.Lookup("k", 1), nullptr);
}

TEST(DramCache, CapacityIsNeverExceeded) {
  DramCache cache(64 << 10, 16);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 20'000; ++i) {
    const std::string key = "key-" + std::to_string(rng() % 3000);
    cache.Insert(key, rng() % 4, Value(rng() % cache.max_value_bytes(), 7));
    const DramCacheStats st = cache.stats();
    ASSERT_LE(st.bytes, cache.capacity()) << "after insert " << i;
  }
  EXPECT_GT(cache.stats().evictions, 0u);
}

TEST(DramCache, EraseDropsTheCopyWhateverItsVersion) {
  DramCache cache(1 << 20, 4);
  cache.Insert("a", 7, AsBytes("value"));
  cache.Insert("b", 1, AsBytes("value"));
  cache.Erase("a");
  cache.Erase("absent");
  EXPECT_EQ(cache.Lookup("a", 7), nullptr);
  EXPECT_NE(cache.Lookup("b", 1), nullptr);
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(cache.stats().bytes, 1u + 5u);
  EXPECT_EQ(cache.stats().evictions, 0u);
  // After an erase an older version may be cached again.
  cache.Insert("a", 3, AsBytes("older"));
  EXPECT_NE(cache.Lookup("a", 3), nullptr);
}

TEST(DramCache, AReadersCopySurvivesEvictionAndErase) {
  DramCache cache(8 * 1024, 1);
  cache.Insert("held", 1, Value(1000, 0xab));
  auto held = cache.Lookup("held", 1);
  ASSERT_NE(held, nullptr);
  for (int i = 0; i < 100; ++i) cache.Insert("other" + std::to_string(i), 1, Value(1000, 1));
  EXPECT_EQ(cache.Lookup("held", 1), nullptr) << "expected it evicted";
  auto erased = [&] {
    cache.Insert("gone", 1, Value(1000, 0xcd));
    auto r = cache.Lookup("gone", 1);
    cache.Erase("gone");
    return r;
  }();
  ASSERT_EQ(held->bytes.size(), 1000u);
  for (std::byte b : held->bytes) ASSERT_EQ(b, std::byte{0xab});
  ASSERT_NE(erased, nullptr);
  for (std::byte b : erased->bytes) ASSERT_EQ(b, std::byte{0xcd});
}

TEST(DramCache, ConcurrentInsertsAndLookups) {
  DramCache cache(256 << 10, 16);
  constexpr int kThreads = 4;
  constexpr int kKeys = 400;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  std::atomic<int> over{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 20'000; ++i) {
        const uint64_t k = rng() % kKeys;
        const uint64_t version = rng() % 3;
        const std::string key = "key-" + std::to_string(k);
        // A value says which key and version it is, so a wrong hit shows.
        const std::string value = key + "@" + std::to_string(version) +
                                  std::string(rng() % 4000, static_cast<char>('a' + version));
        switch (rng() % 4) {
          case 0:
          case 1:
            cache.Insert(key, version, AsBytes(value));
            break;
          case 2:
            if (auto hit = cache.Lookup(key, version)) {
              const std::string got = AsString(*hit);
              const std::string want = key + "@" + std::to_string(version);
              if (got.compare(0, want.size(), want) != 0 || hit->version != version) ++wrong;
            }
            break;
          case 3:
            if (rng() % 16 == 0) cache.Erase(key);
            if (cache.stats().bytes > cache.capacity()) ++over;
            break;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(over.load(), 0);
  const DramCacheStats st = cache.stats();
  EXPECT_LE(st.bytes, cache.capacity());
  EXPECT_GT(st.hits, 0u);
  EXPECT_GT(st.entries, 0u);
}

}  // namespace
}  // namespace memkv::store
