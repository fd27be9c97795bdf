#pragma once
// FakeGpu: a stand-in CUDA driver table for unit tests. "Device memory" is
// host memory that the fake says belongs to a device (so copies can be
// checked byte for byte); dma-buf exports hand out real descriptors (memfd)
// so a test can see them closed. One FakeGpu is current at a time (the
// table's entries are plain functions). Its driver calls may come from many
// threads (the record of them is locked); the knobs and the device ranges
// are set while no call runs.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common/cuda.h"

namespace memkv::testing {

class FakeGpu {
 public:
  struct Alloc {
    uintptr_t base;
    size_t size;
    int device;
    unsigned long long buffer_id;
  };
  struct Export {
    uintptr_t start;
    size_t size;
    int handle_type;
    int fd;
  };

  FakeGpu() { current_ = this; }
  ~FakeGpu() { current_ = nullptr; }

  // Knobs.
  common::cu::CUresult init_result = common::cu::CUDA_SUCCESS;
  common::cu::CUresult attribute_error = common::cu::CUDA_SUCCESS;  // for device pointers
  common::cu::CUresult export_result = common::cu::CUDA_SUCCESS;
  int device_count = 2;
  int dmabuf_supported = 1;

  // What happened (read while no call runs).
  std::vector<std::string> calls;
  std::vector<Export> exports;
  int retained = 0;
  int released = 0;
  int set_current = 0;

  // Declares [p, p + n) device memory of `device`; returns its buffer id.
  unsigned long long AddDeviceRange(void* p, size_t n, int device) {
    allocs_.push_back({reinterpret_cast<uintptr_t>(p), n, device, next_buffer_id_});
    return next_buffer_id_++;
  }
  // Calls of `name` made so far.
  int Count(const std::string& name) const {
    return static_cast<int>(std::count(calls.begin(), calls.end(), name));
  }
  void RemoveDeviceRange(void* p) {
    std::erase_if(allocs_,
                  [&](const Alloc& a) { return a.base == reinterpret_cast<uintptr_t>(p); });
  }

  common::CudaDriverTable Table() const {
    common::CudaDriverTable t{};
    t.init = [](unsigned) { return Call("cuInit", current_->init_result); };
    t.device_get_count = [](int* n) {
      *n = current_->device_count;
      return Call("cuDeviceGetCount", 0);
    };
    t.device_get = [](common::cu::CUdevice* d, int ordinal) {
      *d = ordinal;
      return Call("cuDeviceGet", ordinal < current_->device_count ? 0 : 101);
    };
    t.device_get_attribute = [](int* v, int attr, common::cu::CUdevice) {
      *v = attr == common::cu::CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED ? current_->dmabuf_supported
                                                                     : 0;
      return Call("cuDeviceGetAttribute", 0);
    };
    t.primary_ctx_retain = [](common::cu::CUcontext* ctx, common::cu::CUdevice d) {
      ++current_->retained;
      *ctx = reinterpret_cast<common::cu::CUcontext>(static_cast<uintptr_t>(0x1000 + d));
      return Call("cuDevicePrimaryCtxRetain", 0);
    };
    t.primary_ctx_release = [](common::cu::CUdevice) {
      ++current_->released;
      return Call("cuDevicePrimaryCtxRelease", 0);
    };
    t.ctx_set_current = [](common::cu::CUcontext) {
      ++current_->set_current;
      return Call("cuCtxSetCurrent", 0);
    };
    t.pointer_get_attribute = [](void* data, int attr, common::cu::CUdeviceptr p) {
      const Alloc* a = current_->Find(p);
      if (!a) return Call("cuPointerGetAttribute", common::cu::CUDA_ERROR_INVALID_VALUE);
      if (current_->attribute_error)
        return Call("cuPointerGetAttribute", current_->attribute_error);
      switch (attr) {
        case common::cu::CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
          *static_cast<unsigned*>(data) = common::cu::CU_MEMORYTYPE_DEVICE;
          break;
        case common::cu::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
          *static_cast<int*>(data) = a->device;
          break;
        case common::cu::CU_POINTER_ATTRIBUTE_BUFFER_ID:
          *static_cast<unsigned long long*>(data) = a->buffer_id;
          break;
        default:
          return Call("cuPointerGetAttribute", common::cu::CUDA_ERROR_INVALID_VALUE);
      }
      return Call("cuPointerGetAttribute", 0);
    };
    t.mem_get_address_range = [](common::cu::CUdeviceptr* base, size_t* size,
                                 common::cu::CUdeviceptr p) {
      const Alloc* a = current_->Find(p);
      if (!a) return Call("cuMemGetAddressRange", common::cu::CUDA_ERROR_INVALID_VALUE);
      *base = a->base;
      *size = a->size;
      return Call("cuMemGetAddressRange", 0);
    };
    t.mem_get_handle_for_address_range = [](void* handle, common::cu::CUdeviceptr p, size_t n,
                                            int type, unsigned long long) {
      if (current_->export_result)
        return Call("cuMemGetHandleForAddressRange", current_->export_result);
      const int fd = ::memfd_create("fake-dmabuf", MFD_CLOEXEC);
      *static_cast<int*>(handle) = fd;
      {
        std::lock_guard lock(current_->mu_);
        current_->exports.push_back({static_cast<uintptr_t>(p), n, type, fd});
      }
      return Call("cuMemGetHandleForAddressRange", 0);
    };
    t.memcpy = [](common::cu::CUdeviceptr dst, common::cu::CUdeviceptr src, size_t n) {
      std::memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
      return Call("cuMemcpy", 0);
    };
    t.mem_alloc = [](common::cu::CUdeviceptr* p, size_t n) {
      void* mem = std::aligned_alloc(4096, (n + 4095) & ~size_t{4095});
      *p = reinterpret_cast<uintptr_t>(mem);
      current_->AddDeviceRange(mem, n, 0);
      return Call("cuMemAlloc", 0);
    };
    t.mem_free = [](common::cu::CUdeviceptr p) {
      current_->RemoveDeviceRange(reinterpret_cast<void*>(p));
      std::free(reinterpret_cast<void*>(p));
      return Call("cuMemFree", 0);
    };
    return t;
  }

 private:
  static common::cu::CUresult Call(const char* name, common::cu::CUresult r) {
    std::lock_guard lock(current_->mu_);
    current_->calls.emplace_back(name);
    return r;
  }
  const Alloc* Find(uintptr_t p) const {
    for (const Alloc& a : allocs_)
      if (p >= a.base && p < a.base + a.size) return &a;
    return nullptr;
  }

  static inline FakeGpu* current_ = nullptr;
  std::mutex mu_;  // guards calls and exports while calls run
  std::vector<Alloc> allocs_;
  unsigned long long next_buffer_id_ = 41;
};

// Page-aligned host memory that a FakeGpu can call device memory.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t n)
      : size(n), data(static_cast<std::byte*>(std::aligned_alloc(4096, n))) {}
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  size_t size;
  std::byte* data;
};

}  // namespace memkv::testing
