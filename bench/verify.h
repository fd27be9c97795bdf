#pragma once
// The bytes memkv-bench writes and checks. A value is a pure function of its
// key's number and a seed: word i (8 bytes, little-endian) is
//   Base(key_id, seed) + i * kStride
// and a tail shorter than a word holds the low bytes of the word it would
// have been. Cheap to generate and to check (the compiler vectorizes both
// loops), and a block of another key, another seed or another offset in the
// value does not pass. Pure functions, no I/O: tests can use them.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace memkv::bench {

inline constexpr uint64_t kPatternStride = 0x9e3779b97f4a7c15ull;

// SplitMix64's finalizer: a different base for every (key_id, seed).
inline uint64_t PatternBase(uint64_t key_id, uint64_t seed) {
  uint64_t z = key_id * 0xbf58476d1ce4e5b9ull + seed + kPatternStride;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Fills `out` with the value of `key_id` under `seed`, starting at byte
// `offset` of the value (a multiple of 8).
inline void FillBlock(std::span<std::byte> out, uint64_t key_id, uint64_t seed,
                      uint64_t offset = 0) {
  static_assert(std::endian::native == std::endian::little);
  const uint64_t base = PatternBase(key_id, seed);
  const size_t words = out.size() / 8;
  uint64_t word_index = offset / 8;
  std::byte* p = out.data();
  for (size_t i = 0; i < words; ++i) {
    const uint64_t w = base + (word_index + i) * kPatternStride;
    std::memcpy(p + i * 8, &w, 8);
  }
  if (const size_t tail = out.size() % 8; tail != 0) {
    const uint64_t w = base + (word_index + words) * kPatternStride;
    std::memcpy(p + words * 8, &w, tail);
  }
}

// True when `block` is exactly bytes [offset, offset + block.size()) of the
// value of `key_id` under `seed` (offset a multiple of 8).
inline bool VerifyBlock(std::span<const std::byte> block, uint64_t key_id, uint64_t seed,
                        uint64_t offset = 0) {
  const uint64_t base = PatternBase(key_id, seed);
  const size_t words = block.size() / 8;
  const uint64_t word_index = offset / 8;
  const std::byte* p = block.data();
  uint64_t diff = 0;  // no early exit: the loop stays branch-free and vectorizes
  for (size_t i = 0; i < words; ++i) {
    uint64_t w;
    std::memcpy(&w, p + i * 8, 8);
    diff |= w ^ (base + (word_index + i) * kPatternStride);
  }
  if (const size_t tail = block.size() % 8; tail != 0) {
    const uint64_t want = base + (word_index + words) * kPatternStride;
    uint64_t got = 0, expected = 0;
    std::memcpy(&got, p + words * 8, tail);
    std::memcpy(&expected, &want, tail);
    diff |= got ^ expected;
  }
  return diff == 0;
}

}  // namespace memkv::bench
