#include "store/index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace memkv::store {
namespace {

std::shared_ptr<Entry> Make(const std::string& key, uint64_t version, int* released = nullptr) {
  auto e = std::make_shared<Entry>();
  e->key = key;
  e->version = version;
  e->value_size = version * 10;
  if (released) e->release = [released](Entry&) { ++*released; };
  return e;
}

TEST(Index, PublishFindRemove) {
  Index idx(4);
  EXPECT_EQ(idx.Find("a"), nullptr);
  EXPECT_EQ(idx.Publish(Make("a", 1)), nullptr);
  ASSERT_NE(idx.Find("a"), nullptr);
  EXPECT_EQ(idx.Find("a")->version, 1u);
  EXPECT_EQ(idx.size(), 1u);
  auto old = idx.Remove("a", 5, 0);
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(idx.Find("a"), nullptr);
  EXPECT_EQ(idx.size(), 0u);
}

TEST(Index, TheHigherVersionWinsInEitherOrder) {
  Index idx(4);
  idx.Publish(Make("k", 5));
  auto refused = idx.Publish(Make("k", 3));
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->version, 3u);
  EXPECT_EQ(idx.Find("k")->version, 5u);
  auto replaced = idx.Publish(Make("k", 9));
  EXPECT_EQ(replaced->version, 5u);
  EXPECT_EQ(idx.Find("k")->version, 9u);
  EXPECT_EQ(idx.size(), 1u);
  EXPECT_EQ(idx.Remove("k", 8, 0), nullptr);  // a delete older than the value
  EXPECT_NE(idx.Find("k"), nullptr);
}

// Drives replay one after another: a put of the key older than a delete
// replayed earlier (from another drive's journal) stays deleted.
TEST(Index, AnOlderPutPublishedAfterADeleteStaysDeleted) {
  Index idx(4);
  EXPECT_EQ(idx.Remove("k", 7, 1), nullptr);  // nothing to remove: a tombstone all the same
  EXPECT_NE(idx.Publish(Make("k", 3)), nullptr);
  EXPECT_EQ(idx.Find("k"), nullptr);
  EXPECT_EQ(idx.tombstones(), 1u);
  EXPECT_EQ(idx.Publish(Make("k", 9)), nullptr);  // newer: replaces the tombstone
  EXPECT_EQ(idx.tombstones(), 0u);
  EXPECT_TRUE(idx.Drop(idx.Find("k")));
  EXPECT_NE(idx.Publish(Make("k", 9)), nullptr);
  const uint64_t tick = idx.Tick();
  idx.PruneTombstones(0, tick);
  EXPECT_EQ(idx.tombstones(), 0u);
  EXPECT_EQ(idx.Publish(Make("k", 4)), nullptr);
}

TEST(Index, StorageIsReleasedOnlyAfterTheLastReader) {
  Index idx(4);
  int released = 0;
  idx.Publish(Make("k", 1, &released));
  EntryRef reader = idx.Find("k");
  idx.Publish(Make("k", 2));
  EXPECT_EQ(released, 0) << "freed under a reader";
  reader.reset();
  EXPECT_EQ(released, 1);
}

TEST(Index, RemoveIfRemovesOnlyTheExpectedEntry) {
  Index idx(4);
  idx.Publish(Make("k", 1));
  EntryRef chosen = idx.Find("k");
  idx.Publish(Make("k", 2));  // overwritten after eviction chose it
  EXPECT_FALSE(idx.RemoveIf(chosen));
  EXPECT_EQ(idx.Find("k")->version, 2u);
  EXPECT_TRUE(idx.RemoveIf(idx.Find("k")));
  EXPECT_EQ(idx.size(), 0u);
}

TEST(Index, ForEachAndSampleSeeEntries) {
  Index idx(8);
  for (int i = 0; i < 1000; ++i) idx.Publish(Make("key" + std::to_string(i), 1));
  size_t n = 0;
  idx.ForEach([&](const EntryRef&) { ++n; });
  EXPECT_EQ(n, 1000u);
  std::mt19937_64 rng(1);
  auto s = idx.Sample(16, rng);
  EXPECT_GE(s.size(), 8u);
  for (auto& e : s) EXPECT_EQ(idx.Find(e->key), e);
}

TEST(Index, ConcurrentWritersAndReadersAgree) {
  Index idx(16);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string key = "k" + std::to_string(i % 500);
        idx.Publish(Make(key, static_cast<uint64_t>(i * 4 + t + 1)));
        if (auto e = idx.Find(key)) ASSERT_EQ(e->key, key);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(idx.size(), 500u);
  for (int i = 0; i < 500; ++i) {
    // The winner is the highest version any thread wrote for the key.
    const uint64_t last_i = 4500 + i;
    EXPECT_EQ(idx.Find("k" + std::to_string(i))->version, last_i * 4 + 4);
  }
}

std::vector<std::string> Keys(const std::vector<EntryRef>& es) {
  std::vector<std::string> out;
  for (const EntryRef& e : es) out.push_back(e->key);
  return out;
}

TEST(Index, ListIsInKeyOrderByPrefixAfterAnExclusiveCursor) {
  Index idx(8);
  for (const char* k : {"b/1", "a/03", "a", "a/01", "a/10", "a/02", "ab", "c"})
    idx.Publish(Make(k, 1));
  bool more = false;
  EXPECT_EQ(Keys(idx.List("a/", "", 2, &more)), (std::vector<std::string>{"a/01", "a/02"}));
  EXPECT_TRUE(more);
  EXPECT_EQ(Keys(idx.List("a/", "a/02", 2, &more)), (std::vector<std::string>{"a/03", "a/10"}));
  EXPECT_FALSE(more);  // no key of the prefix past a/10
  EXPECT_EQ(Keys(idx.List("a/", "a/10", 2, &more)), std::vector<std::string>{});
  EXPECT_FALSE(more);
  // A cursor that is not a key, and one before the prefix's keys.
  EXPECT_EQ(Keys(idx.List("a/", "a/025", 1, &more)), std::vector<std::string>{"a/03"});
  EXPECT_TRUE(more);
  EXPECT_EQ(Keys(idx.List("a/", "0", 1, &more)), std::vector<std::string>{"a/01"});
  EXPECT_EQ(Keys(idx.List("", "", 100, &more)),
            (std::vector<std::string>{"a", "a/01", "a/02", "a/03", "a/10", "ab", "b/1", "c"}));
  EXPECT_FALSE(more);
  EXPECT_EQ(Keys(idx.List("z", "", 100, &more)), std::vector<std::string>{});
}

TEST(Index, ListFollowsReplaceAndEveryKindOfRemoval) {
  Index idx(4);
  auto a1 = Make("a", 1);
  idx.Publish(a1);
  idx.Publish(Make("b", 1));
  idx.Publish(Make("c", 1));
  idx.Publish(Make("d", 1));
  // Replaced: listed once, as the new entry, and the old entry's string may
  // go (the ordered set must view the new one's).
  idx.Publish(Make("a", 2));
  a1.reset();
  auto listed = idx.List("", "", 10);
  ASSERT_EQ(Keys(listed), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(listed[0]->version, 2u);
  listed.clear();
  idx.Remove("b", 5, 0);
  EXPECT_TRUE(idx.RemoveIf(idx.Find("c")));
  EXPECT_TRUE(idx.Drop(idx.Find("d")));
  EXPECT_EQ(Keys(idx.List("", "", 10)), std::vector<std::string>{"a"});
  // Removed keys come back in order when published again.
  idx.Publish(Make("c", 9));
  idx.Publish(Make("b", 9));
  EXPECT_EQ(Keys(idx.List("", "", 10)), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Index, ListPagesThroughManyKeysAcrossShardsWithoutLosingOrDuplicating) {
  Index idx(64);
  std::vector<std::string> want;
  for (int i = 0; i < 3000; ++i) {
    const std::string k = "p/" + std::to_string(i * 7919 % 3001);
    idx.Publish(Make(k, 1));
    want.push_back(k);
    idx.Publish(Make("q/" + std::to_string(i), 1));  // another prefix, interleaved
  }
  std::sort(want.begin(), want.end());
  std::vector<std::string> got;
  std::string cursor;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 1000);
    bool more = false;
    auto page = idx.List("p/", cursor, 97, &more);
    for (const auto& e : page) got.push_back(e->key);
    if (!more) break;
    ASSERT_EQ(page.size(), 97u);
    cursor = page.back()->key;
  }
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace memkv::store
