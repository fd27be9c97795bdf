// The store's index: a lookup is on every get, a publish on every put, and
// a batch of 7,500 entries makes 7,500 of them.

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/checksum.h"
#include "store/index.h"

namespace memkv::store {
namespace {

// Keys shaped like an engine's: a model prefix and a content hash.
std::vector<std::string> Keys(size_t n) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (size_t i = 0; i < n; ++i)
    keys.push_back("llama-70b/tp0/" + std::to_string(Xxh3(&i, sizeof i)));
  return keys;
}

EntryRef MakeEntry(const std::string& key, uint64_t version) {
  auto e = std::make_shared<Entry>();
  e->key = key;
  e->value_size = 4096;
  e->version = version;
  return e;
}

// An index holding `n` keys; lookups of present keys in a shuffled order.
void BM_IndexFindHit(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const auto keys = Keys(n);
  Index index;
  for (size_t i = 0; i < n; ++i) index.Publish(MakeEntry(keys[i], i + 1));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(index.Find(keys[(i * 7919) % n]));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IndexFindHit)->Arg(1 << 10)->Arg(1 << 16)->Arg(1 << 20);

void BM_IndexFindMiss(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const auto keys = Keys(n);
  Index index;
  for (size_t i = 0; i < n; ++i) index.Publish(MakeEntry(keys[i], i + 1));
  const auto missing = Keys(n + 1024);  // the last 1,024 are not in the index
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(index.Find(missing[n + (i++ & 1023)]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IndexFindMiss)->Arg(1 << 16);

// Overwrites: each publish replaces the key's entry (a newer version).
void BM_IndexPublishReplace(benchmark::State& state) {
  const size_t n = 1 << 16;
  const auto keys = Keys(n);
  Index index;
  uint64_t version = 1;
  for (size_t i = 0; i < n; ++i) index.Publish(MakeEntry(keys[i], version++));
  std::vector<EntryRef> fresh;
  size_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    EntryRef e = MakeEntry(keys[i % n], version++);
    state.ResumeTiming();
    benchmark::DoNotOptimize(index.Publish(std::move(e)));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IndexPublishReplace);

// Lookups from several threads at once: the shards' locks under contention.
void BM_IndexFindHitThreads(benchmark::State& state) {
  static const auto keys = Keys(1 << 16);
  static Index* index = [] {
    auto* ix = new Index;
    for (size_t i = 0; i < keys.size(); ++i) ix->Publish(MakeEntry(keys[i], i + 1));
    return ix;
  }();
  size_t i = static_cast<size_t>(state.thread_index()) * 104729;
  for (auto _ : state) {
    benchmark::DoNotOptimize(index->Find(keys[(i * 7919) & (keys.size() - 1)]));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IndexFindHitThreads)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace
}  // namespace memkv::store
