// Encode and decode of a 7,500-entry batch, the size an inference engine
// sends for one request; and the frame tag.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "common/checksum.h"
#include "proto/messages.h"

namespace memkv::proto {
namespace {

constexpr int kEntries = 7500;

std::vector<std::string> Keys() {
  std::vector<std::string> keys;
  // Keys shaped like an engine's: a model prefix and a content hash.
  for (int i = 0; i < kEntries; ++i)
    keys.push_back("llama-70b/tp0/" + std::to_string(Xxh3(&i, sizeof i)));
  return keys;
}

BatchReadRequest ReadBatch(const std::vector<std::string>& keys) {
  BatchReadRequest m;
  m.batch = {kEntries, 0, kEntries};
  uint64_t at = 0;
  for (const auto& k : keys) {
    m.entries.push_back({k, 0, 16384, {LocationKind::kShm, 1, at, 16384}});
    at += 16384;
  }
  return m;
}

void BM_EncodeBatchRead7500(benchmark::State& state) {
  const auto keys = Keys();
  const BatchReadRequest m = ReadBatch(keys);
  Buffer b;
  for (auto _ : state) {
    b.clear();
    Encode(m, b);
    benchmark::DoNotOptimize(b.data());
  }
  state.SetItemsProcessed(state.iterations() * kEntries);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(b.size()));
}
BENCHMARK(BM_EncodeBatchRead7500);

void BM_DecodeBatchRead7500(benchmark::State& state) {
  const auto keys = Keys();
  Buffer b;
  Encode(ReadBatch(keys), b);
  BatchReadRequest d;
  for (auto _ : state) {
    if (!Decode(b, {}, d)) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(d.entries.data());
  }
  state.SetItemsProcessed(state.iterations() * kEntries);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(b.size()));
}
BENCHMARK(BM_DecodeBatchRead7500);

void BM_DecodeBatchWrite7500(benchmark::State& state) {
  const auto keys = Keys();
  BatchWriteRequest m;
  m.batch = {kEntries, 0, kEntries};
  for (const auto& k : keys) m.entries.push_back({k, 16384, 1, {LocationKind::kShm, 1, 0, 16384}});
  Buffer b;
  Encode(m, b);
  BatchWriteRequest d;
  for (auto _ : state) {
    if (!Decode(b, {}, d)) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(d.entries.data());
  }
  state.SetItemsProcessed(state.iterations() * kEntries);
}
BENCHMARK(BM_DecodeBatchWrite7500);

void BM_FrameTag(benchmark::State& state) {
  const AuthKey key = AuthKey::Generate();
  const auto keys = Keys();
  Buffer control;
  Encode(ReadBatch(keys), control);
  const Buffer head(32);
  for (auto _ : state) benchmark::DoNotOptimize(key.Hmac(head, control));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(control.size()));
}
BENCHMARK(BM_FrameTag);

void BM_Xxh3_4KiB(benchmark::State& state) {
  const std::string page(4096, 'p');
  for (auto _ : state) benchmark::DoNotOptimize(Xxh3(page));
  state.SetBytesProcessed(state.iterations() * 4096);
}
BENCHMARK(BM_Xxh3_4KiB);

}  // namespace
}  // namespace memkv::proto
