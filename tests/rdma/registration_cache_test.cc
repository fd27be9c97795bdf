// The registration cache: one registration per range however many threads
// ask at once, first registrations of different ranges in parallel outside
// the lock, and deregistration that releases the NIC registration once the
// last user lets go.

#include "rdma/registration_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "rdma/error.h"

namespace memkv::rdma {
namespace {

// A stand-in for the NIC: records every registration and deregistration and
// how many ran at once. With `gate` > 1 each call waits (at most 30 s, so
// that a cache that serializes its slow paths fails instead of hanging)
// until that many calls are inside together.
class RecordingRegistrar final : public Registrar {
 public:
  explicit RecordingRegistrar(int gate = 1) : gate_(gate) {}

  Result<std::shared_ptr<const void>> Register(void* base, size_t size) override {
    std::unique_lock lock(mu_);
    ++calls_[{base, size}];
    ++inside_;
    max_inside_ = std::max(max_inside_, inside_);
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return max_inside_ >= gate_; });
    --inside_;
    if (fail_next_) {
      fail_next_ = false;
      return errc::transfer_failed;
    }
    auto* token = new int(0);
    return std::shared_ptr<const void>(token, [this](const int* t) {
      delete t;
      deregistered_.fetch_add(1);
    });
  }

  std::map<std::pair<void*, size_t>, int> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  int max_inside() const {
    std::lock_guard lock(mu_);
    return max_inside_;
  }
  void FailNext() {
    std::lock_guard lock(mu_);
    fail_next_ = true;
  }
  int deregistered() const { return deregistered_.load(); }

 private:
  const int gate_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<void*, size_t>, int> calls_;
  int inside_ = 0;
  int max_inside_ = 0;
  bool fail_next_ = false;
  std::atomic<int> deregistered_{0};
};

TEST(RegistrationCache, SixteenThreadsRegisterEachRangeOnceWithSlowPathsInParallel) {
  std::vector<std::byte> mem(8 << 20);
  std::byte* m = mem.data();
  // Four ranges: b overlaps a (neither inside the other), c and d apart.
  const std::vector<std::pair<std::byte*, size_t>> ranges = {
      {m, 1 << 20}, {m + (512 << 10), 1 << 20}, {m + (2 << 20), 1 << 20},
      {m + (4 << 20), 64 << 10}};
  auto registrar = std::make_shared<RecordingRegistrar>(/*gate=*/4);
  RegistrationCache cache(registrar);

  constexpr int kThreads = 16;
  std::latch start(kThreads);
  std::mutex mu;
  std::map<size_t, std::set<uint64_t>> ids;  // range index -> ids seen
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (size_t k = 0; k < ranges.size(); ++k) {
        const size_t i = (t + k) % ranges.size();  // every range has early callers
        auto r = cache.Register(ranges[i].first, ranges[i].second);
        ASSERT_TRUE(r) << r.error().message();
        std::lock_guard lock(mu);
        ids[i].insert((*r)->id);
      }
    });
  }
  for (auto& th : threads) th.join();

  // One registration per range, and the four slow paths ran at once.
  const auto calls = registrar->calls();
  EXPECT_EQ(calls.size(), ranges.size());
  for (const auto& [range, n] : calls) EXPECT_EQ(n, 1);
  EXPECT_EQ(cache.registrar_calls(), ranges.size());
  EXPECT_EQ(registrar->max_inside(), 4);
  ASSERT_EQ(ids.size(), ranges.size());
  for (const auto& [i, seen] : ids) EXPECT_EQ(seen.size(), 1u) << "range " << i;
  EXPECT_EQ(cache.size(), ranges.size());

  // Ranges inside a registration reuse it, from any number of threads.
  std::vector<std::thread> inner;
  for (int t = 0; t < kThreads; ++t) {
    inner.emplace_back([&, t] {
      auto r = cache.Register(m + 4096 * (t + 1), 8192);
      ASSERT_TRUE(r);
      EXPECT_EQ((*r)->base, m);
    });
  }
  for (auto& th : inner) th.join();
  EXPECT_EQ(cache.registrar_calls(), ranges.size());
  // A range across two registrations is a new one.
  auto across = cache.Register(m + (1 << 20) + (512 << 10), 1 << 20);
  ASSERT_TRUE(across);
  EXPECT_EQ(cache.registrar_calls(), ranges.size() + 1);
}

TEST(RegistrationCache, CallersOfARangeInProgressWaitForItsRegistration) {
  std::vector<std::byte> mem(1 << 20);
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar);
  std::vector<std::thread> threads;
  std::set<uint64_t> ids;
  std::mutex mu;
  std::latch start(16);
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < 50; ++i) {
        auto r = cache.Register(mem.data(), mem.size());
        ASSERT_TRUE(r);
        std::lock_guard lock(mu);
        ids.insert((*r)->id);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(cache.registrar_calls(), 1u);
}

TEST(RegistrationCache, DeregistrationReleasesTheRegistrationAfterItsLastUser) {
  std::vector<std::byte> mem(1 << 20);
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar);
  auto a = cache.Register(mem.data(), mem.size());
  ASSERT_TRUE(a);
  auto held = *a;  // an operation in flight holds its registration
  a = errc::ok;
  EXPECT_EQ(cache.Find(mem.data() + 10, 100), held);
  EXPECT_TRUE(cache.Deregister(held->id));
  EXPECT_FALSE(cache.Deregister(held->id));
  EXPECT_EQ(cache.Find(mem.data(), 1), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(registrar->deregistered(), 0);  // still in use
  held.reset();
  EXPECT_EQ(registrar->deregistered(), 1);
  // Registering again is a new registration.
  auto b = cache.Register(mem.data(), 4096);
  ASSERT_TRUE(b);
  EXPECT_EQ(cache.registrar_calls(), 2u);
}

TEST(RegistrationCache, AFailedRegistrationIsNotCached) {
  std::vector<std::byte> mem(1 << 16);
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar);
  registrar->FailNext();
  auto r = cache.Register(mem.data(), mem.size());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::transfer_failed);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(cache.Register(mem.data(), mem.size()));
  EXPECT_EQ(cache.registrar_calls(), 2u);
}

TEST(RegistrationCache, RefusesEmptyRangesAndKeepsInsertedEntriesOutOfTheRegistrar) {
  std::vector<std::byte> mem(1 << 16);
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar);
  EXPECT_EQ(cache.Register(nullptr, 10).error(), errc::bad_argument);
  EXPECT_EQ(cache.Register(mem.data(), 0).error(), errc::bad_argument);
  auto owner = std::make_shared<int>(7);
  auto e = cache.Insert(mem.data(), mem.size(), owner);
  EXPECT_EQ(e->attachment, owner);
  EXPECT_EQ(cache.Register(mem.data() + 100, 100).value(), e);
  EXPECT_EQ(cache.registrar_calls(), 0u);
  EXPECT_EQ(cache.Find(mem.data() + mem.size() - 1, 2), nullptr);  // runs past the end
}

}  // namespace
}  // namespace memkv::rdma
