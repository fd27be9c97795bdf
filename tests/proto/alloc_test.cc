// Decoding a 7,500-entry batch allocates nothing per entry: at most once for
// a fresh message, and not at all into a message that has decoded one before.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "proto/messages.h"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace memkv::proto {
namespace {

class DecodeAllocations : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 7500; ++i) keys_.push_back("blk/" + std::to_string(i * 7919));
  }
  long Count(const std::function<void()>& f) {
    const long before = g_allocations.load();
    f();
    return g_allocations.load() - before;
  }
  std::vector<std::string> keys_;
};

TEST_F(DecodeAllocations, BatchRead) {
  BatchReadRequest m;
  m.batch = {7500, 0, 7500};
  for (const auto& k : keys_) m.entries.push_back({k, 0, 4096, {LocationKind::kShm, 1, 0, 4096}});
  Buffer b;
  Encode(m, b);
  BatchReadRequest d;
  EXPECT_LE(Count([&] { ASSERT_TRUE(Decode(b, {}, d)); }), 1);
  EXPECT_EQ(Count([&] { ASSERT_TRUE(Decode(b, {}, d)); }), 0);
  EXPECT_EQ(d.entries.size(), 7500u);
}

TEST_F(DecodeAllocations, BatchWrite) {
  BatchWriteRequest m;
  m.batch = {7500, 0, 7500};
  for (const auto& k : keys_) m.entries.push_back({k, 4096, 1, {LocationKind::kShm, 1, 0, 4096}});
  Buffer b;
  Encode(m, b);
  BatchWriteRequest d;
  EXPECT_LE(Count([&] { ASSERT_TRUE(Decode(b, {}, d)); }), 1);
  EXPECT_EQ(Count([&] { ASSERT_TRUE(Decode(b, {}, d)); }), 0);
}

TEST_F(DecodeAllocations, KeysAndReplies) {
  KeysRequest m;
  m.batch = {7500, 0, 7500};
  for (const auto& k : keys_) m.keys.push_back(k);
  Buffer b;
  Encode(m, b);
  KeysRequest d;
  EXPECT_LE(Count([&] { ASSERT_TRUE(Decode(b, d)); }), 1);
  EXPECT_EQ(Count([&] { ASSERT_TRUE(Decode(b, d)); }), 0);

  BatchReadReply r;
  r.batch = {7500, 0, 7500};
  r.results.assign(7500, ReadResult{StatusCode::kOk, Delivery::kPlaced, 4096, 4096, 1});
  Buffer rb;
  Encode(r, rb);
  BatchReadReply rd;
  EXPECT_LE(Count([&] { ASSERT_TRUE(Decode(rb, {}, rd)); }), 1);
  EXPECT_EQ(Count([&] { ASSERT_TRUE(Decode(rb, {}, rd)); }), 0);
}

}  // namespace
}  // namespace memkv::proto
