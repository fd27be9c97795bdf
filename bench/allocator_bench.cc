// Page allocation: a put allocates its value's pages (one run per extent)
// and an overwrite, delete or eviction frees them.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <deque>
#include <optional>

#include "store/allocator.h"

namespace memkv::store {
namespace {

constexpr uint64_t kPages = 1ull << 22;  // 16 GiB of 4 KiB pages

// Allocate then free the same run length: the next-fit cursor walks on.
void BM_AllocateFree(benchmark::State& state) {
  PageAllocator a(kPages);
  const auto n = static_cast<uint32_t>(state.range(0));
  for (auto _ : state) {
    const std::optional<uint64_t> page = a.Allocate(n);
    if (!page) {
      state.SkipWithError("the allocator is full");
      break;
    }
    a.Free(*page, n);
  }
  state.SetItemsProcessed(state.iterations());
}
// 1 page (4 KiB value), 256 pages (1 MiB), 1024 pages (one 4 MiB extent).
BENCHMARK(BM_AllocateFree)->Arg(1)->Arg(256)->Arg(1024);

// A store that stays about 80% full: each new run frees the oldest one, so
// free space is fragmented the way a cache under churn fragments it.
void BM_AllocateChurn80(benchmark::State& state) {
  PageAllocator a(kPages);
  const auto n = static_cast<uint32_t>(state.range(0));
  std::deque<uint64_t> live;
  while (a.used_pages() + n <= kPages * 8 / 10) live.push_back(*a.Allocate(n));
  for (auto _ : state) {
    a.Free(live.front(), n);
    live.pop_front();
    const std::optional<uint64_t> page = a.Allocate(n);
    if (!page) {
      state.SkipWithError("no free run");
      break;
    }
    live.push_back(*page);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AllocateChurn80)->Arg(1)->Arg(256);

// The checkpoint's copy of the bitmap of a 16 GiB drive.
void BM_AllocatorSerialize(benchmark::State& state) {
  PageAllocator a(kPages);
  for (int i = 0; i < 1000; ++i) (void)a.Allocate(97);
  for (auto _ : state) benchmark::DoNotOptimize(a.Serialize());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kPages / 8));
}
BENCHMARK(BM_AllocatorSerialize);

}  // namespace
}  // namespace memkv::store
