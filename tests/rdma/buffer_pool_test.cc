// BufferPool: the rdma rail's registered memory for unregistered values:
// slabs registered once and reused, oversized values registered alone, the
// memory kept between requests capped, errors passed on.

#include "rdma/buffer_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

namespace memkv::rdma {
namespace {

// Counts registrations and the handles still alive (not yet deregistered).
class CountingRegistrar final : public Registrar {
 public:
  Result<std::shared_ptr<const void>> Register(const MemoryDescriptor& m, std::string*) override {
    void* base = m.base;
    const size_t size = m.size;
    calls.fetch_add(1);
    if (fail.load()) return boost::system::errc::make_error_code(boost::system::errc::io_error);
    live.fetch_add(1);
    auto* range = new std::pair<void*, size_t>(base, size);
    return std::shared_ptr<const void>(range, [this](const std::pair<void*, size_t>* r) {
      live.fetch_sub(1);
      delete r;
    });
  }
  std::atomic<int> calls{0};
  std::atomic<int> live{0};
  std::atomic<bool> fail{false};
};

// The registered range a place's handle names.
const std::pair<void*, size_t>& RangeOf(const BufferPool::Lease::Place& p) {
  return *static_cast<const std::pair<void*, size_t>*>(p.handle);
}

bool Inside(const BufferPool::Lease::Place& p, size_t n) {
  const auto& [base, size] = RangeOf(p);
  const auto* b = static_cast<const std::byte*>(base);
  return p.data >= b && p.data + n <= b + size;
}

TEST(BufferPool, PacksARequestIntoOneRegisteredSlabAndReusesIt) {
  auto reg = std::make_shared<CountingRegistrar>();
  auto pool = BufferPool::Create(reg, {.slab_size = 1 << 20, .max_idle_slabs = 2});
  std::vector<std::byte*> seen;
  {
    auto lease = pool->NewLease();
    for (int i = 0; i < 100; ++i) {
      auto p = lease->Take(4096);
      ASSERT_TRUE(p);
      EXPECT_TRUE(Inside(*p, 4096));
      std::memset(p->data, i, 4096);  // each place its own bytes
      seen.push_back(p->data);
    }
    for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i][4095], std::byte(i)) << i;
  }
  EXPECT_EQ(reg->calls.load(), 1);
  EXPECT_EQ(pool->stats().idle_slabs, 1u);
  EXPECT_EQ(reg->live.load(), 1);  // kept registered for the next request
  auto again = pool->NewLease();
  auto p = again->Take(1000);
  ASSERT_TRUE(p);
  EXPECT_EQ(reg->calls.load(), 1);  // no registration for the second request
  EXPECT_EQ(p->data, seen[0]);
}

TEST(BufferPool, ARequestLargerThanASlabTakesMoreSlabs) {
  auto reg = std::make_shared<CountingRegistrar>();
  auto pool = BufferPool::Create(reg, {.slab_size = 64 << 10, .max_idle_slabs = 8});
  auto lease = pool->NewLease();
  std::set<const void*> handles;
  for (int i = 0; i < 40; ++i) {  // 40 x 5000 bytes: 4 slabs of 12 values (5056 aligned)
    auto p = lease->Take(5000);
    ASSERT_TRUE(p);
    EXPECT_TRUE(Inside(*p, 5000));
    handles.insert(p->handle);
  }
  EXPECT_EQ(handles.size(), 4u);
  EXPECT_EQ(reg->calls.load(), 4);
}

TEST(BufferPool, AnOversizedValueIsRegisteredAloneAndReleasedWithItsLease) {
  auto reg = std::make_shared<CountingRegistrar>();
  auto pool = BufferPool::Create(reg, {.slab_size = 64 << 10, .max_idle_slabs = 4});
  {
    auto lease = pool->NewLease();
    auto big = lease->Take(1 << 20);
    ASSERT_TRUE(big);
    EXPECT_TRUE(Inside(*big, 1 << 20));
    std::memset(big->data, 7, 1 << 20);
    EXPECT_EQ(reg->live.load(), 1);
  }
  EXPECT_EQ(reg->live.load(), 0);  // not kept: it was no slab
  EXPECT_EQ(pool->stats().idle_slabs, 0u);
}

TEST(BufferPool, KeepsAtMostMaxIdleSlabsRegisteredBetweenRequests) {
  auto reg = std::make_shared<CountingRegistrar>();
  auto pool = BufferPool::Create(reg, {.slab_size = 4096, .max_idle_slabs = 2});
  {
    std::vector<std::unique_ptr<BufferPool::Lease>> leases;
    for (int i = 0; i < 5; ++i) {  // five requests at once: five slabs
      leases.push_back(pool->NewLease());
      ASSERT_TRUE(leases.back()->Take(4096));
    }
    EXPECT_EQ(reg->live.load(), 5);
  }
  EXPECT_EQ(pool->stats().idle_slabs, 2u);
  EXPECT_EQ(reg->live.load(), 2);  // the other three deregistered
}

TEST(BufferPool, ARegistrationThatFailsIsTheRequestsError) {
  auto reg = std::make_shared<CountingRegistrar>();
  auto pool = BufferPool::Create(reg, {.slab_size = 4096, .max_idle_slabs = 2});
  reg->fail = true;
  auto lease = pool->NewLease();
  auto p = lease->Take(100);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), boost::system::errc::make_error_code(boost::system::errc::io_error));
  reg->fail = false;
  EXPECT_TRUE(lease->Take(100));  // the pool is still usable
}

TEST(BufferPool, ConcurrentRequestsNeverShareBytes) {
  auto reg = std::make_shared<CountingRegistrar>();
  auto pool = BufferPool::Create(reg, {.slab_size = 16 << 10, .max_idle_slabs = 4});
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        auto lease = pool->NewLease();
        std::vector<std::byte*> mine;
        for (int k = 0; k < 6; ++k) {
          auto p = lease->Take(3000);
          if (!p) return bad.fetch_add(1), void();
          std::memset(p->data, t * 16 + k, 3000);
          mine.push_back(p->data);
        }
        for (int k = 0; k < 6; ++k)
          for (size_t i = 0; i < 3000; i += 499)
            if (mine[k][i] != std::byte(t * 16 + k)) bad.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(pool->stats().idle_slabs, 4u);
  EXPECT_EQ(reg->live.load(), static_cast<int>(pool->stats().idle_slabs));
}

}  // namespace
}  // namespace memkv::rdma
