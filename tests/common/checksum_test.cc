#include "common/checksum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "common/checksum_kernels.h"

namespace memkv {
namespace {

TEST(Xxh3, MatchesTheReferenceValueOfXxh3_64) {
  // XXH3_64bits("") with seed 0, as published with xxHash.
  EXPECT_EQ(Xxh3("", 0), 0x2D06800538D394C2ull);
}

TEST(Xxh3, OneFlippedBitChangesTheChecksum) {
  std::string data(4096, 'x');
  const uint64_t before = Xxh3(data);
  data[1234] ^= 1;
  EXPECT_NE(Xxh3(data), before);
}

TEST(Xxh3, SeedSeparatesDomains) { EXPECT_NE(Xxh3("key", 1), Xxh3("key", 2)); }

// The digest of `size` bytes fed to an Xxh3Stream in `steps`, then the rest.
uint64_t StreamedInSteps(const void* data, size_t size, uint64_t seed,
                         std::initializer_list<size_t> steps) {
  const auto* p = static_cast<const unsigned char*>(data);
  Xxh3Stream s(seed);
  size_t pos = 0;
  for (size_t step : steps) {
    s.Update(p + pos, step);
    pos += step;
  }
  s.Update(p + pos, size - pos);
  return s.Digest();
}

TEST(Xxh3Stream, EqualsTheOneShotChecksumOfTheConcatenation) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 31));
  EXPECT_EQ(StreamedInSteps(data.data(), data.size(), 7, {1, 3, 250, 4096, 70000}), Xxh3(data, 7));
}

// Every kernel set this build has and this CPU runs gives the baseline's
// values: for lengths around XXH3's internal block and stripe sizes, odd
// alignments, seeds, piece sums, copies and streams fed in uneven steps.
TEST(ChecksumKernels, EverySetGivesTheBaselinesValues) {
  std::vector<const ChecksumKernels*> sets{&BaselineChecksumKernels()};
  if (const ChecksumKernels* avx2 = Avx2ChecksumKernels()) sets.push_back(avx2);
  const ChecksumKernels& base = BaselineChecksumKernels();

  std::mt19937_64 rng(12345);
  std::vector<unsigned char> data(3 * 4096 + 1000 + 64);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  const std::vector<size_t> lengths{0,    1,    3,    16,   17,   128,  129,  240,  241,
                                    255,  1024, 1025, 4095, 4096, 4097, 8191, 8192, 12288,
                                    13287};
  for (const ChecksumKernels* set : sets) {
    SCOPED_TRACE(set->name);
    for (size_t offset : {0, 1, 7, 64}) {
      for (size_t len : lengths) {
        SCOPED_TRACE(testing::Message() << "offset " << offset << " length " << len);
        const unsigned char* p = data.data() + offset;
        for (uint64_t seed : {uint64_t{0}, uint64_t{0x9e3779b97f4a7c15}})
          EXPECT_EQ(set->xxh3(p, len, seed), base.xxh3(p, len, seed));

        std::vector<uint64_t> want(PiecesOf(len)), got(PiecesOf(len)), copied(PiecesOf(len));
        base.piece_sums(p, len, want.data());
        set->piece_sums(p, len, got.data());
        EXPECT_EQ(got, want);
        std::vector<unsigned char> dst(len + 1, 0xee);
        set->copy_with_piece_sums(dst.data(), p, len, copied.data());
        EXPECT_EQ(copied, want);
        EXPECT_TRUE(std::equal(p, p + len, dst.begin()));
        EXPECT_EQ(dst[len], 0xee) << "copied past the end";
      }
    }
  }
  // Streams go through the active set; it must agree with the one-shot value
  // of the baseline whatever the steps.
  EXPECT_EQ(StreamedInSteps(data.data(), data.size(), 3, {5, 300, 1024, 4096, 5000}),
            base.xxh3(data.data(), data.size(), 3));
}

// On an x86-64 CPU with AVX2 the process hashes with AVX2, not SSE2: the
// sums are the same, but SSE2 is about 2.5x slower.
TEST(ChecksumKernels, TheFastestSetTheCpuRunsIsActive) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "this CPU has no AVX2";
  ASSERT_NE(Avx2ChecksumKernels(), nullptr);
  EXPECT_STREQ(ActiveChecksumKernels().name, "avx2");
#else
  EXPECT_STREQ(ActiveChecksumKernels().name, BaselineChecksumKernels().name);
#endif
}

}  // namespace
}  // namespace memkv
