// Routing one key among 16 servers, as a client does for every entry.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "common/hrw.h"

namespace memkv {
namespace {

Rendezvous Servers(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back("10.1.0." + std::to_string(i) + ":9900");
  return Rendezvous(std::move(names));
}

void BM_HrwPickKey16(benchmark::State& state) {
  const Rendezvous r = Servers(16);
  std::vector<std::string> keys;
  for (int i = 0; i < 1024; ++i) keys.push_back("llama-70b/tp0/" + std::to_string(i * 2654435761u));
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(r.PickKey(keys[i++ & 1023]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HrwPickKey16);

void BM_HrwPickBlock16(benchmark::State& state) {
  const Rendezvous r = Servers(16);
  uint64_t b = 0;
  for (auto _ : state) benchmark::DoNotOptimize(r.Pick(HrwBlockHash(b++)));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HrwPickBlock16);

void BM_HrwRank16(benchmark::State& state) {
  const Rendezvous r = Servers(16);
  std::vector<size_t> order(16);
  uint64_t b = 0;
  for (auto _ : state) {
    r.Rank(HrwBlockHash(b++), order);
    benchmark::DoNotOptimize(order.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HrwRank16);

}  // namespace
}  // namespace memkv
