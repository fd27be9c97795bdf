// The registration cache: one registration per range however many threads
// ask at once, first registrations of different ranges in parallel outside
// the lock, deregistration that releases the NIC registration once the
// last user lets go, and GPU memory (through the stand-in driver table):
// classified once per registration, keyed by buffer id.

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

#include "../common/fake_cuda.h"
#include "common/error.h"
#include "rdma/error.h"

namespace memkv::rdma {
namespace {

using memkv::testing::AlignedBuffer;
using memkv::testing::FakeGpu;

// A stand-in for the NIC: records every registration and deregistration and
// how many ran at once. With `gate` > 1 each call waits (at most 30 s, so
// that a cache that serializes its slow paths fails instead of hanging)
// until that many calls are inside together.
class RecordingRegistrar final : public Registrar {
 public:
  explicit RecordingRegistrar(int gate = 1) : gate_(gate) {}

  Result<std::shared_ptr<const void>> Register(const MemoryDescriptor& memory,
                                               std::string* why) override {
    std::unique_lock lock(mu_);
    ++calls_[{memory.base, memory.size}];
    seen_.push_back(memory);
    ++inside_;
    max_inside_ = std::max(max_inside_, inside_);
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return max_inside_ >= gate_; });
    --inside_;
    if (fail_next_) {
      fail_next_ = false;
      if (why) *why = "the stand-in NIC refused it";
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
  // Every registration asked for, with what memory it was said to be.
  std::vector<MemoryDescriptor> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
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
  std::vector<MemoryDescriptor> seen_;
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
  std::string why;
  registrar->FailNext();
  EXPECT_FALSE(cache.Register(mem.data(), mem.size(), &why));
  EXPECT_EQ(why, "the stand-in NIC refused it");
  EXPECT_EQ(cache.registrar_calls(), 2u);
  EXPECT_TRUE(cache.Register(mem.data(), mem.size()));
  EXPECT_EQ(cache.registrar_calls(), 3u);
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

// ---------------------------------------------------------------------------
// GPU memory, through the stand-in driver table.

TEST(RegistrationCache, WithoutADriverEverythingIsHostMemory) {
  auto no_driver = common::Cuda::Unavailable("no libcuda.so.1: test");
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar, no_driver.get());
  std::vector<std::byte> mem(1 << 16);
  auto r = cache.Register(mem.data(), mem.size());
  ASSERT_TRUE(r);
  EXPECT_FALSE((*r)->is_device());
  EXPECT_EQ((*r)->buffer_id, 0u);
  ASSERT_EQ(registrar->seen().size(), 1u);
  EXPECT_FALSE(registrar->seen()[0].is_device());
}

TEST(RegistrationCache, DeviceMemoryIsClassifiedOncePerRegistrationAndTheRegistrarToldSo) {
  FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 20);
  const auto buffer = gpu.AddDeviceRange(mem.data, mem.size, 1);
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar, &cuda);
  gpu.calls.clear();

  auto r = cache.Register(mem.data + 4096, 65536);
  ASSERT_TRUE(r);
  EXPECT_TRUE((*r)->is_device());
  EXPECT_EQ((*r)->device, 1);
  EXPECT_EQ((*r)->buffer_id, buffer);
  // One classification: memory type, device ordinal, buffer id, allocation.
  EXPECT_EQ(gpu.Count("cuPointerGetAttribute"), 3);
  EXPECT_EQ(gpu.Count("cuMemGetAddressRange"), 1);
  ASSERT_EQ(registrar->seen().size(), 1u);
  const MemoryDescriptor told = registrar->seen()[0];
  EXPECT_EQ(told.base, mem.data + 4096);
  EXPECT_EQ(told.size, 65536u);
  EXPECT_TRUE(told.is_device());
  EXPECT_EQ(told.device(), 1);
  EXPECT_EQ(told.buffer_id(), buffer);
  EXPECT_EQ(told.info.base, reinterpret_cast<uintptr_t>(mem.data));  // the allocation
  EXPECT_EQ(told.info.size, mem.size);

  // A range inside it: found, checked against the buffer there with one
  // driver call, not classified again.
  gpu.calls.clear();
  auto inner = cache.Register(mem.data + 8192, 100);
  ASSERT_TRUE(inner);
  EXPECT_EQ(*inner, *r);
  EXPECT_EQ(gpu.calls, std::vector<std::string>{"cuPointerGetAttribute"});
  EXPECT_EQ(cache.registrar_calls(), 1u);

  // Host memory beside it: one driver call (the driver does not know it),
  // none once it is registered.
  std::vector<std::byte> host(4096);
  gpu.calls.clear();
  auto h = cache.Register(host.data(), host.size());
  ASSERT_TRUE(h);
  EXPECT_FALSE((*h)->is_device());
  EXPECT_EQ(gpu.calls, std::vector<std::string>{"cuPointerGetAttribute"});
  gpu.calls.clear();
  EXPECT_EQ(cache.Find(host.data() + 1, 10), *h);
  EXPECT_EQ(cache.Register(host.data(), 10).value(), *h);
  EXPECT_TRUE(gpu.calls.empty());
}

TEST(RegistrationCache, GpuRegistrationsAreKeyedByBufferIdNotOnlyByAddress) {
  FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 20);
  const auto first = gpu.AddDeviceRange(mem.data, mem.size, 0);
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar, &cuda);
  auto old_reg = cache.Register(mem.data, mem.size);
  ASSERT_TRUE(old_reg);
  const auto old_one = *old_reg;
  EXPECT_EQ(old_one->buffer_id, first);
  EXPECT_EQ(cache.Find(mem.data + 100, 100), old_one);

  // Freed: the registration no longer answers for the address.
  gpu.RemoveDeviceRange(mem.data);
  EXPECT_EQ(cache.Find(mem.data + 100, 100), nullptr);

  // Reallocated at the same address: another buffer id, so still not
  // registered; nothing is registered behind the caller's back.
  const auto second = gpu.AddDeviceRange(mem.data, mem.size, 0);
  ASSERT_NE(second, first);
  EXPECT_EQ(cache.Find(mem.data + 100, 100), nullptr);
  EXPECT_EQ(cache.registrar_calls(), 1u);

  // Registered again: a new registration of the new buffer, beside the
  // stale one until its owner deregisters it.
  auto new_reg = cache.Register(mem.data + 4096, 8192);
  ASSERT_TRUE(new_reg);
  EXPECT_NE((*new_reg)->id, old_one->id);
  EXPECT_EQ((*new_reg)->buffer_id, second);
  EXPECT_EQ(cache.registrar_calls(), 2u);
  EXPECT_EQ(registrar->seen().back().buffer_id(), second);
  EXPECT_EQ(cache.Find(mem.data + 4096, 100), *new_reg);
  EXPECT_EQ(cache.Find(mem.data, 100), nullptr);  // outside the new registration
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.Deregister(old_one->id));
  EXPECT_EQ(cache.Find(mem.data + 4096, 100), *new_reg);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.Deregister((*new_reg)->id));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RegistrationCache, ADeviceRangeLeavingItsAllocationIsRefused) {
  FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 20);
  gpu.AddDeviceRange(mem.data, 1 << 19, 0);
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar, &cuda);
  std::string why;
  auto r = cache.Register(mem.data + 4096, 1 << 19, &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::bad_argument);
  EXPECT_NE(why.find("leaves its CUDA allocation"), std::string::npos) << why;
  EXPECT_EQ(cache.registrar_calls(), 0u);
}

TEST(RegistrationCache, ADriverThatCannotClassifyFailsTheRegistration) {
  FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 16);
  gpu.AddDeviceRange(mem.data, mem.size, 0);
  gpu.attribute_error = common::cu::CUDA_ERROR_NOT_INITIALIZED;
  auto registrar = std::make_shared<RecordingRegistrar>();
  RegistrationCache cache(registrar, &cuda);
  std::string why;
  auto r = cache.Register(mem.data, mem.size, &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), common::errc::cuda_failed);
  EXPECT_NE(why.find("CUDA_ERROR_NOT_INITIALIZED"), std::string::npos) << why;
  EXPECT_EQ(cache.registrar_calls(), 0u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(RegistrationCache, SixteenThreadsRegisterDeviceRangesOncePerBufferWithSlowPathsInParallel) {
  FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer a(2 << 20);
  AlignedBuffer b(1 << 20);
  const auto id_a = gpu.AddDeviceRange(a.data, a.size, 0);
  const auto id_b = gpu.AddDeviceRange(b.data, b.size, 1);
  // Three device ranges: the second overlaps the first (neither inside
  // the other), the third in another buffer on another device.
  const std::vector<std::pair<std::byte*, size_t>> ranges = {
      {a.data, 1 << 20}, {a.data + (512 << 10), 1 << 20}, {b.data, 64 << 10}};
  auto registrar = std::make_shared<RecordingRegistrar>(/*gate=*/3);
  RegistrationCache cache(registrar, &cuda);

  constexpr int kThreads = 16;
  std::latch start(kThreads);
  std::mutex mu;
  std::map<size_t, std::set<uint64_t>> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (size_t k = 0; k < ranges.size(); ++k) {
        const size_t i = (t + k) % ranges.size();
        std::string why;
        auto r = cache.Register(ranges[i].first, ranges[i].second, &why);
        ASSERT_TRUE(r) << why;
        std::lock_guard lock(mu);
        ids[i].insert((*r)->id);
      }
    });
  }
  for (auto& th : threads) th.join();

  const auto calls = registrar->calls();
  EXPECT_EQ(calls.size(), ranges.size());
  for (const auto& [range, n] : calls) EXPECT_EQ(n, 1);
  EXPECT_EQ(registrar->max_inside(), 3);
  for (const auto& [i, seen] : ids) EXPECT_EQ(seen.size(), 1u) << "range " << i;
  for (const MemoryDescriptor& m : registrar->seen()) {
    EXPECT_TRUE(m.is_device());
    EXPECT_EQ(m.buffer_id(), m.base >= b.data && m.base < b.data + b.size ? id_b : id_a);
    EXPECT_EQ(m.device(), m.buffer_id() == id_b ? 1 : 0);
  }
  EXPECT_EQ(cache.size(), ranges.size());
}

}  // namespace
}  // namespace memkv::rdma
