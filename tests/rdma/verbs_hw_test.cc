// Label rdma-hw: the verbs setup over the real libibverbs, on a host with an
// RDMA NIC (MEMKV_RDMA_DEVICE names it; else the first device). Two RC queue
// pairs on one port are connected to each other (loopback) and a host
// buffer is registered. Skips, saying why, where there is no device.

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <vector>

#include "common/cuda.h"
#include "rdma/verbs_setup.h"

namespace memkv::rdma {
namespace {

TEST(VerbsHardware, RcLoopbackSetupAndRegistration) {
  VerbsCalls& verbs = RealVerbs();
  int n = 0;
  ibv_device** list = verbs.GetDeviceList(&n);
  std::string first = list && n > 0 ? verbs.GetDeviceName(list[0]) : "";
  if (list) verbs.FreeDeviceList(list);
  if (first.empty()) GTEST_SKIP() << "no RDMA device on this host (ibv_get_device_list found none)";

  VerbsOptions o;
  const char* env = std::getenv("MEMKV_RDMA_DEVICE");
  o.device = env && *env ? env : first;
  if (const char* gid = std::getenv("MEMKV_RDMA_GID_INDEX")) o.gid_index = std::atoi(gid);
  std::string why;
  auto device = VerbsDevice::Open(verbs, o, &why);
  ASSERT_TRUE(device) << why;
  auto a = RcQueuePair::Create(**device, &why);
  ASSERT_TRUE(a) << why;
  auto b = RcQueuePair::Create(**device, &why);
  ASSERT_TRUE(b) << why;
  auto blob_a = EncodeEndpoint((*a)->local());
  auto blob_b = EncodeEndpoint((*b)->local());
  ASSERT_TRUE(blob_a && blob_b);
  auto ep_a = DecodeEndpoint(*blob_a);
  auto ep_b = DecodeEndpoint(*blob_b);
  ASSERT_TRUE(ep_a && ep_b);
  ASSERT_TRUE((*a)->Connect(*ep_b, &why)) << why;
  ASSERT_TRUE((*b)->Connect(*ep_a, &why)) << why;
  std::cout << "connected " << DescribeEndpoint(*ep_a) << " <-> " << DescribeEndpoint(*ep_b)
            << "\n";

  std::vector<char> buf(1 << 20);
  auto mr = (*device)->Register(buf.data(), buf.size(), common::Cuda::Process(), &why);
  ASSERT_TRUE(mr) << why;
  EXPECT_EQ((*mr)->path(), RegistrationPath::kHost);
}

}  // namespace
}  // namespace memkv::rdma
