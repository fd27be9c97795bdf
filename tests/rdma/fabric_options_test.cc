// Opening a fabric: provider names, the verbs slot, and the errors a user
// sees for a provider that is not there.

#include <gtest/gtest.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "common/error.h"
#include "rdma/error.h"
#include "rdma/fabric_api.h"

namespace memkv::rdma {
namespace {

TEST(FabricOptions, ParsesProviderKinds) {
  EXPECT_EQ(ParseProviderKind("ofi").value(), ProviderKind::kOfi);
  EXPECT_EQ(ParseProviderKind("verbs").value(), ProviderKind::kVerbs);
  EXPECT_EQ(ParseProviderKind("tcp").error(), common::errc::bad_name);
  EXPECT_EQ(ProviderKindName(ProviderKind::kVerbs), "verbs");
}

// verbs is built in; on this host (no RDMA device of that name) it fails
// naming rdma.device (verbs_fabric_test.cc drives it over a stand-in).
TEST(FabricOptions, VerbsWithoutTheDeviceNamesRdmaDevice) {
  boost::asio::io_context loop;
  FabricOptions o;
  o.provider = ProviderKind::kVerbs;
  o.domain = "memkv_no_such_hca0";
  std::string why;
  auto f = Fabric::Open(o, loop.get_executor(), &why);
  ASSERT_FALSE(f);
  EXPECT_NE(why.find("rdma.device: memkv_no_such_hca0 not found"), std::string::npos) << why;
}

TEST(FabricOptions, AnUnknownLibfabricProviderIsNamedInTheError) {
  boost::asio::io_context loop;
  FabricOptions o;
  o.ofi_provider = "no-such-provider";
  std::string why;
  auto f = Fabric::Open(o, loop.get_executor(), &why);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error(), errc::provider_not_found);
  EXPECT_NE(why.find("rdma.provider: libfabric provider 'no-such-provider' not found"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("fi_getinfo:"), std::string::npos) << why;
}

TEST(FabricOptions, RefusesEmptyProviderAndZeroLimits) {
  boost::asio::io_context loop;
  FabricOptions o;
  o.ofi_provider = "";
  std::string why;
  EXPECT_EQ(Fabric::Open(o, loop.get_executor(), &why).error(), errc::bad_option);
  EXPECT_NE(why.find("rdma.ofi_provider"), std::string::npos) << why;
  o = FabricOptions{};
  o.max_inflight_per_peer = 0;
  EXPECT_EQ(Fabric::Open(o, loop.get_executor(), &why).error(), errc::bad_option);
}

}  // namespace
}  // namespace memkv::rdma
