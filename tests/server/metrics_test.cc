// server::Metrics: per-operation counters and the latency histogram.

#include <gtest/gtest.h>

#include "server/metrics.h"

namespace memkv::server {
namespace {

using proto::StatusCode;

TEST(Metrics, CountsRequestsEntriesAndLatencyPerOperation) {
  Metrics m;
  m.Request(Op::kPut, 100, std::chrono::microseconds(30));  // first bucket
  m.Request(Op::kPut, 50, std::chrono::milliseconds(3));    // <= 5 ms
  m.Request(Op::kGet, 10, std::chrono::seconds(60));        // +Inf
  const StatusCode statuses[] = {StatusCode::kOk, StatusCode::kNotFound, StatusCode::kTooLarge};
  m.Entries(Op::kPut, statuses, 4096);
  proto::ReadResult reads[2];
  reads[1].status = StatusCode::kNotFound;
  m.Entries(Op::kGet, reads, 7);
  proto::ExistsResult exists[1];
  m.Entries(Op::kExists, exists);

  const auto put = m.Get(Op::kPut);
  EXPECT_EQ(put.requests, 2u);
  EXPECT_EQ(put.request_bytes, 150u);
  EXPECT_EQ(put.entries, 3u);
  EXPECT_EQ(put.entry_misses, 1u);
  EXPECT_EQ(put.entry_errors, 1u);
  EXPECT_EQ(put.value_bytes, 4096u);
  EXPECT_EQ(put.latency_ns_sum, 3'030'000u);
  EXPECT_EQ(put.buckets[0], 1u);
  size_t five_ms = 0;
  while (Metrics::kBuckets[five_ms] < 0.005) ++five_ms;
  EXPECT_EQ(put.buckets[five_ms], 1u);
  const auto get = m.Get(Op::kGet);
  EXPECT_EQ(get.buckets.back(), 1u);
  EXPECT_EQ(get.entries, 2u);
  EXPECT_EQ(get.entry_misses, 1u);
  EXPECT_EQ(get.value_bytes, 7u);
  EXPECT_EQ(m.Get(Op::kExists).entries, 1u);
  EXPECT_EQ(m.Get(Op::kDelete).requests, 0u);
}

TEST(Metrics, EveryOpcodeHasAnOperation) {
  EXPECT_EQ(OpOf(proto::Opcode::kBatchWrite), Op::kPut);
  EXPECT_EQ(OpOf(proto::Opcode::kBatchRead), Op::kGet);
  EXPECT_EQ(OpOf(proto::Opcode::kExists), Op::kExists);
  EXPECT_EQ(OpOf(proto::Opcode::kDelete), Op::kDelete);
  EXPECT_EQ(OpOf(proto::Opcode::kPing), Op::kPing);
  EXPECT_EQ(OpOf(proto::Opcode::kAttach), Op::kOther);
  for (size_t i = 0; i < kOpCount; ++i) EXPECT_STRNE(OpName(static_cast<Op>(i)), "");
  EXPECT_STREQ(OpName(Op::kPut), "put");
}

}  // namespace
}  // namespace memkv::server
