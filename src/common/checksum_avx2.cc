// Compiled with -mavx2 (src/common/CMakeLists.txt); only reached through
// Avx2ChecksumKernels() in checksum.cc, after the CPU said it has AVX2.
#define MEMKV_KERNELS_GETTER Avx2KernelsUnchecked
#define MEMKV_KERNELS_NAME "avx2"
#include "common/checksum_kernels.inc"
