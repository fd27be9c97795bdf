#include "common/cuda.h"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include <fmt/format.h>

#include "common/error.h"

namespace memkv::common {
namespace {

using cu::CUresult;

error_code Fail(std::string* why, errc code, std::string text) {
  if (why) *why = std::move(text);
  return code;
}

error_code CallFailed(std::string* why, const char* call, CUresult r) {
  return Fail(why, errc::cuda_failed, fmt::format("{}: {}", call, DescribeCuResult(r)));
}

std::atomic<const Cuda*> g_test_override{nullptr};

cu::CUdeviceptr Dptr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

std::string DescribeCuResult(CUresult r) {
  const char* name = nullptr;
  switch (r) {
    case cu::CUDA_SUCCESS:
      name = "CUDA_SUCCESS";
      break;
    case cu::CUDA_ERROR_INVALID_VALUE:
      name = "CUDA_ERROR_INVALID_VALUE";
      break;
    case cu::CUDA_ERROR_OUT_OF_MEMORY:
      name = "CUDA_ERROR_OUT_OF_MEMORY";
      break;
    case cu::CUDA_ERROR_NOT_INITIALIZED:
      name = "CUDA_ERROR_NOT_INITIALIZED";
      break;
    case cu::CUDA_ERROR_NO_DEVICE:
      name = "CUDA_ERROR_NO_DEVICE";
      break;
    case cu::CUDA_ERROR_INVALID_DEVICE:
      name = "CUDA_ERROR_INVALID_DEVICE";
      break;
    case cu::CUDA_ERROR_NOT_SUPPORTED:
      name = "CUDA_ERROR_NOT_SUPPORTED";
      break;
    default:
      return fmt::format("CUresult {}", r);
  }
  return fmt::format("{} ({})", name, r);
}

DmabufRange::DmabufRange(DmabufRange&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), offset_(o.offset_), length_(o.length_) {}

DmabufRange& DmabufRange::operator=(DmabufRange&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    offset_ = o.offset_;
    length_ = o.length_;
  }
  return *this;
}

DmabufRange::~DmabufRange() {
  if (fd_ >= 0) ::close(fd_);
}

const Cuda& Cuda::Process() {
  if (const Cuda* c = g_test_override.load(std::memory_order_acquire)) return *c;
  static const std::unique_ptr<Cuda> process = Load();
  return *process;
}

void Cuda::SetProcessForTesting(const Cuda* cuda) {
  g_test_override.store(cuda, std::memory_order_release);
}

Cuda::Cuda(std::string status, void* handle) : status_(std::move(status)), handle_(handle) {}

std::unique_ptr<Cuda> Cuda::Unavailable(std::string reason) {
  return std::unique_ptr<Cuda>(new Cuda(std::move(reason), nullptr));
}

Cuda::Cuda(const CudaDriverTable& table) : table_(table) {
  if (CUresult r = table_.init(0); r != cu::CUDA_SUCCESS) {
    status_ = fmt::format("cuInit: {}", DescribeCuResult(r));
    return;
  }
  if (CUresult r = table_.device_get_count(&device_count_); r != cu::CUDA_SUCCESS) {
    status_ = fmt::format("cuDeviceGetCount: {}", DescribeCuResult(r));
    device_count_ = 0;
    return;
  }
  available_ = true;
  status_ = fmt::format("CUDA driver: {} device{}", device_count_, device_count_ == 1 ? "" : "s");
}

std::unique_ptr<Cuda> Cuda::Load(const char* library) {
  // RTLD_LOCAL: the driver's symbols stay out of the global namespace; the
  // handle is kept for the process's life (the driver is not unloadable).
  void* handle = ::dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = ::dlerror();
    return Unavailable(fmt::format("no {}: {} (every pointer is host memory)", library,
                                   err ? err : "dlopen failed"));
  }
  CudaDriverTable t{};
  std::string missing;
  auto resolve = [&](auto& fn, const char* symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(handle, symbol));
    if (!fn) missing += std::string(missing.empty() ? "" : ", ") + symbol;
  };
  resolve(t.init, "cuInit");
  resolve(t.device_get_count, "cuDeviceGetCount");
  resolve(t.device_get, "cuDeviceGet");
  resolve(t.device_get_attribute, "cuDeviceGetAttribute");
  resolve(t.primary_ctx_retain, "cuDevicePrimaryCtxRetain");
  resolve(t.primary_ctx_release, "cuDevicePrimaryCtxRelease_v2");
  resolve(t.ctx_set_current, "cuCtxSetCurrent");
  resolve(t.pointer_get_attribute, "cuPointerGetAttribute");
  resolve(t.mem_get_address_range, "cuMemGetAddressRange_v2");
  resolve(t.mem_get_handle_for_address_range, "cuMemGetHandleForAddressRange");
  resolve(t.memcpy, "cuMemcpy");
  resolve(t.mem_alloc, "cuMemAlloc_v2");
  resolve(t.mem_free, "cuMemFree_v2");
  if (!missing.empty()) {
    // cuMemGetHandleForAddressRange is CUDA 11.7+; an older driver lacks it.
    return Unavailable(fmt::format("{} lacks {} (driver too old: CUDA 11.7 or newer is needed)",
                                   library, missing));
  }
  auto cuda = std::make_unique<Cuda>(t);
  cuda->handle_ = handle;
  if (!cuda->available_) cuda->status_ = fmt::format("{}: {}", library, cuda->status_);
  return cuda;
}

Cuda::~Cuda() {
  if (!available_) return;
  MutexLock lock(mu_);
  for (const auto& [ordinal, ctx] : contexts_) {
    cu::CUdevice dev = 0;
    if (table_.device_get(&dev, ordinal) == cu::CUDA_SUCCESS) table_.primary_ctx_release(dev);
  }
}

Result<PointerInfo> Cuda::Classify(const void* p, std::string* why) const {
  PointerInfo info;
  if (!available_) return info;
  unsigned memory_type = 0;
  CUresult r =
      table_.pointer_get_attribute(&memory_type, cu::CU_POINTER_ATTRIBUTE_MEMORY_TYPE, Dptr(p));
  // The driver answers INVALID_VALUE for memory it never saw (plain malloc).
  if (r == cu::CUDA_ERROR_INVALID_VALUE) return info;
  if (r != cu::CUDA_SUCCESS) return CallFailed(why, "cuPointerGetAttribute(MEMORY_TYPE)", r);
  if (memory_type != cu::CU_MEMORYTYPE_DEVICE) return info;  // pinned or mapped host memory

  info.kind = MemoryKind::kDevice;
  if (r = table_.pointer_get_attribute(&info.device, cu::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                       Dptr(p));
      r != cu::CUDA_SUCCESS)
    return CallFailed(why, "cuPointerGetAttribute(DEVICE_ORDINAL)", r);
  unsigned long long buffer_id = 0;
  if (r = table_.pointer_get_attribute(&buffer_id, cu::CU_POINTER_ATTRIBUTE_BUFFER_ID, Dptr(p));
      r != cu::CUDA_SUCCESS)
    return CallFailed(why, "cuPointerGetAttribute(BUFFER_ID)", r);
  info.buffer_id = buffer_id;
  cu::CUdeviceptr base = 0;
  size_t size = 0;
  if (r = table_.mem_get_address_range(&base, &size, Dptr(p)); r != cu::CUDA_SUCCESS)
    return CallFailed(why, "cuMemGetAddressRange", r);
  info.base = base;
  info.size = size;
  return info;
}

bool Cuda::DmabufSupported(int ordinal) const {
  if (!available_) return false;
  cu::CUdevice dev = 0;
  int value = 0;
  return table_.device_get(&dev, ordinal) == cu::CUDA_SUCCESS &&
         table_.device_get_attribute(&value, cu::CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, dev) ==
             cu::CUDA_SUCCESS &&
         value != 0;
}

uint64_t Cuda::BufferIdOf(const void* p) const {
  if (!available_) return 0;
  unsigned long long buffer_id = 0;
  if (table_.pointer_get_attribute(&buffer_id, cu::CU_POINTER_ATTRIBUTE_BUFFER_ID, Dptr(p)) !=
      cu::CUDA_SUCCESS)
    return 0;
  return buffer_id;
}

Result<DmabufRange> Cuda::ExportDmabuf(const void* p, size_t n, std::string* why) const {
  if (!available_) return Fail(why, errc::cuda_unavailable, status_);
  auto info = Classify(p, why);
  MEMKV_TRY(info);
  return ExportDmabuf(*info, p, n, why);
}

Result<DmabufRange> Cuda::ExportDmabuf(const PointerInfo& info, const void* p, size_t n,
                                       std::string* why) const {
  if (!available_) return Fail(why, errc::cuda_unavailable, status_);
  if (!info.is_device())
    return Fail(why, errc::not_device_memory,
                fmt::format("{}: host memory has no dma-buf to export", p));
  // cuMemGetHandleForAddressRange wants a host-page-aligned range; the
  // allocation (2 MiB granular) holds the aligned range around [p, p + n).
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  const uintptr_t start = addr & ~(page - 1);
  const uintptr_t end = (addr + n + page - 1) & ~(page - 1);
  if (n == 0 || start < info.base || end > info.base + info.size)
    return Fail(why, errc::cuda_failed,
                fmt::format("{} + {} bytes: the page-aligned range [{:#x}, {:#x}) leaves its "
                            "allocation [{:#x}, +{})",
                            p, n, start, end, info.base, info.size));
  int fd = -1;
  if (CUresult r = table_.mem_get_handle_for_address_range(
          &fd, start, end - start, cu::CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
      r != cu::CUDA_SUCCESS)
    return CallFailed(why, "cuMemGetHandleForAddressRange(DMA_BUF_FD)", r);
  return DmabufRange(fd, addr - start, n);
}

Status Cuda::MakeCurrent(int ordinal, std::string* why) const {
  cu::CUcontext ctx = nullptr;
  {
    MutexLock lock(mu_);
    if (auto it = contexts_.find(ordinal); it != contexts_.end()) {
      ctx = it->second;
    } else {
      cu::CUdevice dev = 0;
      if (CUresult r = table_.device_get(&dev, ordinal); r != cu::CUDA_SUCCESS)
        return CallFailed(why, "cuDeviceGet", r);
      if (CUresult r = table_.primary_ctx_retain(&ctx, dev); r != cu::CUDA_SUCCESS)
        return CallFailed(why, "cuDevicePrimaryCtxRetain", r);
      contexts_.emplace(ordinal, ctx);
    }
  }
  // Per thread, cheap: the I/O threads that copy are not the caller's.
  if (CUresult r = table_.ctx_set_current(ctx); r != cu::CUDA_SUCCESS)
    return CallFailed(why, "cuCtxSetCurrent", r);
  return {};
}

Status Cuda::Copy(void* dst, const void* src, size_t n, std::string* why) const {
  if (n == 0) return {};
  int device = -1;
  if (available_) {
    for (const void* p : {static_cast<const void*>(dst), src}) {
      auto info = Classify(p, why);
      MEMKV_TRY(info);
      if (info->is_device()) {
        device = info->device;
        break;
      }
    }
  }
  if (device < 0) {
    std::memcpy(dst, src, n);
    return {};
  }
  MEMKV_TRY(MakeCurrent(device, why));
  if (CUresult r = table_.memcpy(Dptr(dst), Dptr(src), n); r != cu::CUDA_SUCCESS)
    return CallFailed(why, "cuMemcpy", r);
  return {};
}

Result<void*> Cuda::AllocDevice(int ordinal, size_t n, std::string* why) const {
  if (!available_) return Fail(why, errc::cuda_unavailable, status_);
  MEMKV_TRY(MakeCurrent(ordinal, why));
  cu::CUdeviceptr p = 0;
  if (CUresult r = table_.mem_alloc(&p, n); r != cu::CUDA_SUCCESS)
    return CallFailed(why, "cuMemAlloc", r);
  return reinterpret_cast<void*>(static_cast<uintptr_t>(p));
}

Status Cuda::FreeDevice(void* p, std::string* why) const {
  if (!available_) return Fail(why, errc::cuda_unavailable, status_);
  if (CUresult r = table_.mem_free(Dptr(p)); r != cu::CUDA_SUCCESS)
    return CallFailed(why, "cuMemFree", r);
  return {};
}

}  // namespace memkv::common
