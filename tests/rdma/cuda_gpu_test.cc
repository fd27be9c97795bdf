// Label gpu: the CUDA loader against a real driver and real device memory.
// Skips, saying why, where there is no libcuda.so.1 or no GPU.

#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <numeric>
#include <vector>

#include "common/cuda.h"
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

}  // namespace
}  // namespace memkv::rdma
