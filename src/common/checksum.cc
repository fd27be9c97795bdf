#include "common/checksum.h"

#include <algorithm>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace memkv {

uint64_t Xxh3(const void* data, size_t len, uint64_t seed) {
  return XXH3_64bits_withSeed(data, len, seed);
}

void PieceSums(const void* data, size_t len, uint64_t* out) {
  const auto* p = static_cast<const std::byte*>(data);
  for (size_t at = 0; at < len; at += kSumPiece)
    *out++ = XXH3_64bits(p + at, std::min(kSumPiece, len - at));
}

void CopyWithPieceSums(void* dst, const void* src, size_t len, uint64_t* out) {
  auto* d = static_cast<std::byte*>(dst);
  const auto* s = static_cast<const std::byte*>(src);
  for (size_t at = 0; at < len; at += kSumPiece) {
    const size_t n = std::min(kSumPiece, len - at);
    std::memcpy(d + at, s + at, n);
    *out++ = XXH3_64bits(d + at, n);  // from the copy: what is kept is what is summed
  }
}

Xxh3Stream::Xxh3Stream(uint64_t seed) : state_(XXH3_createState()) {
  XXH3_64bits_reset_withSeed(static_cast<XXH3_state_t*>(state_), seed);
}
Xxh3Stream::~Xxh3Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void Xxh3Stream::Update(const void* data, size_t len) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, len);
}
uint64_t Xxh3Stream::Digest() const {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_));
}

}  // namespace memkv
