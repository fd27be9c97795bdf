// memkv-crash's ledger (bench/crash_ledger.h): which reads after a SIGKILL
// keep the durability contract and which are named lost, wrong or
// resurrected, step by step with no server.

#include <gtest/gtest.h>

#include <bit>
#include <functional>
#include <set>

#include "crash_ledger.h"

namespace memkv::bench {
namespace {

constexpr uint64_t kMax = 1 << 20;

// A read that found the value of `seed` (or nothing, with seed 0).
std::function<bool(uint64_t)> Holding(uint64_t seed) {
  return [seed](uint64_t s) { return seed != 0 && s == seed; };
}

Judgement ReadValue(const KeyLedger& k, uint64_t seed) {
  return Judge(k, ReadKind::kValue, CrashValueSize(seed, kMax), "", Holding(seed), kMax);
}
Judgement ReadMiss(const KeyLedger& k) {
  return Judge(k, ReadKind::kMiss, 0, "", Holding(0), kMax);
}

TEST(CrashValueSize, CoversOneByteToTheMaximumAndNothingOutside) {
  std::set<int> bits;
  for (uint64_t seed = 1; seed < 20000; ++seed) {
    const uint64_t size = CrashValueSize(seed, kMax);
    ASSERT_GE(size, 1u);
    ASSERT_LE(size, kMax);
    bits.insert(std::bit_width(size));
  }
  EXPECT_EQ(bits.size(), 21u);  // 1 B, 2-3 B, ..., 1 MiB
  EXPECT_EQ(CrashValueSize(5, 1), 1u);
}

TEST(CrashLedger, AcknowledgedPutReadBackIsOk) {
  KeyLedger k;
  k.BeginPut(7, 1);
  k.Ack();
  const Judgement j = ReadValue(k, 7);
  EXPECT_EQ(j.verdict, Verdict::kOk);
  EXPECT_TRUE(j.checked_acked_put);
  EXPECT_EQ(j.now, KeyState::Value(7));
}

TEST(CrashLedger, AcknowledgedPutMissingIsLost) {
  KeyLedger k;
  k.BeginPut(7, 1);
  k.Ack();
  const Judgement j = ReadMiss(k);
  EXPECT_EQ(j.verdict, Verdict::kLost);
  EXPECT_NE(j.expected.find("seed 7"), std::string::npos) << j.expected;
  EXPECT_EQ(j.found, "a miss");
}

TEST(CrashLedger, OlderValueBackAfterAcknowledgedOverwriteIsLost) {
  KeyLedger k;
  k.BeginPut(7, 1);
  k.Ack();
  k.BeginPut(9, 2);
  k.Ack();
  const Judgement j = ReadValue(k, 7);
  EXPECT_EQ(j.verdict, Verdict::kLost);
  EXPECT_NE(j.found.find("older value: seed 7"), std::string::npos) << j.found;
  EXPECT_NE(j.found.find("cycle 1"), std::string::npos) << j.found;
}

TEST(CrashLedger, DeletedKeyWithItsOldValueIsResurrected) {
  KeyLedger k;
  k.BeginPut(7, 1);
  k.Ack();
  k.BeginDelete();
  k.Ack();
  EXPECT_EQ(ReadValue(k, 7).verdict, Verdict::kResurrected);
  const Judgement miss = ReadMiss(k);
  EXPECT_EQ(miss.verdict, Verdict::kOk);
  EXPECT_TRUE(miss.checked_acked_delete);
}

TEST(CrashLedger, BytesNeverPutAreWrong) {
  KeyLedger k;
  k.BeginPut(7, 1);
  k.Ack();
  EXPECT_EQ(ReadValue(k, 8).verdict, Verdict::kWrong);
  KeyLedger never;
  EXPECT_EQ(ReadValue(never, 8).verdict, Verdict::kWrong);
}

TEST(CrashLedger, PutInFlightMayLandOrNot) {
  KeyLedger k;
  k.BeginPut(7, 1);
  k.Ack();
  k.BeginPut(9, 2);  // killed before its acknowledgement
  const Judgement landed = ReadValue(k, 9);
  EXPECT_EQ(landed.verdict, Verdict::kOk);
  EXPECT_TRUE(landed.resolved_flight);
  EXPECT_EQ(landed.now, KeyState::Value(9));
  const Judgement not_landed = ReadValue(k, 7);
  EXPECT_EQ(not_landed.verdict, Verdict::kOk);
  EXPECT_EQ(not_landed.now, KeyState::Value(7));
  // The acknowledged value is still owed: a miss loses it.
  EXPECT_EQ(ReadMiss(k).verdict, Verdict::kLost);
}

TEST(CrashLedger, DeleteInFlightMayLandOrNot) {
  KeyLedger k;
  k.BeginPut(7, 1);
  k.Ack();
  k.BeginDelete();
  EXPECT_EQ(ReadValue(k, 7).verdict, Verdict::kOk);
  const Judgement gone = ReadMiss(k);
  EXPECT_EQ(gone.verdict, Verdict::kOk);
  EXPECT_EQ(gone.now, KeyState::Deleted());
}

TEST(CrashLedger, UnacknowledgedPutSeenMissingThatComesBackIsResurrected) {
  KeyLedger k;
  k.BeginPut(7, 1);  // killed; the next read is a miss, so it did not land
  const Judgement j = ReadMiss(k);
  ASSERT_EQ(j.verdict, Verdict::kOk);
  Settle(k, j);
  EXPECT_EQ(ReadValue(k, 7).verdict, Verdict::kResurrected);
}

TEST(CrashLedger, PutThatLandedUnacknowledgedIsNotCountedAsAcknowledged) {
  KeyLedger k;
  k.BeginPut(7, 1);  // killed; it landed all the same
  const Judgement landed = ReadValue(k, 7);
  ASSERT_EQ(landed.verdict, Verdict::kOk);
  EXPECT_TRUE(landed.resolved_flight);
  Settle(k, landed);
  EXPECT_EQ(k.acked, KeyState::Value(7));
  const Judgement again = ReadValue(k, 7);
  EXPECT_EQ(again.verdict, Verdict::kOk);
  EXPECT_FALSE(again.checked_acked_put);
  EXPECT_EQ(ReadMiss(k).verdict, Verdict::kLost);  // seen once, it must stay
}

TEST(CrashLedger, ReadErrorIsUnreadable) {
  KeyLedger k;
  k.BeginPut(7, 1);
  k.Ack();
  const Judgement j = Judge(k, ReadKind::kError, 0, "ChecksumMismatch", Holding(0), kMax);
  EXPECT_EQ(j.verdict, Verdict::kUnreadable);
  EXPECT_NE(j.found.find("ChecksumMismatch"), std::string::npos);
}

}  // namespace
}  // namespace memkv::bench
