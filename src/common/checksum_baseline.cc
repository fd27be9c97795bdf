#define MEMKV_KERNELS_GETTER BaselineChecksumKernels
#if defined(__aarch64__)
#define MEMKV_KERNELS_NAME "neon"
#elif defined(__x86_64__)
#define MEMKV_KERNELS_NAME "sse2"
#else
#define MEMKV_KERNELS_NAME "scalar"
#endif
#include "common/checksum_kernels.inc"
