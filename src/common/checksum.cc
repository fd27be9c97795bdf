#include "common/checksum.h"

#define XXH_INLINE_ALL  // create, reset and free only; the loops are in the kernels
#include <xxhash.h>

#include "common/checksum_kernels.h"

namespace memkv {

#if defined(MEMKV_CHECKSUM_AVX2)
const ChecksumKernels& Avx2KernelsUnchecked();  // checksum_avx2.cc
const ChecksumKernels* Avx2ChecksumKernels() {
  static const bool has_avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has_avx2 ? &Avx2KernelsUnchecked() : nullptr;
}
#else
const ChecksumKernels* Avx2ChecksumKernels() { return nullptr; }
#endif

const ChecksumKernels& ActiveChecksumKernels() {
  static const ChecksumKernels& active = []() -> const ChecksumKernels& {
    if (const ChecksumKernels* avx2 = Avx2ChecksumKernels()) return *avx2;
    return BaselineChecksumKernels();
  }();
  return active;
}

uint64_t Xxh3(const void* data, size_t len, uint64_t seed) {
  return ActiveChecksumKernels().xxh3(data, len, seed);
}

void PieceSums(const void* data, size_t len, uint64_t* out) {
  ActiveChecksumKernels().piece_sums(data, len, out);
}

void CopyWithPieceSums(void* dst, const void* src, size_t len, uint64_t* out) {
  ActiveChecksumKernels().copy_with_piece_sums(dst, src, len, out);
}

// The state's layout does not depend on the instruction set: created and
// reset here, fed and read by the active kernels.
Xxh3Stream::Xxh3Stream(uint64_t seed) : state_(XXH3_createState()) {
  XXH3_64bits_reset_withSeed(static_cast<XXH3_state_t*>(state_), seed);
}
Xxh3Stream::~Xxh3Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void Xxh3Stream::Update(const void* data, size_t len) {
  ActiveChecksumKernels().stream_update(state_, data, len);
}
uint64_t Xxh3Stream::Digest() const { return ActiveChecksumKernels().stream_digest(state_); }

}  // namespace memkv
