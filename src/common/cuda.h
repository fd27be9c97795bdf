#pragma once
// The project's one CUDA loader. The CUDA driver API is reached through
// dlopen("libcuda.so.1") at first use, never linked and never compiled
// against: the few types and values memkv needs are declared below with the
// driver's documented values (cuda.h). Without libcuda.so.1 (this machine,
// most servers) every pointer is host memory and the code path is the same.
//
// Used by rdma (GPU registration: dma-buf export, else ibv_reg_mr on the GPU
// address) and by client (the scatter's device copies). The driver entry
// points sit in a CudaDriverTable, a struct of function pointers, so a test
// installs stand-ins (Cuda over its own table, or SetProcessForTesting).
//
// Thread-safe: the table and the status are constant after construction;
// the primary contexts retained for copies are guarded by mu_.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/mutex.h"
#include "common/result.h"
#include "common/thread_annotations.h"

namespace memkv::common {

// The driver's own names and values, as cuda.h declares them.
namespace cu {
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st*;

inline constexpr CUresult CUDA_SUCCESS = 0;
inline constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
inline constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
inline constexpr CUresult CUDA_ERROR_NOT_INITIALIZED = 3;
inline constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
inline constexpr CUresult CUDA_ERROR_INVALID_DEVICE = 101;
inline constexpr CUresult CUDA_ERROR_NOT_SUPPORTED = 801;

// CUpointer_attribute.
inline constexpr int CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2;
inline constexpr int CU_POINTER_ATTRIBUTE_BUFFER_ID = 7;
inline constexpr int CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9;
// CUmemorytype.
inline constexpr unsigned CU_MEMORYTYPE_HOST = 1;
inline constexpr unsigned CU_MEMORYTYPE_DEVICE = 2;
inline constexpr unsigned CU_MEMORYTYPE_ARRAY = 3;
inline constexpr unsigned CU_MEMORYTYPE_UNIFIED = 4;
// CUmemRangeHandleType.
inline constexpr int CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD = 1;
// CUdevice_attribute.
inline constexpr int CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = 124;
}  // namespace cu

// The driver entry points memkv calls. Load() resolves each by its exported
// (versioned) symbol, named beside it; every pointer is non-null in a table
// a Cuda is built over.
struct CudaDriverTable {
  cu::CUresult (*init)(unsigned flags);                           // cuInit
  cu::CUresult (*device_get_count)(int* count);                   // cuDeviceGetCount
  cu::CUresult (*device_get)(cu::CUdevice* device, int ordinal);  // cuDeviceGet
  cu::CUresult (*device_get_attribute)(int* value, int attribute, cu::CUdevice device);
  cu::CUresult (*primary_ctx_retain)(cu::CUcontext* ctx, cu::CUdevice device);
  cu::CUresult (*primary_ctx_release)(cu::CUdevice device);  // cuDevicePrimaryCtxRelease_v2
  cu::CUresult (*ctx_set_current)(cu::CUcontext ctx);        // cuCtxSetCurrent
  cu::CUresult (*pointer_get_attribute)(void* data, int attribute, cu::CUdeviceptr ptr);
  cu::CUresult (*mem_get_address_range)(cu::CUdeviceptr* base, size_t* size,
                                        cu::CUdeviceptr ptr);  // cuMemGetAddressRange_v2
  cu::CUresult (*mem_get_handle_for_address_range)(void* handle, cu::CUdeviceptr ptr, size_t size,
                                                   int handle_type, unsigned long long flags);
  cu::CUresult (*memcpy)(cu::CUdeviceptr dst, cu::CUdeviceptr src, size_t n);  // cuMemcpy
  cu::CUresult (*mem_alloc)(cu::CUdeviceptr* ptr, size_t n);                   // cuMemAlloc_v2
  cu::CUresult (*mem_free)(cu::CUdeviceptr ptr);                               // cuMemFree_v2
};

enum class MemoryKind { kHost, kDevice };

// What a pointer is, found once per registration. Device memory is keyed by
// the allocation's buffer id (unique in the process for the allocation's
// life), so a freed and reused address is a different key.
struct PointerInfo {
  MemoryKind kind = MemoryKind::kHost;
  int device = -1;         // the device ordinal (device memory)
  uint64_t buffer_id = 0;  // CU_POINTER_ATTRIBUTE_BUFFER_ID (device memory)
  uintptr_t base = 0;      // the allocation holding the pointer (device memory)
  size_t size = 0;

  bool is_device() const { return kind == MemoryKind::kDevice; }
};

// A dma-buf exported for [ptr, ptr + length): register it as
// ibv_reg_dmabuf_mr(pd, offset, length, iova = ptr, fd, ...). Owns fd and
// closes it (a registration keeps its own reference to the dma-buf).
class DmabufRange {
 public:
  DmabufRange(int fd, uint64_t offset, size_t length) : fd_(fd), offset_(offset), length_(length) {}
  DmabufRange(DmabufRange&& o) noexcept;
  DmabufRange& operator=(DmabufRange&& o) noexcept;
  ~DmabufRange();

  int fd() const { return fd_; }
  uint64_t offset() const { return offset_; }  // of ptr within the dma-buf
  size_t length() const { return length_; }

 private:
  int fd_ = -1;
  uint64_t offset_ = 0;
  size_t length_ = 0;
};

class Cuda {
 public:
  // The process's loader: dlopen("libcuda.so.1") and cuInit(0) on the first
  // call, from any thread.
  static const Cuda& Process();
  // Makes Process() return `cuda` (not owned) until called with nullptr.
  static void SetProcessForTesting(const Cuda* cuda);

  // A loader over `library` (a soname or path): unavailable, with the reason
  // in status(), when it cannot be opened, lacks a symbol, or cuInit fails.
  static std::unique_ptr<Cuda> Load(const char* library = "libcuda.so.1");
  // A loader over `table` (stand-ins in tests); calls table.init(0).
  explicit Cuda(const CudaDriverTable& table);
  // A loader with no driver: everything is host memory.
  static std::unique_ptr<Cuda> Unavailable(std::string reason);
  ~Cuda();

  Cuda(const Cuda&) = delete;
  Cuda& operator=(const Cuda&) = delete;

  bool available() const { return available_; }
  // "libcuda.so.1: 2 devices" or why there is no driver ("no libcuda.so.1: ...").
  const std::string& status() const { return status_; }
  int device_count() const { return device_count_; }

  // Host or device; host when the driver is absent or does not know `p`.
  Result<PointerInfo> Classify(const void* p, std::string* why = nullptr) const;
  // The allocation's buffer id of `p` (one driver call), or 0 where the
  // driver does not know `p` (host memory, freed memory, no driver): how a
  // registration of device memory is checked to still be the same buffer.
  uint64_t BufferIdOf(const void* p) const;
  // Exports the device memory [p, p + n) as a dma-buf (the host-page-aligned
  // range around it); not_device_memory, cuda_unavailable or cuda_failed
  // (dma-buf unsupported: the caller falls back to ibv_reg_mr on `p`).
  Result<DmabufRange> ExportDmabuf(const void* p, size_t n, std::string* why = nullptr) const;
  // The same for memory already classified (`info` is Classify(p)'s): no
  // second classification.
  Result<DmabufRange> ExportDmabuf(const PointerInfo& info, const void* p, size_t n,
                                   std::string* why = nullptr) const;
  // Whether device `ordinal` says it can export dma-bufs.
  bool DmabufSupported(int ordinal) const;
  // Copies n bytes between any two of host and device memory (cuMemcpy in
  // the device's primary context; memcpy when both are host memory).
  Status Copy(void* dst, const void* src, size_t n, std::string* why = nullptr) const;

  // Device memory for tests and benchmarks.
  Result<void*> AllocDevice(int ordinal, size_t n, std::string* why = nullptr) const;
  Status FreeDevice(void* p, std::string* why = nullptr) const;

 private:
  Cuda(std::string status, void* handle);
  Status MakeCurrent(int ordinal, std::string* why) const;

  // Constant after construction.
  CudaDriverTable table_{};
  bool available_ = false;
  int device_count_ = 0;
  std::string status_;
  void* handle_ = nullptr;  // dlopen handle (Load), never closed while in use

  mutable Mutex mu_;
  mutable std::map<int, cu::CUcontext> contexts_ GUARDED_BY(mu_);  // retained primary contexts
};

// "CUDA_ERROR_INVALID_VALUE (1)" and the like.
std::string DescribeCuResult(cu::CUresult r);

}  // namespace memkv::common
