#include "store/checkpoint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/checksum.h"
#include "store/error.h"

namespace memkv::store {
namespace {

// An entry that owns its key, for comparing what went in with what came out.
struct Owned {
  std::string key;
  uint64_t value_size = 0;
  uint64_t version = 0;
  uint16_t home = 0;
  std::vector<Extent> extents;
  std::vector<uint64_t> page_checksums;
};

Owned Own(const CheckpointEntry& e) {
  return {std::string(e.key), e.value_size, e.version, e.home, e.extents, e.page_checksums};
}

void ExpectSame(const Owned& a, const Owned& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.value_size, b.value_size);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.home, b.home);
  ASSERT_EQ(a.extents.size(), b.extents.size());
  for (size_t i = 0; i < a.extents.size(); ++i) {
    EXPECT_EQ(a.extents[i].drive, b.extents[i].drive);
    EXPECT_EQ(a.extents[i].drive_generation, b.extents[i].drive_generation);
    EXPECT_EQ(a.extents[i].page, b.extents[i].page);
    EXPECT_EQ(a.extents[i].pages, b.extents[i].pages);
    EXPECT_EQ(a.extents[i].table_pages, b.extents[i].table_pages);
    EXPECT_EQ(a.extents[i].table_checksum, b.extents[i].table_checksum);
  }
  EXPECT_EQ(a.page_checksums, b.page_checksums);
}

std::string RandomKey(std::mt19937_64& rng, size_t min_len = 1, size_t max_len = 1024) {
  std::string key(std::uniform_int_distribution<size_t>(min_len, max_len)(rng), '\0');
  // Every byte value, so that bytewise order is tested with 0x00 and 0xff.
  for (size_t i = 0; i < key.size(); i += 8) {
    const uint64_t r = rng();
    std::memcpy(key.data() + i, &r, std::min<size_t>(8, key.size() - i));
  }
  return key;
}

Owned RandomEntry(std::mt19937_64& rng, std::string key, size_t extents) {
  Owned e;
  e.key = std::move(key);
  e.value_size = 1 + rng() % (1ull << 32);
  e.version = rng();
  e.home = static_cast<uint16_t>(rng() % 8);
  for (size_t i = 0; i < extents; ++i) {
    e.extents.push_back({static_cast<uint16_t>(rng() % 8), rng(), rng(),
                         static_cast<uint32_t>(rng()), static_cast<uint16_t>(rng()), rng()});
  }
  e.page_checksums.resize(rng() % (kInlineChecksumPages + 1));
  for (uint64_t& c : e.page_checksums) c = rng();
  return e;
}

void AddTo(CheckpointWriter& w, const Owned& e) {
  w.Add(e.key, e.value_size, e.version, e.home, e.extents, e.page_checksums);
}

std::vector<Owned> ReadAll(Bytes image, Status* status = nullptr, Bytes* bitmap = nullptr,
                           CheckpointInfo* info = nullptr) {
  std::vector<Owned> out;
  Status st = ReadCheckpoint(
      image, [&](const CheckpointEntry& e) { out.push_back(Own(e)); }, bitmap, info);
  if (status) *status = st;
  EXPECT_TRUE(st || out.empty()) << "entries passed on from an invalid image";
  return out;
}

// The tree's height, from the header (offset 80: after magic, version,
// reserved and ten u64 fields).
uint32_t Height(const Buffer& image) {
  uint32_t h;
  std::memcpy(&h, image.data() + 80, sizeof h);
  return h;
}

Bytes AsBytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

// A small image with several levels: keys of ~1 KiB put three to a leaf
// and three to an inner node.
Buffer SmallDeepImage(std::vector<Owned>* entries = nullptr) {
  std::mt19937_64 rng(7);
  CheckpointWriter w;
  std::vector<Owned> all;
  for (int i = 0; i < 10; ++i) all.push_back(RandomEntry(rng, RandomKey(rng, 1000, 1024), 1));
  all.push_back(RandomEntry(rng, RandomKey(rng, 10, 20), 300));  // a node of several pages
  for (const Owned& e : all) AddTo(w, e);
  const std::string bitmap(5000, '\x5a');
  Buffer image = w.Finish(2, 99, AsBytes(bitmap));
  std::sort(all.begin(), all.end(), [](const Owned& a, const Owned& b) { return a.key < b.key; });
  if (entries) *entries = std::move(all);
  return image;
}

TEST(Checkpoint, EmptyRoundTrip) {
  CheckpointWriter w;
  CheckpointInfo written;
  const Buffer image = w.Finish(/*epoch=*/3, /*seq=*/7, {}, &written);
  EXPECT_EQ(image.size(), kPageSize);
  Status st;
  Bytes bitmap;
  CheckpointInfo info;
  EXPECT_TRUE(ReadAll(image, &st, &bitmap, &info).empty());
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(bitmap.empty());
  EXPECT_EQ(info.epoch, 3u);
  EXPECT_EQ(info.seq, 7u);
  EXPECT_EQ(info.entries, 0u);
  EXPECT_EQ(info.bytes, image.size());
  EXPECT_EQ(info.checksum, written.checksum);
  EXPECT_EQ(written.bytes, image.size());
  EXPECT_FALSE(LookupInCheckpoint(image, "a"));
}

TEST(Checkpoint, OneEntryRoundTripsEveryField) {
  const Extent ext[] = {{1, 9, 1234, 1024, 2, 0xabc}, {0, 8, 55, 10, 0, 0}};
  const uint64_t sums[] = {1, 2, 3};
  const Owned in{"block/0001", 5 << 20, 42, 1, {ext, ext + 2}, {sums, sums + 3}};
  CheckpointWriter w;
  AddTo(w, in);
  EXPECT_EQ(w.entries(), 1u);
  CheckpointInfo written;
  const Buffer image = w.Finish(1, 10, {}, &written);
  EXPECT_EQ(w.entries(), 0u) << "the writer is empty after Finish";
  EXPECT_EQ(image.size() % kPageSize, 0u);
  EXPECT_EQ(written.entries, 1u);

  Status st;
  CheckpointInfo info;
  const auto out = ReadAll(image, &st, nullptr, &info);
  ASSERT_TRUE(st) << st.error().message();
  ASSERT_EQ(out.size(), 1u);
  ExpectSame(out[0], in);
  EXPECT_EQ(info.entries, 1u);
  EXPECT_EQ(info.checksum, written.checksum);
  EXPECT_EQ(Height(image), 1u);

  auto found = LookupInCheckpoint(image, "block/0001");
  ASSERT_TRUE(found);
  ExpectSame(Own(*found), in);
  EXPECT_FALSE(LookupInCheckpoint(image, "block/0000"));
  EXPECT_FALSE(LookupInCheckpoint(image, "block/00010"));
  EXPECT_FALSE(LookupInCheckpoint(image, "block/0002"));
}

class CheckpointMany : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::mt19937_64 rng(2024);
    std::map<std::string, Owned> model;  // std::string orders bytewise, as the tree does
    CheckpointWriter w;
    while (model.size() < 100'000) {
      std::string key = RandomKey(rng);
      if (model.count(key)) continue;
      // Some entries take several pages each.
      const size_t extents = rng() % 500 == 0 ? 300 : 1 + rng() % 4;
      Owned e = RandomEntry(rng, key, extents);
      AddTo(w, e);  // in random order: the writer sorts
      model.emplace(std::move(key), std::move(e));
    }
    sorted_ = new std::vector<Owned>();
    for (auto& [k, e] : model) sorted_->push_back(std::move(e));
    image_ = new Buffer(w.Finish(5, 123456, {}));
  }
  static void TearDownTestSuite() {
    delete sorted_;
    delete image_;
  }
  static std::vector<Owned>* sorted_;
  static Buffer* image_;
};
std::vector<Owned>* CheckpointMany::sorted_ = nullptr;
Buffer* CheckpointMany::image_ = nullptr;

TEST_F(CheckpointMany, RoundTripInKeyOrder) {
  Status st;
  CheckpointInfo info;
  const auto out = ReadAll(*image_, &st, nullptr, &info);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(info.entries, sorted_->size());
  EXPECT_EQ(info.seq, 123456u);
  EXPECT_EQ(info.epoch, 5u);
  EXPECT_EQ(info.bytes, image_->size());
  ASSERT_EQ(out.size(), sorted_->size());
  for (size_t i = 0; i < out.size(); ++i) {
    ExpectSame(out[i], (*sorted_)[i]);
    if (HasFailure()) FAIL() << "at entry " << i;
  }
  EXPECT_GE(Height(*image_), 3u) << "expected leaves under more than one inner level";
}

TEST_F(CheckpointMany, LookupFindsEveryKeyThroughTheInnerNodes) {
  for (const Owned& e : *sorted_) {
    auto found = LookupInCheckpoint(*image_, e.key);
    ASSERT_TRUE(found) << "key of " << e.key.size() << " bytes not found";
    ExpectSame(Own(*found), e);
    if (HasFailure()) return;
  }
}

TEST_F(CheckpointMany, LookupOfAbsentKeysMisses) {
  const auto& all = *sorted_;
  EXPECT_FALSE(LookupInCheckpoint(*image_, std::string(1, '\0') + std::string(1, '\0')));
  EXPECT_FALSE(LookupInCheckpoint(*image_, std::string(1025, '\xff')));
  std::mt19937_64 rng(99);
  for (int i = 0; i < 20'000; ++i) {
    const Owned& e = all[rng() % all.size()];
    // Just after and just before an existing key, and a fresh random one.
    std::string after = e.key + '\0';
    std::string before = e.key.substr(0, e.key.size() - 1);
    std::string fresh = RandomKey(rng);
    for (const std::string* k : {&after, &before, &fresh}) {
      if (k->empty()) continue;
      const auto it =
          std::lower_bound(all.begin(), all.end(), *k,
                           [](const Owned& a, const std::string& b) { return a.key < b; });
      const bool present = it != all.end() && it->key == *k;
      EXPECT_EQ(LookupInCheckpoint(*image_, *k).has_value(), present);
    }
  }
}

TEST(Checkpoint, UnsortedAddsAndRepeatedKeysKeepTheHighestVersion) {
  std::mt19937_64 rng(5);
  CheckpointWriter w;
  AddTo(w, RandomEntry(rng, "b", 1));
  Owned a_old = RandomEntry(rng, "a", 1);
  a_old.version = 10;
  Owned a_new = RandomEntry(rng, "a", 2);
  a_new.version = 11;
  Owned c_new = RandomEntry(rng, "c", 1);
  c_new.version = 4;
  Owned c_old = RandomEntry(rng, "c", 3);
  c_old.version = 3;
  AddTo(w, a_old);
  AddTo(w, c_new);
  AddTo(w, a_new);
  AddTo(w, c_old);  // older, added later: still loses
  const Buffer image = w.Finish(1, 1, {});
  Status st;
  const auto out = ReadAll(image, &st);
  ASSERT_TRUE(st);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].key, "a");
  ExpectSame(out[0], a_new);
  EXPECT_EQ(out[1].key, "b");
  ExpectSame(out[2], c_new);
}

TEST(Checkpoint, SmallImageHasInnerLevelsAndReadsBack) {
  std::vector<Owned> entries;
  const Buffer image = SmallDeepImage(&entries);
  EXPECT_GE(Height(image), 3u);
  Status st;
  const auto out = ReadAll(image, &st);
  ASSERT_TRUE(st) << st.error().message();
  ASSERT_EQ(out.size(), entries.size());
  for (size_t i = 0; i < out.size(); ++i) ExpectSame(out[i], entries[i]);
  for (const Owned& e : entries) EXPECT_TRUE(LookupInCheckpoint(image, e.key));
}

TEST(Checkpoint, AFlippedByteInAnyRegionIsDetected) {
  std::vector<Owned> entries;
  const Buffer good = SmallDeepImage(&entries);
  Buffer image = good;
  for (size_t i = 0; i < image.size(); ++i) {
    // Every byte of the header and of each page's start and end (node
    // headers, padding), and a sample of the rest: bitmap, leaves, inner nodes.
    const size_t in_page = i % kPageSize;
    if (i >= kPageSize && in_page >= 32 && in_page < kPageSize - 8 && i % 61 != 0) continue;
    image[i] ^= std::byte{0x20};
    const Status st = ReadCheckpoint(image, [](const CheckpointEntry&) {
      ADD_FAILURE() << "an entry of a corrupt image was passed on";
    });
    ASSERT_FALSE(st) << "flip at byte " << i << " of " << image.size() << " went unnoticed";
    const auto e = st.error();
    EXPECT_TRUE(e == errc::bad_checksum || e == errc::bad_magic || e == errc::newer_format ||
                e == errc::bad_record || e == errc::truncated)
        << e.message();
    // Lookup does not check the checksum; it must still never over-read.
    for (const Owned& x : {entries.front(), entries.back()}) (void)LookupInCheckpoint(image, x.key);
    image[i] = good[i];
  }
}

TEST(Checkpoint, GarbageNeverOverReads) {
  std::vector<Owned> entries;
  const Buffer good = SmallDeepImage(&entries);
  std::mt19937_64 rng(11);
  for (int round = 0; round < 2000; ++round) {
    Buffer image = good;
    // Overwrite a few spots past the header (its fields are what locates the
    // rest), with random bytes or small numbers that look like lengths.
    for (int k = 0; k < 4; ++k) {
      const size_t at = rng() % image.size();
      for (size_t j = 0; j < 1 + rng() % 8 && at + j < image.size(); ++j)
        image[at + j] = static_cast<std::byte>(rng() % 3 == 0 ? rng() % 4 : rng());
    }
    image.resize(image.size() - (rng() % 2 ? rng() % image.size() : 0));
    if (image != good) {
      EXPECT_FALSE(ReadCheckpoint(image, nullptr));
    }
    for (const Owned& x : entries) (void)LookupInCheckpoint(image, x.key);
  }
}

// Rewrites the header's checksum (the format's seed pinned here) so that
// the reader's structural checks, not the checksum, meet the damage.
void Reseal(Buffer& image) {
  constexpr uint64_t kSeed = 0x434B50544D4B56;
  if (image.size() < kPageSize) return;
  uint64_t tree_offset, tree_length;
  std::memcpy(&tree_offset, image.data() + 48, 8);
  std::memcpy(&tree_length, image.data() + 56, 8);
  const uint64_t end = tree_offset + tree_length;
  if (tree_offset < kPageSize || end < tree_offset || end > image.size()) return;
  Xxh3Stream sum(kSeed);
  sum.Update(image.data(), kPageSize - 8);
  sum.Update(image.data() + kPageSize, end - kPageSize);
  const uint64_t digest = sum.Digest();
  std::memcpy(image.data() + kPageSize - 8, &digest, 8);
}

TEST(Checkpoint, ResealedDamageIsABadRecordNeverAnOverRead) {
  std::vector<Owned> entries;
  Buffer good = SmallDeepImage(&entries);
  Reseal(good);
  ASSERT_TRUE(ReadCheckpoint(good, nullptr)) << "Reseal does not match the format";
  std::mt19937_64 rng(13);
  int bad_records = 0;
  for (int round = 0; round < 3000; ++round) {
    Buffer image = good;
    // Header fields (not the magic and version) or anywhere in the tree,
    // which starts after the header and the two pages of bitmap.
    const size_t tree = 3 * kPageSize;
    const size_t at = rng() % 2 ? 8 + rng() % 80 : tree + rng() % (image.size() - tree);
    image[at] = static_cast<std::byte>(rng() % 3 == 0 ? rng() % 4 : rng());
    Reseal(image);
    std::vector<Owned> out;
    const Status st =
        ReadCheckpoint(image, [&](const CheckpointEntry& e) { out.push_back(Own(e)); });
    if (!st) {
      EXPECT_TRUE(out.empty());
      bad_records += st.error() == errc::bad_record;
    }
    for (const Owned& x : entries) (void)LookupInCheckpoint(image, x.key);
  }
  EXPECT_GT(bad_records, 100);
}

TEST(Checkpoint, AnEntryTheReaderCannotTakeIsABadRecord) {
  CheckpointWriter w;
  w.Add("no-extents", 100, 1, 0, {}, {});
  const Status st = ReadCheckpoint(w.Finish(1, 1, {}), nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error(), errc::bad_record);
}

TEST(Checkpoint, TruncatedImageIsRefused) {
  const Buffer image = SmallDeepImage();
  for (size_t keep :
       {size_t{0}, size_t{100}, size_t{kPageSize}, image.size() - kPageSize, image.size() - 1}) {
    const Status st = ReadCheckpoint(Bytes(image).first(keep), nullptr);
    ASSERT_FALSE(st) << keep;
    EXPECT_EQ(st.error(), errc::truncated) << keep;
    EXPECT_FALSE(LookupInCheckpoint(Bytes(image).first(keep), "x"));
  }
}

TEST(Checkpoint, ASlotLongerThanTheImageReads) {
  std::vector<Owned> entries;
  Buffer slot = SmallDeepImage(&entries);
  const size_t bytes = slot.size();
  slot.resize(bytes + 8 * kPageSize, std::byte{0x77});  // whatever the slot held before
  Status st;
  CheckpointInfo info;
  EXPECT_EQ(ReadAll(slot, &st, nullptr, &info).size(), entries.size());
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(info.bytes, bytes);
}

TEST(Checkpoint, NewerVersionIsRefused) {
  Buffer image = SmallDeepImage();
  const uint16_t newer = kCheckpointVersion + 1;
  std::memcpy(image.data() + 4, &newer, sizeof newer);
  const Status st = ReadCheckpoint(image, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error(), errc::newer_format);
  EXPECT_FALSE(LookupInCheckpoint(image, "x"));
}

TEST(Checkpoint, AnUnwrittenSlotIsNotACheckpoint) {
  const Buffer zeros(4 * kPageSize);
  const Status st = ReadCheckpoint(zeros, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error(), errc::bad_magic);
}

TEST(Checkpoint, BitmapRoundTrip) {
  std::mt19937_64 rng(3);
  for (size_t size : {size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{100'000}}) {
    std::string bits(size, '\0');
    for (char& c : bits) c = static_cast<char>(rng());
    CheckpointWriter w;
    const Owned e = RandomEntry(rng, "only", 2);
    AddTo(w, e);
    const Buffer image = w.Finish(1, 2, AsBytes(bits));
    EXPECT_EQ(image.size() % kPageSize, 0u);
    Bytes bitmap;
    Status st;
    const auto out = ReadAll(image, &st, &bitmap);
    ASSERT_TRUE(st) << size << ": " << st.error().message();
    ASSERT_EQ(bitmap.size(), size);
    EXPECT_TRUE(std::equal(bitmap.begin(), bitmap.end(), AsBytes(bits).begin()));
    ASSERT_EQ(out.size(), 1u);
    ExpectSame(out[0], e);
    EXPECT_TRUE(LookupInCheckpoint(image, "only"));
  }
}

}  // namespace
}  // namespace memkv::store
