// The CUDA loader (common/cuda.h) over a stand-in driver table, and the real
// loader on this machine (which has no libcuda.so.1).

#include "common/cuda.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "common/error.h"
#include "fake_cuda.h"

namespace memkv::common {
namespace {

using memkv::testing::AlignedBuffer;
using memkv::testing::FakeGpu;
using ::testing::HasSubstr;
using ::testing::StartsWith;

bool FdOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(CudaLoader, ReportsAMissingLibraryCleanly) {
  auto cuda = Cuda::Load("libmemkv-no-such-cuda.so.1");
  EXPECT_FALSE(cuda->available());
  EXPECT_THAT(cuda->status(), StartsWith("no libmemkv-no-such-cuda.so.1: "));
  EXPECT_EQ(cuda->device_count(), 0);
}

TEST(CudaLoader, ProcessLoaderWithoutLibcudaIsHostOnly) {
  // What this machine has decides what to expect; the CI hosts have no GPU.
  void* probe = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (probe) {
    ::dlclose(probe);
    GTEST_SKIP() << "libcuda.so.1 is installed here; the gpu-labelled test covers it";
  }
  const Cuda& cuda = Cuda::Process();
  EXPECT_FALSE(cuda.available());
  EXPECT_THAT(cuda.status(), StartsWith("no libcuda.so.1: "));
  EXPECT_EQ(&cuda, &Cuda::Process()) << "one loader per process";
  int x = 7;
  auto info = cuda.Classify(&x);
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->is_device());
}

TEST(CudaLoader, RefusesALibraryWithoutTheDriverSymbols) {
  auto cuda = Cuda::Load("libc.so.6");
  EXPECT_FALSE(cuda->available());
  EXPECT_THAT(cuda->status(), HasSubstr("lacks cuInit"));
  EXPECT_THAT(cuda->status(), HasSubstr("cuMemGetHandleForAddressRange"));
}

TEST(CudaLoader, WithoutADriverEverythingIsHostMemoryOnTheSamePath) {
  auto cuda = Cuda::Unavailable("no libcuda.so.1: test");
  std::vector<std::byte> src(1000), dst(1000);
  std::iota(reinterpret_cast<uint8_t*>(src.data()), reinterpret_cast<uint8_t*>(src.data()) + 1000,
            uint8_t{0});
  auto info = cuda->Classify(src.data());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->kind, MemoryKind::kHost);
  ASSERT_TRUE(cuda->Copy(dst.data(), src.data(), src.size()));
  EXPECT_EQ(src, dst);
  std::string why;
  auto exported = cuda->ExportDmabuf(src.data(), src.size(), &why);
  ASSERT_FALSE(exported);
  EXPECT_EQ(exported.error(), errc::cuda_unavailable);
  EXPECT_EQ(why, "no libcuda.so.1: test");
  EXPECT_FALSE(cuda->DmabufSupported(0));
}

TEST(CudaLoader, InitFailureLeavesTheLoaderUnavailable) {
  FakeGpu gpu;
  gpu.init_result = cu::CUDA_ERROR_NO_DEVICE;
  Cuda cuda(gpu.Table());
  EXPECT_FALSE(cuda.available());
  EXPECT_EQ(cuda.status(), "cuInit: CUDA_ERROR_NO_DEVICE (100)");
}

TEST(CudaClassify, HostAndDevicePointers) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  ASSERT_TRUE(cuda.available());
  EXPECT_EQ(cuda.device_count(), 2);
  EXPECT_EQ(cuda.status(), "CUDA driver: 2 devices");

  int host = 0;
  auto h = cuda.Classify(&host);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->kind, MemoryKind::kHost);
  EXPECT_EQ(h->buffer_id, 0u);

  AlignedBuffer mem(64 << 10);
  const auto id = gpu.AddDeviceRange(mem.data, mem.size, 1);
  auto d = cuda.Classify(mem.data + 4100);  // inside the allocation
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, MemoryKind::kDevice);
  EXPECT_EQ(d->device, 1);
  EXPECT_EQ(d->buffer_id, id);
  EXPECT_EQ(d->base, reinterpret_cast<uintptr_t>(mem.data));
  EXPECT_EQ(d->size, mem.size);
}

TEST(CudaClassify, BufferIdKeysAnAllocationNotAnAddress) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  AlignedBuffer a(16 << 10), b(16 << 10);
  gpu.AddDeviceRange(a.data, a.size, 0);
  gpu.AddDeviceRange(b.data, b.size, 0);
  auto first = cuda.Classify(a.data);
  auto other = cuda.Classify(b.data);
  auto interior = cuda.Classify(a.data + 8192);
  ASSERT_TRUE(first && other && interior);
  EXPECT_EQ(first->buffer_id, interior->buffer_id);
  EXPECT_NE(first->buffer_id, other->buffer_id);
  // Freed and reallocated at the same address: another allocation, another key.
  gpu.RemoveDeviceRange(a.data);
  gpu.AddDeviceRange(a.data, a.size, 0);
  auto reused = cuda.Classify(a.data);
  ASSERT_TRUE(reused);
  EXPECT_EQ(reused->base, first->base);
  EXPECT_NE(reused->buffer_id, first->buffer_id);
}

TEST(CudaClassify, BufferIdOfIsOneCallAndZeroForMemoryTheDriverDoesNotKnow) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  AlignedBuffer a(16 << 10);
  const auto id = gpu.AddDeviceRange(a.data, a.size, 0);
  gpu.calls.clear();
  EXPECT_EQ(cuda.BufferIdOf(a.data + 100), id);
  EXPECT_EQ(gpu.calls, std::vector<std::string>{"cuPointerGetAttribute"});
  std::vector<char> host(64);
  EXPECT_EQ(cuda.BufferIdOf(host.data()), 0u);
  gpu.RemoveDeviceRange(a.data);
  EXPECT_EQ(cuda.BufferIdOf(a.data), 0u) << "freed";
  EXPECT_EQ(Cuda::Unavailable("test")->BufferIdOf(a.data), 0u);
}

TEST(CudaClassify, ADriverErrorIsReportedNotTakenForHostMemory) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  AlignedBuffer mem(4096);
  gpu.AddDeviceRange(mem.data, mem.size, 0);
  gpu.attribute_error = cu::CUDA_ERROR_NOT_INITIALIZED;
  std::string why;
  auto r = cuda.Classify(mem.data, &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::cuda_failed);
  EXPECT_EQ(why, "cuPointerGetAttribute(MEMORY_TYPE): CUDA_ERROR_NOT_INITIALIZED (3)");
}

TEST(CudaDmabuf, ExportsThePageAlignedRangeAroundTheBuffer) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  AlignedBuffer mem(64 << 10);
  gpu.AddDeviceRange(mem.data, mem.size, 0);
  EXPECT_TRUE(cuda.DmabufSupported(0));

  int fd = -1;
  {
    auto r = cuda.ExportDmabuf(mem.data + 5000, 10000);
    ASSERT_TRUE(r);
    ASSERT_EQ(gpu.exports.size(), 1u);
    const auto& e = gpu.exports[0];
    EXPECT_EQ(e.handle_type, cu::CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD);
    EXPECT_EQ(e.start, reinterpret_cast<uintptr_t>(mem.data) + 4096);  // 5000 rounded down
    EXPECT_EQ(e.size, 12288u);  // [4096, 16384) covers [5000, 15000)
    EXPECT_EQ(r->offset(), 5000u - 4096u);
    EXPECT_EQ(r->length(), 10000u);
    fd = r->fd();
    EXPECT_EQ(fd, e.fd);
    EXPECT_TRUE(FdOpen(fd));
    DmabufRange moved = std::move(*r);
    EXPECT_EQ(moved.fd(), fd);
    EXPECT_EQ(r->fd(), -1);
  }
  EXPECT_FALSE(FdOpen(fd)) << "the exported descriptor is closed with its range";
}

TEST(CudaDmabuf, ExportingClassifiedMemoryDoesNotAskTheDriverAgain) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  AlignedBuffer mem(64 << 10);
  gpu.AddDeviceRange(mem.data, mem.size, 0);
  auto info = cuda.Classify(mem.data + 8192);
  ASSERT_TRUE(info);
  gpu.calls.clear();
  auto r = cuda.ExportDmabuf(*info, mem.data + 8192, 4096);
  ASSERT_TRUE(r);
  EXPECT_EQ(gpu.calls, std::vector<std::string>{"cuMemGetHandleForAddressRange"});
  EXPECT_EQ(r->offset(), 0u);
  // Host memory, classified as such, has nothing to export.
  std::vector<char> host(4096);
  EXPECT_EQ(cuda.ExportDmabuf(PointerInfo{}, host.data(), host.size()).error(),
            errc::not_device_memory);
}

TEST(CudaDmabuf, ExportFailureNamesTheCallSoTheCallerFallsBack) {
  FakeGpu gpu;
  gpu.export_result = cu::CUDA_ERROR_NOT_SUPPORTED;
  gpu.dmabuf_supported = 0;
  Cuda cuda(gpu.Table());
  AlignedBuffer mem(8192);
  gpu.AddDeviceRange(mem.data, mem.size, 0);
  EXPECT_FALSE(cuda.DmabufSupported(0));
  std::string why;
  auto r = cuda.ExportDmabuf(mem.data, 8192, &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::cuda_failed);
  EXPECT_EQ(why, "cuMemGetHandleForAddressRange(DMA_BUF_FD): CUDA_ERROR_NOT_SUPPORTED (801)");
}

TEST(CudaDmabuf, HostMemoryHasNothingToExport) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  std::vector<char> host(4096);
  std::string why;
  auto r = cuda.ExportDmabuf(host.data(), host.size(), &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::not_device_memory);
  EXPECT_THAT(why, HasSubstr("host memory"));
  EXPECT_TRUE(gpu.exports.empty());
}

TEST(CudaDmabuf, ARangeLeavingItsAllocationIsRefused) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  AlignedBuffer mem(8192);
  gpu.AddDeviceRange(mem.data, mem.size, 0);
  std::string why;
  auto r = cuda.ExportDmabuf(mem.data + 4096, 8192, &why);
  ASSERT_FALSE(r);
  EXPECT_THAT(why, HasSubstr("leaves its allocation"));
  EXPECT_TRUE(gpu.exports.empty());
}

TEST(CudaCopy, HostAndDeviceInEveryDirection) {
  FakeGpu gpu;
  Cuda cuda(gpu.Table());
  AlignedBuffer dev(8192), dev2(8192);
  gpu.AddDeviceRange(dev.data, dev.size, 1);
  gpu.AddDeviceRange(dev2.data, dev2.size, 1);
  std::vector<std::byte> host(8192), back(8192);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<std::byte>(i * 7);

  ASSERT_TRUE(cuda.Copy(dev.data, host.data(), host.size()));   // HtoD
  ASSERT_TRUE(cuda.Copy(dev2.data, dev.data, host.size()));     // DtoD
  ASSERT_TRUE(cuda.Copy(back.data(), dev2.data, host.size()));  // DtoH
  EXPECT_EQ(host, back);
  EXPECT_EQ(std::count(gpu.calls.begin(), gpu.calls.end(), "cuMemcpy"), 3);
  EXPECT_EQ(gpu.retained, 1) << "the device's primary context is retained once";
  EXPECT_EQ(gpu.set_current, 3) << "and made current on the copying thread each time";

  std::vector<std::byte> plain(8192);
  ASSERT_TRUE(cuda.Copy(plain.data(), host.data(), host.size()));  // host to host: memcpy
  EXPECT_EQ(plain, host);
  EXPECT_EQ(std::count(gpu.calls.begin(), gpu.calls.end(), "cuMemcpy"), 3);
}

TEST(CudaProcess, TestsCanInstallAStandIn) {
  FakeGpu gpu;
  Cuda fake(gpu.Table());
  Cuda::SetProcessForTesting(&fake);
  EXPECT_EQ(&Cuda::Process(), &fake);
  Cuda::SetProcessForTesting(nullptr);
  EXPECT_NE(&Cuda::Process(), &fake);
}

TEST(CudaLoader, ReleasesRetainedContexts) {
  FakeGpu gpu;
  {
    Cuda cuda(gpu.Table());
    auto p = cuda.AllocDevice(0, 4096);
    ASSERT_TRUE(p);
    auto info = cuda.Classify(*p);
    ASSERT_TRUE(info);
    EXPECT_TRUE(info->is_device());
    ASSERT_TRUE(cuda.FreeDevice(*p));
    EXPECT_EQ(gpu.retained, 1);
  }
  EXPECT_EQ(gpu.released, 1);
}

}  // namespace
}  // namespace memkv::common
