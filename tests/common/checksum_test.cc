#include "common/checksum.h"

#include <gtest/gtest.h>

#include <string>

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

TEST(Xxh3Stream, EqualsTheOneShotChecksumOfTheConcatenation) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 31));
  Xxh3Stream s(7);
  size_t pos = 0;
  for (size_t piece : {1u, 3u, 250u, 4096u, 70000u}) {
    s.Update(data.data() + pos, piece);
    pos += piece;
  }
  s.Update(data.data() + pos, data.size() - pos);
  EXPECT_EQ(s.Digest(), Xxh3(data, 7));
}

}  // namespace
}  // namespace memkv
