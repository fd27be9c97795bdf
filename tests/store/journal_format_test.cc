#include "store/journal_format.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "store/error.h"

namespace memkv::store {
namespace {

struct Seen {
  OpKind kind;
  std::string key;
  uint64_t version;
  uint64_t value_size;
  std::vector<Extent> extents;
  std::vector<uint64_t> checksums;
};

std::vector<Seen> Collect(std::span<const std::byte> journal, uint64_t offset, uint64_t seq,
                          uint64_t epoch, ReplayEnd* end = nullptr) {
  std::vector<Seen> seen;
  const ReplayEnd e = Replay(journal, offset, seq, epoch, [&](const JournalOp& op) {
    seen.push_back({op.kind, std::string(op.key), op.version, op.value_size,
                    {op.extents.begin(), op.extents.end()},
                    {op.page_checksums.begin(), op.page_checksums.end()}});
  });
  if (end) *end = e;
  return seen;
}

Buffer OneRecord(uint64_t epoch, uint64_t seq, const std::string& key, size_t ops = 1) {
  JournalRecordBuilder b;
  const Extent ext{1, 3, 100, 2, 0, 0};
  const uint64_t sums[] = {11, 22};
  for (size_t i = 0; i < ops; ++i)
    b.Add({OpKind::kPut, key, seq * 1000 + i, 8000, std::span(&ext, 1), sums});
  return b.Finish(epoch, seq);
}

void Place(Buffer& journal, uint64_t offset, const Buffer& record) {
  std::memcpy(journal.data() + offset, record.data(), record.size());
}

TEST(JournalFormat, RecordsRoundTripEveryField) {
  JournalRecordBuilder b;
  const Extent ext[] = {{0, 7, 1234, 1024, 2, 0xabc}, {1, 8, 55, 10, 0, 0}};
  const uint64_t sums[] = {1, 2, 3};
  b.Add({OpKind::kPut, "key-1", 100, 5 << 20, ext, {}});
  b.Add({OpKind::kDelete, "key-2", 101, 0, {}, {}});
  b.Add({OpKind::kPut, "key-3", 102, 9000, std::span(ext + 1, 1), sums});
  EXPECT_EQ(b.ops(), 3u);
  const Buffer rec = b.Finish(/*epoch=*/4, /*seq=*/17);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(rec.size() % kPageSize, 0u);

  auto h = DecodeRecordHeader(rec);
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(h->epoch, 4u);
  EXPECT_EQ(h->seq, 17u);
  EXPECT_EQ(h->kind, RecordKind::kOps);

  Buffer journal(64 * kPageSize);
  Place(journal, 0, rec);
  const auto seen = Collect(journal, 0, 17, 4);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].key, "key-1");
  EXPECT_EQ(seen[0].version, 100u);
  EXPECT_EQ(seen[0].value_size, 5u << 20);
  ASSERT_EQ(seen[0].extents.size(), 2u);
  EXPECT_EQ(seen[0].extents[0].page, 1234u);
  EXPECT_EQ(seen[0].extents[0].pages, 1024u);
  EXPECT_EQ(seen[0].extents[0].table_pages, 2u);
  EXPECT_EQ(seen[0].extents[0].table_checksum, 0xabcu);
  EXPECT_EQ(seen[0].extents[1].drive, 1u);
  EXPECT_EQ(seen[0].extents[1].drive_generation, 8u);
  EXPECT_EQ(seen[1].kind, OpKind::kDelete);
  EXPECT_EQ(seen[1].key, "key-2");
  EXPECT_EQ(seen[1].version, 101u);
  EXPECT_EQ(seen[2].checksums, (std::vector<uint64_t>{1, 2, 3}));
}

TEST(JournalFormat, ReplayFollowsSequenceAndStopsAtTheEnd) {
  Buffer journal(64 * kPageSize);
  uint64_t at = 0;
  for (uint64_t seq = 10; seq < 15; ++seq) {
    const Buffer r = OneRecord(1, seq, "k" + std::to_string(seq));
    Place(journal, at, r);
    at += r.size();
  }
  ReplayEnd end;
  const auto seen = Collect(journal, 0, 10, 1, &end);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[4].key, "k14");
  EXPECT_EQ(end.next_seq, 15u);
  EXPECT_EQ(end.next_offset, at);
  EXPECT_EQ(end.records, 5u);
}

TEST(JournalFormat, ATornRecordEndsReplayAndNothingOfItIsApplied) {
  Buffer journal(64 * kPageSize);
  const Buffer r1 = OneRecord(1, 1, "first");
  const Buffer r2 = OneRecord(1, 2, "second", /*ops=*/300);  // several pages
  ASSERT_GT(r2.size(), kPageSize);
  const Buffer r3 = OneRecord(1, 3, "third");
  Place(journal, 0, r1);
  Place(journal, r1.size(), r2);
  Place(journal, r1.size() + r2.size(), r3);
  // The power went out after r2's first page: its last page is still old.
  std::memset(journal.data() + r1.size() + r2.size() - kPageSize, 0, kPageSize);
  ReplayEnd end;
  const auto seen = Collect(journal, 0, 1, 1, &end);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].key, "first");
  EXPECT_EQ(end.next_seq, 2u);
  EXPECT_EQ(end.next_offset, r1.size());
}

TEST(JournalFormat, StaleRecordsOfAnEarlierLapOrEpochDoNotReplay) {
  Buffer journal(64 * kPageSize);
  const Buffer r1 = OneRecord(2, 5, "current");
  Place(journal, 0, r1);
  Place(journal, r1.size(), OneRecord(2, 3, "old-lap"));  // a lower sequence
  ReplayEnd end;
  EXPECT_EQ(Collect(journal, 0, 5, 2, &end).size(), 1u);
  EXPECT_EQ(end.next_seq, 6u);
  // Same sequence, earlier epoch (before a reset).
  Place(journal, r1.size(), OneRecord(1, 6, "before-reset"));
  EXPECT_EQ(Collect(journal, 0, 5, 2).size(), 1u);
}

TEST(JournalFormat, WrapRecordSendsReplayToTheStart) {
  Buffer journal(8 * kPageSize);
  Place(journal, 6 * kPageSize, OneRecord(1, 20, "near-end"));
  Place(journal, 7 * kPageSize, WrapRecord(1, 21));
  Place(journal, 0, OneRecord(1, 22, "after-wrap"));
  ReplayEnd end;
  const auto seen = Collect(journal, 6 * kPageSize, 20, 1, &end);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].key, "after-wrap");
  EXPECT_EQ(end.next_seq, 23u);
  EXPECT_EQ(end.next_offset, kPageSize);
}

TEST(JournalFormat, ARecordEndingAtTheRingsEndWrapsWithoutAMarker) {
  Buffer journal(8 * kPageSize);
  Place(journal, 7 * kPageSize, OneRecord(1, 1, "last-page"));
  Place(journal, 0, OneRecord(1, 2, "first-page"));
  EXPECT_EQ(Collect(journal, 7 * kPageSize, 1, 1).size(), 2u);
}

TEST(JournalFormat, ZeroedJournalReplaysNothing) {
  Buffer journal(8 * kPageSize);
  ReplayEnd end;
  EXPECT_TRUE(Collect(journal, 0, 1, 1, &end).empty());
  EXPECT_EQ(end.next_seq, 1u);
  EXPECT_EQ(end.next_offset, 0u);
}

TEST(JournalFormat, NewerRecordVersionIsRefusedAsSuch) {
  Buffer rec = OneRecord(1, 1, "k");
  const uint16_t v = kJournalVersion + 1;
  std::memcpy(rec.data() + 4, &v, 2);
  EXPECT_EQ(DecodeRecordHeader(rec).error(), errc::newer_format);
  Buffer journal(8 * kPageSize);
  Place(journal, 0, rec);
  EXPECT_TRUE(Collect(journal, 0, 1, 1).empty());
}

TEST(JournalFormat, HeaderClaimingMorePagesThanItsPayloadIsBad) {
  Buffer rec = OneRecord(1, 1, "k");
  const uint32_t pages = 9;
  std::memcpy(rec.data() + 28, &pages, 4);
  EXPECT_EQ(DecodeRecordHeader(rec).error(), errc::bad_record);
}

TEST(JournalFormat, MalformedPayloadIsABadRecord) {
  const std::byte junk[] = {std::byte{7}, std::byte{1}, std::byte{0}, std::byte{'k'}};
  EXPECT_FALSE(ForEachOp(junk, [](const JournalOp&) {}));
  const std::byte cut[] = {std::byte{1}, std::byte{5}, std::byte{0}, std::byte{'k'}};
  EXPECT_FALSE(ForEachOp(cut, [](const JournalOp&) {}));
}

}  // namespace
}  // namespace memkv::store
