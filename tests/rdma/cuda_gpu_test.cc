// Label gpu: the CUDA loader against a real driver and real device memory,
// and the registration cache over it (verbs through the recording stand-in,
// ofi through libfabric's tcp provider). Skips, saying why, where there is
// no libcuda.so.1 or no GPU; prints which registration path each took.

#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <numeric>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "common/cuda.h"
#include "rdma/error.h"
#include "rdma/fabric_api.h"
#include "rdma/registration_cache.h"
#include "rdma/verbs_recording.h"
#include "rdma/verbs_setup.h"

namespace memkv::rdma {
namespace {

using common::Cuda;

TEST(CudaGpu, DeviceMemoryClassifiedExportedCopiedAndRegistered) {
  const Cuda& cuda = Cuda::Process();
  if (!cuda.available()) GTEST_SKIP() << "no GPU here: " << cuda.status();
  if (cuda.device_count() == 0) GTEST_SKIP() << "no GPU here: the driver sees no device";
  std::cout << "loader: " << cuda.status() << "\n";

  constexpr size_t kSize = 4 << 20;
  std::string why;
  auto a = cuda.AllocDevice(0, kSize, &why);
  ASSERT_TRUE(a) << why;
  auto b = cuda.AllocDevice(0, kSize, &why);
  ASSERT_TRUE(b) << why;

  auto ia = cuda.Classify(static_cast<char*>(*a) + 12345, &why);
  auto ib = cuda.Classify(*b, &why);
  ASSERT_TRUE(ia && ib) << why;
  EXPECT_TRUE(ia->is_device());
  EXPECT_EQ(ia->device, 0);
  EXPECT_NE(ia->buffer_id, 0u);
  EXPECT_NE(ia->buffer_id, ib->buffer_id) << "each allocation has its own buffer id";
  EXPECT_LE(ia->base, reinterpret_cast<uintptr_t>(*a));
  EXPECT_GE(ia->base + ia->size, reinterpret_cast<uintptr_t>(*a) + kSize);
  std::vector<char> host(kSize);
  auto ih = cuda.Classify(host.data());
  ASSERT_TRUE(ih);
  EXPECT_FALSE(ih->is_device());

  // Host -> device -> device -> host.
  std::vector<uint8_t> src(kSize), dst(kSize);
  std::iota(src.begin(), src.end(), uint8_t{3});
  ASSERT_TRUE(cuda.Copy(*a, src.data(), kSize, &why)) << why;
  ASSERT_TRUE(cuda.Copy(*b, *a, kSize, &why)) << why;
  ASSERT_TRUE(cuda.Copy(dst.data(), *b, kSize, &why)) << why;
  EXPECT_EQ(src, dst);

  // dma-buf export, then the registration path a NIC would see (through the
  // recording stand-in: this test needs a GPU, not a NIC).
  const bool supported = cuda.DmabufSupported(0);
  auto exported = cuda.ExportDmabuf(static_cast<char*>(*a) + 4096, 1 << 20, &why);
  std::cout << "dma-buf: device attribute says " << (supported ? "supported" : "unsupported")
            << "; export " << (exported ? "succeeded" : "failed: " + why) << "\n";
  if (exported) {
    EXPECT_GE(exported->fd(), 0);
    EXPECT_EQ(exported->offset() % 4096, 0u);
  }

  RecordingVerbs verbs;
  verbs.AddDevice("mlx5_0");
  VerbsOptions o;
  o.device = "mlx5_0";
  auto device = VerbsDevice::Open(verbs, o, &why);
  ASSERT_TRUE(device) << why;
  auto mr = (*device)->Register(*a, kSize, cuda, &why);
  ASSERT_TRUE(mr) << why;
  EXPECT_EQ((*mr)->memory().buffer_id, cuda.Classify(*a)->buffer_id);
  std::cout << "registration path: " << RegistrationPathName((*mr)->path());
  if (!(*mr)->fallback_reason().empty())
    std::cout << " (dma-buf not taken: " << (*mr)->fallback_reason() << ")";
  std::cout << "\n";
  EXPECT_EQ((*mr)->path() == RegistrationPath::kDmabuf, exported.has_value());
  RecordProperty("registration_path", RegistrationPathName((*mr)->path()));
  mr->reset();
  device->reset();

  ASSERT_TRUE(cuda.FreeDevice(*a, &why)) << why;
  ASSERT_TRUE(cuda.FreeDevice(*b, &why)) << why;
}

// The cache over real device memory: classified once, keyed by the buffer
// id the driver gives, the verbs path it took (dma-buf or peer memory, as
// the driver's export allows; the NIC is the recording stand-in), and a
// freed range no longer registered.
TEST(CudaGpu, TheRegistrationCacheKeysRealDeviceMemoryByBufferId) {
  const Cuda& cuda = Cuda::Process();
  if (!cuda.available() || cuda.device_count() == 0)
    GTEST_SKIP() << "no GPU here: " << cuda.status();
  constexpr size_t kSize = 4 << 20;
  std::string why;
  auto a = cuda.AllocDevice(0, kSize, &why);
  ASSERT_TRUE(a) << why;
  void* live = *a;  // freed at the end

  RecordingVerbs verbs;
  verbs.AddDevice("mlx5_0");
  VerbsOptions o;
  o.device = "mlx5_0";
  auto device = VerbsDevice::Open(verbs, o, &why);
  ASSERT_TRUE(device) << why;
  {
    RegistrationCache cache(std::make_shared<VerbsRegistrar>(**device, cuda), &cuda);
    auto reg = cache.Register(*a, kSize, &why);
    ASSERT_TRUE(reg) << why;
    EXPECT_TRUE((*reg)->is_device());
    EXPECT_EQ((*reg)->device, 0);
    EXPECT_EQ((*reg)->buffer_id, cuda.Classify(*a)->buffer_id);
    auto mr = std::static_pointer_cast<const VerbsMemoryRegion>((*reg)->handle);
    std::cout << "cache -> verbs registration path: " << RegistrationPathName(mr->path());
    if (!mr->fallback_reason().empty())
      std::cout << " (dma-buf not taken: " << mr->fallback_reason() << ")";
    std::cout << "\n";
    RecordProperty("cache_verbs_registration_path", RegistrationPathName(mr->path()));
    EXPECT_EQ(cache.Find(static_cast<char*>(*a) + 4096, 4096), *reg);

    // Freed, and (often at the same address) allocated again: the old
    // registration does not answer for the new buffer.
    const uint64_t old_id = (*reg)->id;
    mr.reset();
    reg = errc::ok;
    ASSERT_TRUE(cuda.FreeDevice(*a, &why)) << why;
    EXPECT_EQ(cache.Find(*a, 4096), nullptr) << "freed device memory";
    auto again = cuda.AllocDevice(0, kSize, &why);
    ASSERT_TRUE(again) << why;
    std::cout << "reallocated " << (*again == *a ? "at the same address" : "elsewhere") << "\n";
    EXPECT_EQ(cache.Find(*again, 4096), nullptr);
    live = *again;
    auto fresh = cache.Register(*again, kSize, &why);
    ASSERT_TRUE(fresh) << why;
    EXPECT_NE((*fresh)->id, old_id);
    EXPECT_EQ((*fresh)->buffer_id, cuda.Classify(*again)->buffer_id);
    EXPECT_EQ(cache.Find(*again, 4096), *fresh);
    EXPECT_TRUE(cache.Deregister(old_id));
    EXPECT_TRUE(cache.Deregister((*fresh)->id));
  }
  device->reset();
  ASSERT_TRUE(cuda.FreeDevice(live, &why)) << why;
}

// The cache over the ofi fabric: device memory registered through
// libfabric's FI_HMEM (fi_mr_regattr, FI_HMEM_CUDA) where the provider
// offers it; skips where it does not.
TEST(CudaGpu, OfiRegistersDeviceMemoryThroughFiHmem) {
  const Cuda& cuda = Cuda::Process();
  if (!cuda.available() || cuda.device_count() == 0)
    GTEST_SKIP() << "no GPU here: " << cuda.status();
  boost::asio::io_context loop;
  FabricOptions o;
  o.ofi_provider = "tcp";
  o.node = "127.0.0.1";
  std::string why;
  auto fabric = Fabric::Open(o, loop.get_executor(), &why);
  if (!fabric) GTEST_SKIP() << "no libfabric tcp provider here: " << why;
  if (!(*fabric)->registers_device_memory())
    GTEST_SKIP() << (*fabric)->provider_name()
                 << " does not offer FI_HMEM here: CUDA memory registers on verbs only";
  constexpr size_t kSize = 4 << 20;
  auto a = cuda.AllocDevice(0, kSize, &why);
  ASSERT_TRUE(a) << why;
  {
    RegistrationCache cache(std::make_shared<FabricRegistrar>(**fabric, access::kAll), &cuda);
    auto reg = cache.Register(*a, kSize, &why);
    ASSERT_TRUE(reg) << why;
    const auto* region = static_cast<const MemoryRegion*>((*reg)->handle.get());
    EXPECT_EQ(region->kind(), common::MemoryKind::kDevice);
    EXPECT_EQ(region->device(), 0);
    std::cout << "cache -> " << (*fabric)->provider_name()
              << " registration path: fi_mr_regattr, FI_HMEM_CUDA device " << region->device()
              << ", key " << region->key() << "\n";
    RecordProperty("cache_ofi_registration_path", "fi_mr_regattr FI_HMEM_CUDA");
  }
  // Nothing was posted: the fabric may go without Stop's drain.
  fabric->reset();
  ASSERT_TRUE(cuda.FreeDevice(*a, &why)) << why;
}

}  // namespace
}  // namespace memkv::rdma
