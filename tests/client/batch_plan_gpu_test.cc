// Label gpu: the batch plan's scatter into real device memory through the
// process's CUDA loader (as the NIXL plugin does for VRAM destinations).
// Skips, saying why, where there is no libcuda.so.1 or no GPU.

#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <vector>

#include "common/cuda.h"
#include "memkv/batch_plan.h"

namespace memkv {
namespace {

TEST(BatchPlanGpu, ScatterFillsDeviceAndHostDestinationsByteForByte) {
  const common::Cuda& cuda = common::Cuda::Process();
  if (!cuda.available()) GTEST_SKIP() << "no GPU here: " << cuda.status();
  if (cuda.device_count() == 0) GTEST_SKIP() << "no GPU here: the driver sees no device";
  SetDeviceCopy(nullptr);
  ASSERT_NE(GetDeviceCopy(), nullptr) << "a CUDA driver, but no device copy";

  // One object read as 64 fragments of 16 KiB: the even ones into device
  // memory, the odd ones into host memory (a layer-major KV layout).
  constexpr size_t kFrag = 16 << 10, kFrags = 64;
  std::string why;
  auto dev = cuda.AllocDevice(0, kFrag * kFrags / 2, &why);
  ASSERT_TRUE(dev) << why;
  std::vector<std::byte> host(kFrag * kFrags / 2);
  BatchPlan plan(PlanOp::kRead);
  for (size_t f = 0; f < kFrags; ++f) {
    const bool on_device = f % 2 == 0;
    void* to = on_device ? static_cast<std::byte*>(*dev) + (f / 2) * kFrag
                         : static_cast<void*>(host.data() + (f / 2) * kFrag);
    plan.Add(0, "gpu/object", f * kFrag, to, kFrag,
             on_device ? MemoryKind::kDevice : MemoryKind::kHost);
  }
  plan.Finish();
  std::vector<std::byte> wire(kFrag * kFrags);
  for (size_t i = 0; i < wire.size(); ++i) wire[i] = static_cast<std::byte>((i * 131 + 7) >> 3);
  uint64_t at = 0;
  for (const PlanChunk& c : plan.chunks()) {
    ASSERT_TRUE(ScatterChunk(plan, c, wire.data() + (c.offset - at)).ok());
  }
  std::vector<std::byte> back(kFrag * kFrags / 2);
  ASSERT_TRUE(cuda.Copy(back.data(), *dev, back.size(), &why)) << why;
  for (size_t f = 0; f < kFrags; ++f) {
    const std::byte* got = f % 2 == 0 ? back.data() + (f / 2) * kFrag : host.data() + (f / 2) * kFrag;
    EXPECT_EQ(std::memcmp(got, wire.data() + f * kFrag, kFrag), 0) << "fragment " << f;
  }
  std::cout << "scattered " << kFrags << " fragments (" << plan.wire_ops()
            << " wire op(s)) into device and host memory: " << cuda.status() << "\n";
  ASSERT_TRUE(cuda.FreeDevice(*dev));
}

}  // namespace
}  // namespace memkv
