#pragma once
// The XXH3 loops behind common/checksum.h, compiled once per instruction set.
// XXH3 gives the same value whatever vector unit computes it; only the speed
// differs (on x86-64, AVX2 hashes about 2.5x faster than the SSE2 every
// x86-64 CPU has: 42 against 16 GiB/s over 4 KiB pieces in cache, measured on
// the development machine). checksum.cc picks the fastest set the CPU runs,
// once; the tests compare every set built against the baseline.

#include <cstddef>
#include <cstdint>

namespace memkv {

struct ChecksumKernels {
  const char* name;
  uint64_t (*xxh3)(const void* data, size_t len, uint64_t seed);
  void (*piece_sums)(const void* data, size_t len, uint64_t* out);
  void (*copy_with_piece_sums)(void* dst, const void* src, size_t len, uint64_t* out);
  void (*stream_update)(void* state, const void* data, size_t len);  // XXH3_state_t
  uint64_t (*stream_digest)(const void* state);
};

// Built for the architecture's baseline (SSE2 on x86-64, NEON on arm64).
const ChecksumKernels& BaselineChecksumKernels();
// Built with AVX2 on x86-64; nullptr where this build has no such set or the
// CPU lacks AVX2.
const ChecksumKernels* Avx2ChecksumKernels();
// The set every checksum in this process goes through.
const ChecksumKernels& ActiveChecksumKernels();

}  // namespace memkv
