#include "proto/chunk.h"

#include <gtest/gtest.h>

namespace memkv::proto {
namespace {

TEST(ChunkSequencer, AcceptsChunksInOrderAndCompletesOnTheLast) {
  ChunkSequencer s(10);
  EXPECT_TRUE(s.Accept({0, 0, 0, false}, 4));
  EXPECT_FALSE(s.complete());
  EXPECT_TRUE(s.Accept({0, 1, 4, false}, 4));
  EXPECT_TRUE(s.Accept({0, 2, 8, true}, 2));
  EXPECT_TRUE(s.complete());
  EXPECT_EQ(s.received(), 10u);
}

TEST(ChunkSequencer, ChunkOutOfOrder) {
  ChunkSequencer s(10);
  ASSERT_TRUE(s.Accept({0, 0, 0, false}, 4));
  EXPECT_EQ(s.Accept({0, 2, 4, false}, 4).error(), errc::chunk_out_of_order);
  // After an error the stream is dead: the value never completes.
  EXPECT_EQ(s.Accept({0, 1, 4, true}, 6).error(), errc::chunk_out_of_order);
  EXPECT_FALSE(s.complete());
}

TEST(ChunkSequencer, ChunkAtTheWrongOffset) {
  ChunkSequencer s(10);
  ASSERT_TRUE(s.Accept({0, 0, 0, false}, 4));
  EXPECT_EQ(s.Accept({0, 1, 5, false}, 4).error(), errc::chunk_out_of_order);
}

TEST(ChunkSequencer, FirstChunkMustBeNumberZero) {
  ChunkSequencer s(10);
  EXPECT_EQ(s.Accept({0, 1, 0, false}, 4).error(), errc::chunk_out_of_order);
}

TEST(ChunkSequencer, ChunkPastTheEnd) {
  ChunkSequencer s(10);
  EXPECT_EQ(s.Accept({0, 0, 0, true}, 11).error(), errc::chunk_overrun);
}

TEST(ChunkSequencer, LastChunkBeforeTheValueIsComplete) {
  ChunkSequencer s(10);
  EXPECT_EQ(s.Accept({0, 0, 0, true}, 9).error(), errc::chunk_incomplete);
  EXPECT_FALSE(s.complete());
}

TEST(ChunkSequencer, CompleteValueWithoutTheLastFlag) {
  ChunkSequencer s(10);
  EXPECT_EQ(s.Accept({0, 0, 0, false}, 10).error(), errc::length_mismatch);
}

TEST(ChunkSequencer, NothingAfterTheLastChunk) {
  ChunkSequencer s(4);
  ASSERT_TRUE(s.Accept({0, 0, 0, true}, 4));
  EXPECT_EQ(s.Accept({0, 1, 4, false}, 1).error(), errc::chunk_out_of_order);
}

TEST(PlanChunks, ProducesWhatTheSequencerAccepts) {
  const uint64_t size = 100 * 1000 + 7;
  const auto chunks = PlanChunks(4, size, 4096);
  ASSERT_EQ(chunks.size(), (size + 4095) / 4096);
  ChunkSequencer s(size);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const uint64_t end = i + 1 < chunks.size() ? chunks[i + 1].offset : size;
    EXPECT_EQ(chunks[i].entry, 4u);
    ASSERT_TRUE(s.Accept(chunks[i], end - chunks[i].offset)) << i;
  }
  EXPECT_TRUE(s.complete());
}

TEST(ChunkSequencer, AnOpenStreamEndsWhereItsLastChunkEnds) {
  ChunkSequencer s = ChunkSequencer::Open();
  ASSERT_TRUE(s.Accept({0, 0, 0, false}, 100));
  ASSERT_TRUE(s.Accept({0, 1, 100, false}, 1 << 20));
  EXPECT_FALSE(s.complete());
  ASSERT_TRUE(s.Accept({0, 2, 100 + (1 << 20), true}, 7));
  EXPECT_TRUE(s.complete());
  EXPECT_EQ(s.received(), 100u + (1 << 20) + 7);
  EXPECT_EQ(s.Accept({0, 3, 107 + (1 << 20), true}, 1).error(), errc::chunk_out_of_order);
}

TEST(ChunkSequencer, AnOpenStreamStillChecksSequenceAndOffset) {
  ChunkSequencer gap = ChunkSequencer::Open();
  ASSERT_TRUE(gap.Accept({0, 0, 0, false}, 10));
  EXPECT_EQ(gap.Accept({0, 2, 10, false}, 10).error(), errc::chunk_out_of_order);
  ChunkSequencer off = ChunkSequencer::Open();
  ASSERT_TRUE(off.Accept({0, 0, 0, false}, 10));
  EXPECT_EQ(off.Accept({0, 1, 11, true}, 10).error(), errc::chunk_out_of_order);
  ChunkSequencer empty = ChunkSequencer::Open();
  EXPECT_EQ(empty.Accept({0, 0, 0, true}, 0).error(), errc::chunk_overrun);
}

}  // namespace
}  // namespace memkv::proto
