#include "io/buffer_pool.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/error.h"
#include "test_util.h"

namespace memkv::io {
namespace {

using testing::RunSync;
using testing::Spawn;
namespace asio = boost::asio;

std::unique_ptr<BufferPool> SmallPool(uint32_t count, uint32_t max_waiting = 16) {
  auto pool = BufferPool::Create(
      {.chunk_size = 64 * 1024, .count = count, .huge_pages = false, .max_waiting = max_waiting});
  EXPECT_TRUE(pool);
  return std::move(*pool);
}

TEST(BufferPoolTest, HandsOutAlignedDisjointBuffersUntilExhausted) {
  auto pool = SmallPool(4);
  std::vector<Buffer> held;
  std::set<std::byte*> seen;
  for (int i = 0; i < 4; ++i) {
    auto b = pool->TryAcquire();
    ASSERT_TRUE(b);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % 4096, 0u);
    EXPECT_EQ(b->size(), 64u * 1024);
    std::memset(b->data(), i + 1, b->size());  // writable, and no overlap below
    seen.insert(b->data());
    held.push_back(std::move(*b));
  }
  EXPECT_EQ(seen.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(held[i].data()[held[i].size() - 1], std::byte(i + 1));
  EXPECT_EQ(pool->in_use(), 4u);
  EXPECT_EQ(pool->TryAcquire().error(), errc::pool_exhausted);

  held.pop_back();  // the handle gives its buffer back
  EXPECT_EQ(pool->in_use(), 3u);
  auto again = pool->TryAcquire();
  ASSERT_TRUE(again);
  again->Release();
  EXPECT_FALSE(*again);
  held.clear();
  EXPECT_EQ(pool->in_use(), 0u);  // back to the baseline
}

TEST(BufferPoolTest, MovingAHandleMovesTheBufferNotACopy) {
  auto pool = SmallPool(1);
  Buffer a = pool->TryAcquire().value();
  std::byte* p = a.data();
  Buffer b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_EQ(b.data(), p);
  Buffer c;
  c = std::move(b);
  EXPECT_EQ(pool->in_use(), 1u);
  c = Buffer();
  EXPECT_EQ(pool->in_use(), 0u);
}

TEST(BufferPoolTest, AcquireWaitsForAReturnAndServesWaitersInOrder) {
  asio::io_context ctx;
  auto pool = SmallPool(1);
  auto held = pool->TryAcquire().value();
  std::vector<int> order;
  auto waiter = [](BufferPool& pool, int id, std::vector<int>& order) -> asio::awaitable<int> {
    auto b = co_await pool.Acquire();
    if (!b) co_return -1;
    order.push_back(id);
    // Hold it for one loop turn, then give it to the next waiter.
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    co_return id;
  };
  std::optional<int> r1, r2, r3;
  Spawn(ctx, waiter(*pool, 1, order), r1);
  Spawn(ctx, waiter(*pool, 2, order), r2);
  Spawn(ctx, waiter(*pool, 3, order), r3);
  // Let all three queue up, then return the buffer.
  while (pool->waiting() < 3) ctx.run_one();
  held.Release();
  ctx.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(r3.value(), 3);
  EXPECT_EQ(pool->in_use(), 0u);
}

TEST(BufferPoolTest, TooManyWaitersAreRefused) {
  asio::io_context ctx;
  auto pool = SmallPool(1, /*max_waiting=*/1);
  auto held = pool->TryAcquire().value();
  std::optional<Result<Buffer>> first, second;
  Spawn(ctx, pool->Acquire(), first);
  Spawn(ctx, pool->Acquire(), second);
  while (!second.has_value()) ctx.run_one();
  EXPECT_EQ(second->error(), errc::overloaded);
  held.Release();
  ctx.run();
  ASSERT_TRUE(first.value());
  first.reset();
  EXPECT_EQ(pool->in_use(), 0u);
}

TEST(BufferPoolTest, RefusesBadOptions) {
  EXPECT_EQ(BufferPool::Create({.chunk_size = 1000}).error(), errc::bad_option);
  EXPECT_EQ(BufferPool::Create({.chunk_size = 0}).error(), errc::bad_option);
  EXPECT_EQ(BufferPool::Create({.count = 0}).error(), errc::bad_option);
}

uint64_t MeminfoValue(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  uint64_t v = 0;
  std::string unit;
  while (in >> k >> v) {
    std::getline(in, unit);
    if (k == key + ":") return v;
  }
  return 0;
}

TEST(BufferPoolTest, FallsBackToOrdinaryPagesWhenHugePagesAreShort) {
  // More huge pages than are free: MAP_HUGETLB must fail, the pool must not.
  // The margin covers UsesHugePagesWhenReserved, which may reserve 4 more
  // at the same moment (ctest -j runs the two side by side).
  const uint64_t free_pages = MeminfoValue("HugePages_Free");
  const uint64_t huge = MeminfoValue("Hugepagesize") * 1024;
  if (huge == 0) GTEST_SKIP() << "no huge page support in /proc/meminfo";
  auto pool = BufferPool::Create(
      {.chunk_size = huge, .count = static_cast<uint32_t>(free_pages + 9), .huge_pages = true});
  ASSERT_TRUE(pool);
  EXPECT_FALSE((*pool)->huge_pages());
  auto b = (*pool)->TryAcquire();
  ASSERT_TRUE(b);
  std::memset(b->data(), 1, b->size());
}

// Reserves a few huge pages for the test (root), and gives them back after.
class HugePages {
 public:
  bool Reserve(uint64_t extra) {
    std::ifstream in("/proc/sys/vm/nr_hugepages");
    if (!(in >> before_)) return false;
    std::ofstream out("/proc/sys/vm/nr_hugepages");
    if (!(out << before_ + extra)) return false;
    out.close();
    touched_ = true;
    return MeminfoValue("HugePages_Free") >= extra;
  }
  ~HugePages() {
    if (touched_) std::ofstream("/proc/sys/vm/nr_hugepages") << before_;
  }

 private:
  uint64_t before_ = 0;
  bool touched_ = false;
};

TEST(BufferPoolTest, UsesHugePagesWhenReserved) {
  HugePages reservation;
  if (!reservation.Reserve(4)) GTEST_SKIP() << "cannot reserve huge pages (vm.nr_hugepages)";
  const uint64_t huge = MeminfoValue("Hugepagesize") * 1024;
  {
    auto pool = BufferPool::Create({.chunk_size = 512 * 1024, .count = 8, .huge_pages = true});
    ASSERT_TRUE(pool);
    EXPECT_TRUE((*pool)->huge_pages());
    EXPECT_EQ((*pool)->region().size() % huge, 0u);
    auto b = (*pool)->TryAcquire().value();
    std::memset(b.data(), 7, b.size());
  }
}

}  // namespace
}  // namespace memkv::io
