#include "store/superblock.h"

#include <gtest/gtest.h>

#include <cstring>

#include "store/error.h"

namespace memkv::store {
namespace {

Superblock Sample() {
  Superblock sb;
  sb.generation = 7;
  for (size_t i = 0; i < 16; ++i) {
    sb.set_id[i] = std::byte(i);
    sb.device_id[i] = std::byte(0xa0 + i);
  }
  sb.set_size = 4;
  sb.drive_index = 2;
  sb.drive_generation = 3;
  sb.format_epoch = 5;
  sb.created_unix = 1'700'000'000;
  sb.layout = ComputeLayout(1ull << 30, 4ull << 20).value();
  sb.active_slot = 1;
  sb.checkpoint_seq = 99;
  sb.checkpoint_bytes = 8192;
  sb.checkpoint_checksum = 0x1234;
  sb.journal_head = 3 * kPageSize;
  return sb;
}

TEST(Layout, PartsDoNotOverlapAndFitTheDrive) {
  for (uint64_t size : {16ull << 20, 64ull << 20, 1ull << 30, (1ull << 30) + 12345, 4ull << 40}) {
    auto l = ComputeLayout(size, 4ull << 20);
    ASSERT_TRUE(l) << size;
    EXPECT_EQ(l->size % kPageSize, 0u);
    EXPECT_EQ(l->journal_offset, kPageSize);
    EXPECT_LE(l->journal_offset + l->journal_size, l->slot_offset[0]);
    EXPECT_LE(l->slot_offset[0] + l->slot_size, l->slot_offset[1]);
    EXPECT_LE(l->slot_offset[1] + l->slot_size, l->data_offset);
    EXPECT_LE(l->data_offset + l->data_size, l->mirror_offset());
    EXPECT_EQ(l->mirror_offset(), l->size - kPageSize);
    EXPECT_GE(l->data_size, 4ull << 20);
    EXPECT_EQ(l->data_size % kPageSize, 0u);
  }
}

TEST(Layout, MostOfALargeDriveIsData) {
  auto l = ComputeLayout(1ull << 40, 4ull << 20);
  ASSERT_TRUE(l);
  EXPECT_GT(static_cast<double>(l->data_size) / l->size, 0.9);
}

TEST(Layout, RefusesTinyDrivesAndBadStripeUnits) {
  EXPECT_EQ(ComputeLayout(8ull << 20, 4ull << 20).error(), errc::drive_too_small);
  EXPECT_EQ(ComputeLayout(1ull << 30, 1000).error(), errc::bad_geometry);
  EXPECT_EQ(ComputeLayout(1ull << 30, 0).error(), errc::bad_geometry);
}

TEST(Superblock, RoundTripsEveryField) {
  const Superblock sb = Sample();
  const Page page = EncodeSuperblock(sb);
  auto d = DecodeSuperblock(page);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->generation, 7u);
  EXPECT_EQ(d->set_id, sb.set_id);
  EXPECT_EQ(d->device_id, sb.device_id);
  EXPECT_EQ(d->set_size, 4u);
  EXPECT_EQ(d->drive_index, 2u);
  EXPECT_EQ(d->drive_generation, 3u);
  EXPECT_EQ(d->format_epoch, 5u);
  EXPECT_EQ(d->created_unix, 1'700'000'000u);
  EXPECT_EQ(d->layout.data_offset, sb.layout.data_offset);
  EXPECT_EQ(d->layout.data_size, sb.layout.data_size);
  EXPECT_EQ(d->layout.slot_offset[1], sb.layout.slot_offset[1]);
  EXPECT_EQ(d->active_slot, 1u);
  EXPECT_EQ(d->checkpoint_seq, 99u);
  EXPECT_EQ(d->checkpoint_bytes, 8192u);
  EXPECT_EQ(d->checkpoint_checksum, 0x1234u);
  EXPECT_EQ(d->journal_head, 3 * kPageSize);
}

TEST(Superblock, AnyFlippedByteIsCaught) {
  const Page page = EncodeSuperblock(Sample());
  for (size_t at = 8; at < kPageSize; at += 61) {
    Page bad = page;
    bad[at] ^= std::byte{0x10};
    EXPECT_EQ(DecodeSuperblock(bad).error(), errc::bad_checksum) << "byte " << at;
  }
}

TEST(Superblock, ZeroedPageIsNotAMemkvDrive) {
  Page zero{};
  EXPECT_EQ(DecodeSuperblock(zero).error(), errc::bad_magic);
}

TEST(Superblock, NewerFormatIsRefusedAsSuch) {
  Superblock sb = Sample();
  sb.format_version = kFormatVersion + 1;
  auto d = DecodeSuperblock(EncodeSuperblock(sb));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error(), errc::newer_format);
  EXPECT_NE(d.error().message().find("newer memkv"), std::string::npos);
}

TEST(Superblock, ValidChecksumButImpossibleFieldsIsABadRecord) {
  Superblock sb = Sample();
  sb.drive_index = sb.set_size;
  EXPECT_EQ(DecodeSuperblock(EncodeSuperblock(sb)).error(), errc::bad_record);
  sb = Sample();
  sb.layout.data_size += kPageSize * 1024 * 1024;
  EXPECT_EQ(DecodeSuperblock(EncodeSuperblock(sb)).error(), errc::bad_record);
}

TEST(ChooseSuperblock, TakesTheHigherGenerationOfTwoValidCopies) {
  Superblock a = Sample(), b = Sample();
  a.generation = 10;
  b.generation = 11;
  auto c = ChooseSuperblock(a, b);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->sb.generation, 11u);
  EXPECT_TRUE(c->from_mirror);
  c = ChooseSuperblock(b, a);
  EXPECT_EQ(c->sb.generation, 11u);
  EXPECT_FALSE(c->from_mirror);
}

TEST(ChooseSuperblock, FallsBackToTheMirrorWhenThePrimaryIsDamaged) {
  Page primary = EncodeSuperblock(Sample());
  primary[100] ^= std::byte{1};
  auto c = ChooseSuperblock(DecodeSuperblock(primary), DecodeSuperblock(EncodeSuperblock(Sample())));
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->from_mirror);
  EXPECT_EQ(c->primary_error, errc::bad_checksum);
}

TEST(ChooseSuperblock, SaysWhyWhenNeitherCopyServes) {
  Page zero{};
  EXPECT_EQ(ChooseSuperblock(DecodeSuperblock(zero), DecodeSuperblock(zero)).error(),
            errc::bad_magic);
  Page bad = EncodeSuperblock(Sample());
  bad[200] ^= std::byte{1};
  EXPECT_EQ(ChooseSuperblock(DecodeSuperblock(bad), DecodeSuperblock(zero)).error(),
            errc::no_superblock);
  Superblock newer = Sample();
  newer.format_version = kFormatVersion + 1;
  EXPECT_EQ(ChooseSuperblock(DecodeSuperblock(EncodeSuperblock(newer)), DecodeSuperblock(zero))
                .error(),
            errc::newer_format);
}

}  // namespace
}  // namespace memkv::store
