#pragma once
// Checksums (XXH3-64). Used for every on-disk record, every value's 4 KiB
// pages and the per-entry checksum of writes on the wire.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace memkv {

uint64_t Xxh3(const void* data, size_t len, uint64_t seed = 0);
inline uint64_t Xxh3(std::span<const std::byte> bytes, uint64_t seed = 0) {
  return Xxh3(bytes.data(), bytes.size(), seed);
}
inline uint64_t Xxh3(std::string_view s, uint64_t seed = 0) { return Xxh3(s.data(), s.size(), seed); }

// Per-piece checksums: the XXH3 of each 4 KiB piece of a value (the last
// piece may be shorter). What the store keeps for a value in memory and what
// the wire carries, so a value is checked end to end, piece by piece, while
// each piece is still in cache.
inline constexpr size_t kSumPiece = 4096;
inline constexpr size_t PiecesOf(size_t len) { return (len + kSumPiece - 1) / kSumPiece; }
void PieceSums(const void* data, size_t len, uint64_t* out);
// Copies `len` bytes and sums each piece as it lands: one pass over memory.
void CopyWithPieceSums(void* dst, const void* src, size_t len, uint64_t* out);

// Incremental XXH3-64 over pieces that arrive one after another (a value
// streamed in chunks). The result equals Xxh3() of the concatenation.
class Xxh3Stream {
 public:
  explicit Xxh3Stream(uint64_t seed = 0);
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;

  void Update(const void* data, size_t len);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

}  // namespace memkv
