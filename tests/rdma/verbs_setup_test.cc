// The verbs provider's connection setup (rdma/verbs_setup.h) driven against
// RecordingVerbs: every call, its order and its attributes; the error paths
// and the release of what was created, in reverse.

#include "rdma/verbs_setup.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "../common/fake_cuda.h"
#include "rdma/error.h"
#include "rdma/registration_cache.h"
#include "rdma/verbs_error.h"
#include "rdma/verbs_recording.h"

namespace memkv::rdma {
namespace {

using memkv::testing::AlignedBuffer;
using memkv::testing::FakeGpu;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

bool IsRelease(const std::string& fn) {
  return fn == "ibv_close_device" || fn == "ibv_dealloc_pd" || fn == "ibv_destroy_comp_channel" ||
         fn == "ibv_destroy_cq" || fn == "ibv_destroy_qp" || fn == "ibv_dereg_mr" ||
         fn == "ibv_destroy_srq" || fn == "ibv_destroy_ah";
}

// The objects created (device list aside), and those released, in call order.
std::vector<const void*> Created(const RecordingVerbs& v) {
  std::vector<const void*> out;
  for (const RecordedCall& c : v.calls())
    if (c.result && c.fn != "ibv_get_device_list") out.push_back(c.result);
  return out;
}
std::vector<const void*> Released(const RecordingVerbs& v) {
  std::vector<const void*> out;
  for (const RecordedCall& c : v.calls())
    if (IsRelease(c.fn) && !c.error) out.push_back(c.object);
  return out;
}
void ExpectAllReleasedInReverse(const RecordingVerbs& v) {
  auto created = Created(v);
  std::reverse(created.begin(), created.end());
  EXPECT_EQ(Released(v), created) << "released in the reverse order of creation";
  EXPECT_EQ(v.live(), 0u);
  EXPECT_TRUE(v.misuse().empty()) << v.misuse().front();
}

std::array<uint8_t, 16> Gid(uint8_t last) {
  std::array<uint8_t, 16> g{0xfe, 0x80};
  g[10] = 0xff;
  g[11] = 0xff;
  g[15] = last;
  return g;
}

ibv_gid ToIbvGid(const std::array<uint8_t, 16>& g) {
  ibv_gid gid{};
  std::copy(g.begin(), g.end(), gid.raw);
  return gid;
}

class VerbsSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    verbs_.AddDevice("mlx5_0", FakePort{});
    FakePort ib;
    ib.lid = 0x11;
    ib.active_mtu = IBV_MTU_4096;
    verbs_.AddDevice("mlx5_1", ib);
  }

  VerbsOptions Options(std::string device = "mlx5_1") {
    VerbsOptions o;
    o.device = std::move(device);
    o.psn = 0x123456;
    o.max_send_wr = 512;
    o.cq_depth = 2048;
    return o;
  }

  // The peer's endpoint, as it would arrive at Attach.
  static VerbsEndpoint IbPeer() {
    VerbsEndpoint p;
    p.link_layer = LinkLayer::kInfiniband;
    p.lid = 0x22;
    p.qpn = 0x000200;
    p.psn = 0x654321;
    p.mtu = IBV_MTU_1024;
    p.rd_atomic = 8;
    return p;
  }

  RecordingVerbs verbs_;
};

TEST_F(VerbsSetupTest, RcSetupOverInfinibandMakesTheCallsInOrderWithTheirAttributes) {
  std::string why;
  auto device = VerbsDevice::Open(verbs_, Options(), &why);
  ASSERT_TRUE(device) << why;
  auto qp = RcQueuePair::Create(**device, &why);
  ASSERT_TRUE(qp) << why;

  const VerbsEndpoint& local = (*qp)->local();
  EXPECT_EQ(local.transport, VerbsTransport::kRc);
  EXPECT_EQ(local.link_layer, LinkLayer::kInfiniband);
  EXPECT_EQ(local.lid, 0x11);
  EXPECT_EQ(local.qpn, (*qp)->qp()->qp_num);
  EXPECT_EQ(local.psn, 0x123456u);
  EXPECT_EQ(local.mtu, IBV_MTU_4096);
  EXPECT_EQ(local.rd_atomic, 16);
  EXPECT_FALSE(local.gid);

  // The blob crosses to the peer and back unchanged.
  auto blob = EncodeEndpoint(local);
  ASSERT_TRUE(blob);
  auto decoded = DecodeEndpoint(*blob);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, local);

  auto peer_blob = EncodeEndpoint(IbPeer());
  ASSERT_TRUE(peer_blob);
  auto peer = DecodeEndpoint(*peer_blob);
  ASSERT_TRUE(peer);
  ASSERT_TRUE((*qp)->Connect(*peer, &why)) << why;
  EXPECT_TRUE((*qp)->connected());
  EXPECT_EQ((*qp)->qp()->state, IBV_QPS_RTS);

  EXPECT_THAT(
      verbs_.Names(),
      ElementsAre("ibv_get_device_list", "ibv_get_device_name", "ibv_get_device_name",
                  "ibv_open_device", "ibv_free_device_list", "ibv_query_port", "ibv_alloc_pd",
                  "ibv_create_comp_channel", "ibv_create_cq", "ibv_req_notify_cq", "ibv_create_qp",
                  "ibv_modify_qp", "ibv_modify_qp", "ibv_modify_qp"));

  EXPECT_EQ(verbs_.Find("ibv_open_device")[0]->device, "mlx5_1");
  EXPECT_EQ(verbs_.Find("ibv_query_port")[0]->port, 1);
  const RecordedCall& cq = *verbs_.Find("ibv_create_cq")[0];
  EXPECT_EQ(cq.cqe, 2048);
  EXPECT_EQ(cq.channel, (*device)->channel());
  EXPECT_EQ(verbs_.Find("ibv_req_notify_cq")[0]->object, (*device)->cq());

  const ibv_qp_init_attr& init = verbs_.Find("ibv_create_qp")[0]->qp_init;
  EXPECT_EQ(init.qp_type, IBV_QPT_RC);
  EXPECT_EQ(init.send_cq, (*device)->cq());
  EXPECT_EQ(init.recv_cq, (*device)->cq());
  EXPECT_EQ(init.srq, nullptr);
  EXPECT_EQ(init.cap.max_send_wr, 512u);
  EXPECT_EQ(init.cap.max_recv_wr, 1u);
  EXPECT_EQ(init.cap.max_send_sge, 1u);
  EXPECT_EQ(init.cap.max_inline_data, 0u);
  EXPECT_EQ(init.sq_sig_all, 0);
  EXPECT_EQ(verbs_.Find("ibv_create_qp")[0]->object, (*device)->pd());

  const auto modify = verbs_.Find("ibv_modify_qp");
  ASSERT_EQ(modify.size(), 3u);
  // RESET -> INIT.
  EXPECT_EQ(modify[0]->attr_mask,
            IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
  EXPECT_EQ(modify[0]->qp_attr.qp_state, IBV_QPS_INIT);
  EXPECT_EQ(modify[0]->qp_attr.port_num, 1);
  EXPECT_EQ(modify[0]->qp_attr.pkey_index, 0);
  EXPECT_EQ(modify[0]->qp_attr.qp_access_flags,
            static_cast<unsigned>(IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
                                  IBV_ACCESS_LOCAL_WRITE));
  // INIT -> RTR: the peer's QPN and PSN, the smaller MTU, its LID.
  EXPECT_EQ(modify[1]->attr_mask, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                      IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
                                      IBV_QP_MIN_RNR_TIMER);
  const ibv_qp_attr& rtr = modify[1]->qp_attr;
  EXPECT_EQ(rtr.qp_state, IBV_QPS_RTR);
  EXPECT_EQ(rtr.path_mtu, IBV_MTU_1024);
  EXPECT_EQ(rtr.dest_qp_num, 0x200u);
  EXPECT_EQ(rtr.rq_psn, 0x654321u);
  EXPECT_EQ(rtr.max_dest_rd_atomic, 16);
  EXPECT_EQ(rtr.min_rnr_timer, 12);
  EXPECT_EQ(rtr.ah_attr.dlid, 0x22);
  EXPECT_EQ(rtr.ah_attr.is_global, 0);
  EXPECT_EQ(rtr.ah_attr.port_num, 1);
  EXPECT_EQ(rtr.ah_attr.sl, 0);
  // RTR -> RTS: our own PSN; no more READs in flight than the peer serves.
  EXPECT_EQ(modify[2]->attr_mask, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                      IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
  const ibv_qp_attr& rts = modify[2]->qp_attr;
  EXPECT_EQ(rts.qp_state, IBV_QPS_RTS);
  EXPECT_EQ(rts.sq_psn, 0x123456u);
  EXPECT_EQ(rts.timeout, 14);
  EXPECT_EQ(rts.retry_cnt, 7);
  EXPECT_EQ(rts.rnr_retry, 7);
  EXPECT_EQ(rts.max_rd_atomic, 8);
  for (const RecordedCall* m : modify) EXPECT_EQ(m->object, (*qp)->qp());

  qp->reset();
  device->reset();
  const auto names = verbs_.Names();
  EXPECT_THAT(std::vector<std::string>(names.end() - 5, names.end()),
              ElementsAre("ibv_destroy_qp", "ibv_destroy_cq", "ibv_destroy_comp_channel",
                          "ibv_dealloc_pd", "ibv_close_device"));
  ExpectAllReleasedInReverse(verbs_);
}

TEST_F(VerbsSetupTest, RcSetupOverRoceAddressesByGid) {
  FakePort roce;
  roce.link_layer = IBV_LINK_LAYER_ETHERNET;
  roce.active_mtu = IBV_MTU_1024;
  roce.gids[3] = ToIbvGid(Gid(0x31));
  verbs_.AddDevice("mlx5_2", roce);
  VerbsOptions o = Options("mlx5_2");
  o.gid_index = 3;
  o.traffic_class = 106;

  std::string why;
  auto device = VerbsDevice::Open(verbs_, o, &why);
  ASSERT_TRUE(device) << why;
  const auto gid_calls = verbs_.Find("ibv_query_gid");
  ASSERT_EQ(gid_calls.size(), 1u);
  EXPECT_EQ(gid_calls[0]->port, 1);
  EXPECT_EQ(gid_calls[0]->index, 3);

  auto qp = RcQueuePair::Create(**device, &why);
  ASSERT_TRUE(qp) << why;
  const VerbsEndpoint& local = (*qp)->local();
  EXPECT_EQ(local.link_layer, LinkLayer::kEthernet);
  EXPECT_EQ(local.lid, 0);
  ASSERT_TRUE(local.gid);
  EXPECT_EQ(*local.gid, Gid(0x31));
  EXPECT_EQ(local.mtu, IBV_MTU_1024);

  VerbsEndpoint peer;
  peer.link_layer = LinkLayer::kEthernet;
  peer.gid = Gid(0x99);
  peer.qpn = 0x777;
  peer.psn = 0x42;
  peer.mtu = IBV_MTU_4096;
  peer.rd_atomic = 16;
  auto blob = EncodeEndpoint(peer);
  ASSERT_TRUE(blob);
  auto decoded = DecodeEndpoint(*blob);
  ASSERT_TRUE(decoded);
  ASSERT_TRUE((*qp)->Connect(*decoded, &why)) << why;

  const ibv_qp_attr& rtr = verbs_.Find("ibv_modify_qp")[1]->qp_attr;
  EXPECT_EQ(rtr.path_mtu, IBV_MTU_1024);
  EXPECT_EQ(rtr.ah_attr.is_global, 1);
  EXPECT_EQ(rtr.ah_attr.dlid, 0);
  EXPECT_EQ(rtr.ah_attr.grh.sgid_index, 3);
  EXPECT_EQ(rtr.ah_attr.grh.hop_limit, 64);
  EXPECT_EQ(rtr.ah_attr.grh.traffic_class, 106);
  EXPECT_TRUE(std::equal(peer.gid->begin(), peer.gid->end(), rtr.ah_attr.grh.dgid.raw));
  EXPECT_EQ(rtr.dest_qp_num, 0x777u);
  EXPECT_EQ(rtr.rq_psn, 0x42u);
}

TEST_F(VerbsSetupTest, UnknownDeviceNamesItAndListsTheDevicesFound) {
  std::string why;
  auto device = VerbsDevice::Open(verbs_, Options("mlx5_9"), &why);
  ASSERT_FALSE(device);
  EXPECT_EQ(device.error(), verbs_errc::no_device);
  EXPECT_EQ(why, "rdma.device: mlx5_9 not found; devices found: mlx5_0, mlx5_1");
  EXPECT_TRUE(verbs_.Find("ibv_open_device").empty());
  EXPECT_EQ(verbs_.live(), 0u) << "the device list is freed";
}

TEST_F(VerbsSetupTest, AHostWithoutDevicesSaysSo) {
  RecordingVerbs none;
  std::string why;
  auto device = VerbsDevice::Open(none, Options("mlx5_0"), &why);
  ASSERT_FALSE(device);
  EXPECT_EQ(device.error(), verbs_errc::no_device);
  EXPECT_THAT(why, HasSubstr("mlx5_0 not found: no RDMA devices on this host"));
  EXPECT_EQ(none.live(), 0u);
}

TEST_F(VerbsSetupTest, APortThatIsDownIsRefusedAndTheDeviceClosed) {
  FakePort down;
  down.state = IBV_PORT_DOWN;
  verbs_.AddDevice("mlx5_3", down);
  std::string why;
  auto device = VerbsDevice::Open(verbs_, Options("mlx5_3"), &why);
  ASSERT_FALSE(device);
  EXPECT_EQ(device.error(), verbs_errc::port_not_active);
  EXPECT_THAT(why, HasSubstr("mlx5_3 port 1 is down (state 1), not ACTIVE"));
  ExpectAllReleasedInReverse(verbs_);
}

TEST_F(VerbsSetupTest, RoceWithAnEmptyGidIndexNamesTheIndex) {
  FakePort roce;
  roce.link_layer = IBV_LINK_LAYER_ETHERNET;
  roce.gids[0] = ToIbvGid(Gid(1));
  verbs_.AddDevice("mlx5_2", roce);
  VerbsOptions o = Options("mlx5_2");
  o.gid_index = 5;
  std::string why;
  auto device = VerbsDevice::Open(verbs_, o, &why);
  ASSERT_FALSE(device);
  EXPECT_EQ(device.error(), verbs_errc::gid_query_failed);
  EXPECT_THAT(why, HasSubstr("GID index 5 is empty"));
  ExpectAllReleasedInReverse(verbs_);
}

// Each resource of Open failing in turn: the error names the call, and what
// was created before it is released in reverse.
TEST_F(VerbsSetupTest, AFailingStepOfOpenReleasesWhatCameBeforeInReverse) {
  for (const char* fn : {"ibv_open_device", "ibv_query_port", "ibv_alloc_pd",
                         "ibv_create_comp_channel", "ibv_create_cq", "ibv_req_notify_cq"}) {
    SCOPED_TRACE(fn);
    RecordingVerbs verbs;
    verbs.AddDevice("mlx5_0");
    verbs.FailCall(fn, ENOMEM);
    std::string why;
    auto device = VerbsDevice::Open(verbs, Options("mlx5_0"), &why);
    ASSERT_FALSE(device);
    EXPECT_THAT(why, HasSubstr(fn));
    EXPECT_THAT(why, HasSubstr("Cannot allocate memory (errno 12)"));
    ExpectAllReleasedInReverse(verbs);
  }
}

// A refused transition at each step: the QP is destroyed at once, later
// Connects say so, and the rest goes in reverse when its owner lets go.
TEST_F(VerbsSetupTest, AFailingModifyQpReleasesTheQueuePairAndThenEverythingInReverse) {
  const char* steps[] = {"RESET->INIT", "INIT->RTR", "RTR->RTS"};
  for (int nth = 1; nth <= 3; ++nth) {
    SCOPED_TRACE(steps[nth - 1]);
    RecordingVerbs verbs;
    verbs.AddDevice("mlx5_0");
    verbs.FailCall("ibv_modify_qp", EINVAL, nth);
    std::string why;
    auto device = VerbsDevice::Open(verbs, Options("mlx5_0"), &why);
    ASSERT_TRUE(device) << why;
    auto qp = RcQueuePair::Create(**device, &why);
    ASSERT_TRUE(qp) << why;
    const uint32_t qpn = (*qp)->local().qpn;
    ibv_qp* raw = (*qp)->qp();

    auto st = (*qp)->Connect(IbPeer(), &why);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error(), verbs_errc::qp_modify_failed);
    EXPECT_EQ(why, fmt::format("ibv_modify_qp({}) on mlx5_0 port 1 qpn {:#x}: Invalid argument "
                               "(errno 22)",
                               steps[nth - 1], qpn));
    EXPECT_FALSE((*qp)->connected());
    EXPECT_EQ((*qp)->qp(), nullptr);
    // The failed modify is followed at once by the QP's destruction.
    const auto names = verbs.Names();
    ASSERT_GE(names.size(), 2u);
    EXPECT_EQ(names[names.size() - 2], "ibv_modify_qp");
    EXPECT_EQ(names.back(), "ibv_destroy_qp");
    EXPECT_EQ(verbs.calls().back().object, raw);
    EXPECT_EQ(verbs.Find("ibv_modify_qp").size(), static_cast<size_t>(nth));

    auto again = (*qp)->Connect(IbPeer(), &why);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), verbs_errc::qp_closed);

    qp->reset();
    device->reset();
    ExpectAllReleasedInReverse(verbs);
  }
}

TEST_F(VerbsSetupTest, AFailingCreateQpNamesTheCallAndCreatesNothing) {
  verbs_.FailCall("ibv_create_qp", ENOMEM);
  std::string why;
  auto device = VerbsDevice::Open(verbs_, Options(), &why);
  ASSERT_TRUE(device) << why;
  auto qp = RcQueuePair::Create(**device, &why);
  ASSERT_FALSE(qp);
  EXPECT_EQ(qp.error(), verbs_errc::qp_create_failed);
  EXPECT_THAT(why, HasSubstr("ibv_create_qp(RC, max_send_wr 512) on mlx5_1 port 1"));
  device->reset();
  ExpectAllReleasedInReverse(verbs_);
}

TEST_F(VerbsSetupTest, APeerOnAnotherLinkLayerIsRefusedBeforeAnyTransition) {
  std::string why;
  auto device = VerbsDevice::Open(verbs_, Options(), &why);
  ASSERT_TRUE(device);
  auto qp = RcQueuePair::Create(**device, &why);
  ASSERT_TRUE(qp);
  VerbsEndpoint roce_peer = IbPeer();
  roce_peer.link_layer = LinkLayer::kEthernet;
  roce_peer.gid = Gid(7);
  auto st = (*qp)->Connect(roce_peer, &why);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error(), verbs_errc::peer_mismatch);
  EXPECT_TRUE(verbs_.Find("ibv_modify_qp").empty());
}

TEST_F(VerbsSetupTest, RandomPsnsAre24Bits) {
  VerbsOptions o = Options();
  o.psn.reset();
  auto device = VerbsDevice::Open(verbs_, o);
  ASSERT_TRUE(device);
  for (int i = 0; i < 16; ++i) {
    auto qp = RcQueuePair::Create(**device);
    ASSERT_TRUE(qp);
    EXPECT_LE((*qp)->local().psn, 0xFFFFFFu);
  }
}

// ---------------------------------------------------------------------------
// Memory registration

class VerbsRegisterTest : public VerbsSetupTest {
 protected:
  void SetUp() override {
    VerbsSetupTest::SetUp();
    std::string why;
    auto d = VerbsDevice::Open(verbs_, Options(), &why);
    ASSERT_TRUE(d) << why;
    device_ = std::move(*d);
  }
  static constexpr int kAccess =
      IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
  std::unique_ptr<VerbsDevice> device_;
};

TEST_F(VerbsRegisterTest, HostMemoryTakesIbvRegMr) {
  auto cuda = common::Cuda::Unavailable("no libcuda.so.1: test");
  std::vector<char> buf(1 << 20);
  auto mr = device_->Register(buf.data(), buf.size(), *cuda);
  ASSERT_TRUE(mr);
  EXPECT_EQ((*mr)->path(), RegistrationPath::kHost);
  const auto reg = verbs_.Find("ibv_reg_mr");
  ASSERT_EQ(reg.size(), 1u);
  EXPECT_EQ(reg[0]->object, device_->pd());
  EXPECT_EQ(reg[0]->addr, buf.data());
  EXPECT_EQ(reg[0]->length, buf.size());
  EXPECT_EQ(reg[0]->access, kAccess);
  EXPECT_EQ((*mr)->rkey(), static_cast<const ibv_mr*>(reg[0]->result)->rkey);
  mr->reset();
  EXPECT_EQ(verbs_.calls().back().fn, "ibv_dereg_mr");
}

TEST_F(VerbsRegisterTest, GpuMemoryTakesDmabufAndClosesTheExport) {
  FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 20);
  const auto id = gpu.AddDeviceRange(mem.data, mem.size, 0);
  std::byte* p = mem.data + 4096 + 100;
  auto mr = device_->Register(p, 65536, cuda);
  ASSERT_TRUE(mr);
  EXPECT_EQ((*mr)->path(), RegistrationPath::kDmabuf);
  EXPECT_EQ((*mr)->memory().buffer_id, id);
  EXPECT_TRUE((*mr)->fallback_reason().empty());
  const auto reg = verbs_.Find("ibv_reg_dmabuf_mr");
  ASSERT_EQ(reg.size(), 1u);
  ASSERT_EQ(gpu.exports.size(), 1u);
  EXPECT_EQ(reg[0]->fd, gpu.exports[0].fd);
  EXPECT_EQ(reg[0]->offset, 100u);  // p within the page-aligned export
  EXPECT_EQ(reg[0]->length, 65536u);
  EXPECT_EQ(reg[0]->iova, reinterpret_cast<uintptr_t>(p));
  EXPECT_EQ(reg[0]->access, kAccess);
  EXPECT_TRUE(verbs_.Find("ibv_reg_mr").empty());
  EXPECT_EQ(::fcntl(gpu.exports[0].fd, F_GETFD), -1)
      << "the dma-buf fd is closed after registering";
}

TEST_F(VerbsRegisterTest, GpuMemoryFallsBackToPeerMemWhenExportFails) {
  FakeGpu gpu;
  gpu.export_result = common::cu::CUDA_ERROR_NOT_SUPPORTED;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 16);
  gpu.AddDeviceRange(mem.data, mem.size, 0);
  auto mr = device_->Register(mem.data, mem.size, cuda);
  ASSERT_TRUE(mr);
  EXPECT_EQ((*mr)->path(), RegistrationPath::kPeerMem);
  EXPECT_THAT((*mr)->fallback_reason(), HasSubstr("CUDA_ERROR_NOT_SUPPORTED"));
  EXPECT_TRUE(verbs_.Find("ibv_reg_dmabuf_mr").empty());
  const auto reg = verbs_.Find("ibv_reg_mr");
  ASSERT_EQ(reg.size(), 1u);
  EXPECT_EQ(reg[0]->addr, mem.data);
  EXPECT_EQ(reg[0]->access, kAccess);
}

TEST_F(VerbsRegisterTest, GpuMemoryFallsBackToPeerMemWhenTheNicRefusesTheDmabuf) {
  FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 16);
  gpu.AddDeviceRange(mem.data, mem.size, 0);
  verbs_.FailCall("ibv_reg_dmabuf_mr", EOPNOTSUPP);
  auto mr = device_->Register(mem.data, mem.size, cuda);
  ASSERT_TRUE(mr);
  EXPECT_EQ((*mr)->path(), RegistrationPath::kPeerMem);
  EXPECT_THAT((*mr)->fallback_reason(), HasSubstr("ibv_reg_dmabuf_mr: Operation not supported"));
  EXPECT_THAT(verbs_.Names(), ::testing::IsSupersetOf({"ibv_reg_dmabuf_mr", "ibv_reg_mr"}));
  EXPECT_EQ(::fcntl(gpu.exports.at(0).fd, F_GETFD), -1);
}

TEST_F(VerbsRegisterTest, GpuMemoryWithNoPathLeftSaysWhatToLoad) {
  FakeGpu gpu;
  gpu.export_result = common::cu::CUDA_ERROR_NOT_SUPPORTED;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 16);
  gpu.AddDeviceRange(mem.data, mem.size, 1);
  verbs_.FailCall("ibv_reg_mr", EFAULT);
  std::string why;
  auto mr = device_->Register(mem.data, mem.size, cuda, &why);
  ASSERT_FALSE(mr);
  EXPECT_EQ(mr.error(), verbs_errc::reg_mr_failed);
  EXPECT_THAT(why, HasSubstr("(device 1)"));
  EXPECT_THAT(why, HasSubstr("dma-buf export"));
  EXPECT_THAT(why, HasSubstr("nvidia_peermem"));
}

TEST_F(VerbsRegisterTest, TheCacheClassifiesOnceAndTheDeviceExportsWithoutAskingAgain) {
  FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  AlignedBuffer mem(1 << 20);
  const auto id = gpu.AddDeviceRange(mem.data, mem.size, 0);
  RegistrationCache cache(std::make_shared<VerbsRegistrar>(*device_, cuda), &cuda);
  gpu.calls.clear();
  std::string why;
  auto reg = cache.Register(mem.data + 8192, 65536, &why);
  ASSERT_TRUE(reg) << why;
  EXPECT_EQ((*reg)->buffer_id, id);
  // Classified once (by the cache); the export uses that classification.
  EXPECT_THAT(gpu.calls,
              ElementsAre("cuPointerGetAttribute", "cuPointerGetAttribute", "cuPointerGetAttribute",
                          "cuMemGetAddressRange", "cuMemGetHandleForAddressRange"));
  auto mr = std::static_pointer_cast<const VerbsMemoryRegion>((*reg)->handle);
  EXPECT_EQ(mr->path(), RegistrationPath::kDmabuf);
  EXPECT_EQ(mr->memory().buffer_id, id);
  const auto dmabuf = verbs_.Find("ibv_reg_dmabuf_mr");
  ASSERT_EQ(dmabuf.size(), 1u);
  EXPECT_EQ(dmabuf[0]->iova, reinterpret_cast<uintptr_t>(mem.data + 8192));
  EXPECT_EQ(dmabuf[0]->offset, 0u);
  ASSERT_EQ(gpu.exports.size(), 1u);
  EXPECT_EQ(gpu.exports[0].start, reinterpret_cast<uintptr_t>(mem.data + 8192));

  // The NIC refuses dma-buf for the next buffer: peer memory, and the
  // registration says so.
  AlignedBuffer other(1 << 16);
  gpu.AddDeviceRange(other.data, other.size, 1);
  verbs_.FailCall("ibv_reg_dmabuf_mr", EOPNOTSUPP);
  auto fallback = cache.Register(other.data, other.size, &why);
  ASSERT_TRUE(fallback) << why;
  auto mr2 = std::static_pointer_cast<const VerbsMemoryRegion>((*fallback)->handle);
  EXPECT_EQ(mr2->path(), RegistrationPath::kPeerMem);
  EXPECT_STREQ(RegistrationPathName(mr2->path()), "GPU peer memory (ibv_reg_mr, nvidia_peermem)");
  EXPECT_EQ((*fallback)->device, 1);

  // Deregistered and released: ibv_dereg_mr once the last user lets go.
  mr.reset();
  mr2.reset();
  ASSERT_TRUE(cache.Deregister((*reg)->id));
  ASSERT_TRUE(cache.Deregister((*fallback)->id));
  reg = errc::ok;
  fallback = errc::ok;
  EXPECT_EQ(verbs_.Find("ibv_dereg_mr").size(), 2u);
}

TEST_F(VerbsRegisterTest, HostMemoryThroughTheCacheTakesIbvRegMr) {
  auto no_driver = common::Cuda::Unavailable("no libcuda.so.1: test");
  RegistrationCache cache(std::make_shared<VerbsRegistrar>(*device_, *no_driver), no_driver.get());
  std::vector<char> buf(1 << 16);
  auto reg = cache.Register(buf.data(), buf.size());
  ASSERT_TRUE(reg);
  EXPECT_FALSE((*reg)->is_device());
  EXPECT_EQ(std::static_pointer_cast<const VerbsMemoryRegion>((*reg)->handle)->path(),
            RegistrationPath::kHost);
  EXPECT_EQ(verbs_.Find("ibv_reg_mr").size(), 1u);
}

// ---------------------------------------------------------------------------
// DC

#if MEMKV_HAVE_MLX5DV
TEST_F(VerbsSetupTest, DcTargetAndInitiatorSequences) {
  std::string why;
  auto device = VerbsDevice::Open(verbs_, Options(), &why);
  ASSERT_TRUE(device) << why;
  const size_t before = verbs_.calls().size();

  auto dct = DcTarget::Create(**device, 0xC0FFEE, &why);
  ASSERT_TRUE(dct) << why;
  auto dci = DcInitiator::Create(**device, &why);
  ASSERT_TRUE(dci) << why;

  const auto all = verbs_.Names();
  std::vector<std::string> names(all.begin() + before, all.end());
  EXPECT_THAT(names,
              ElementsAre("ibv_create_srq", "mlx5dv_create_qp", "ibv_modify_qp", "ibv_modify_qp",
                          "mlx5dv_create_qp", "ibv_modify_qp", "ibv_modify_qp", "ibv_modify_qp"));
  const auto create = verbs_.Find("mlx5dv_create_qp");
  // DCT: the SRQ, the PD, a DC target with its access key.
  EXPECT_EQ(create[0]->qp_init_ex.qp_type, IBV_QPT_DRIVER);
  EXPECT_EQ(create[0]->qp_init_ex.comp_mask, static_cast<uint32_t>(IBV_QP_INIT_ATTR_PD));
  EXPECT_EQ(create[0]->qp_init_ex.srq, verbs_.Find("ibv_create_srq")[0]->result);
  EXPECT_EQ(create[0]->qp_init_ex.pd, (*device)->pd());
  EXPECT_EQ(create[0]->dv_init.comp_mask, static_cast<uint64_t>(MLX5DV_QP_INIT_ATTR_MASK_DC));
  EXPECT_EQ(create[0]->dv_init.dc_init_attr.dc_type, MLX5DV_DCTYPE_DCT);
  EXPECT_EQ(create[0]->dv_init.dc_init_attr.dct_access_key, 0xC0FFEEu);
  // DCI: RDMA WRITE and READ through the extended send API.
  EXPECT_EQ(create[1]->qp_init_ex.comp_mask,
            static_cast<uint32_t>(IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS));
  EXPECT_EQ(create[1]->qp_init_ex.send_ops_flags,
            static_cast<uint64_t>(IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_RDMA_READ));
  EXPECT_EQ(create[1]->qp_init_ex.cap.max_send_wr, 512u);
  EXPECT_EQ(create[1]->dv_init.dc_init_attr.dc_type, MLX5DV_DCTYPE_DCI);

  const auto modify = verbs_.Find("ibv_modify_qp");
  ASSERT_EQ(modify.size(), 5u);
  EXPECT_EQ(modify[0]->attr_mask,
            IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
  EXPECT_EQ(modify[0]->qp_attr.qp_access_flags,
            static_cast<unsigned>(IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
                                  IBV_ACCESS_LOCAL_WRITE));
  EXPECT_EQ(modify[1]->attr_mask,
            IBV_QP_STATE | IBV_QP_MIN_RNR_TIMER | IBV_QP_AV | IBV_QP_PATH_MTU);
  EXPECT_EQ(modify[1]->qp_attr.qp_state, IBV_QPS_RTR);
  EXPECT_EQ(modify[1]->qp_attr.path_mtu, IBV_MTU_4096);
  EXPECT_EQ(modify[1]->qp_attr.ah_attr.port_num, 1);
  EXPECT_EQ(modify[2]->attr_mask, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT);
  EXPECT_EQ(modify[3]->attr_mask, IBV_QP_STATE | IBV_QP_PATH_MTU | IBV_QP_AV);
  EXPECT_EQ(modify[4]->attr_mask, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                      IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
  EXPECT_EQ(modify[4]->qp_attr.qp_state, IBV_QPS_RTS);

  // The DCT's endpoint travels like an RC one, with its key.
  const VerbsEndpoint& target = (*dct)->local();
  EXPECT_EQ(target.transport, VerbsTransport::kDc);
  EXPECT_EQ(target.qpn, (*dct)->qp()->qp_num);
  EXPECT_EQ(target.dc_key, 0xC0FFEEu);
  auto blob = EncodeEndpoint(target);
  ASSERT_TRUE(blob);
  auto decoded = DecodeEndpoint(*blob);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, target);

  auto peer = (*dci)->AddPeer(*decoded, &why);
  ASSERT_TRUE(peer) << why;
  EXPECT_EQ(peer->dct_number, target.qpn);
  EXPECT_EQ(peer->access_key, 0xC0FFEEu);
  const auto ah = verbs_.Find("ibv_create_ah");
  ASSERT_EQ(ah.size(), 1u);
  EXPECT_EQ(ah[0]->ah_attr.dlid, 0x11);
  EXPECT_EQ(ah[0]->ah_attr.port_num, 1);
  EXPECT_EQ(ah[0]->object, (*device)->pd());

  auto rc_peer = (*dci)->AddPeer(IbPeer(), &why);
  ASSERT_FALSE(rc_peer);
  EXPECT_EQ(rc_peer.error(), verbs_errc::peer_mismatch);

  dci->reset();
  dct->reset();
  device->reset();
  ExpectAllReleasedInReverse(verbs_);
}

TEST_F(VerbsSetupTest, DcRefusedByTheNicReleasesTheSrq) {
  verbs_.FailCall("mlx5dv_create_qp", EOPNOTSUPP);
  std::string why;
  auto device = VerbsDevice::Open(verbs_, Options(), &why);
  ASSERT_TRUE(device);
  auto dct = DcTarget::Create(**device, 1, &why);
  ASSERT_FALSE(dct);
  EXPECT_EQ(dct.error(), verbs_errc::dc_unavailable);
  EXPECT_THAT(why, HasSubstr("mlx5dv_create_qp(DCT) on mlx5_1 port 1: Operation not supported"));
  EXPECT_EQ(verbs_.calls().back().fn, "ibv_destroy_srq");
  device->reset();
  ExpectAllReleasedInReverse(verbs_);
}
#else
TEST(VerbsDc, CompiledOut) {
  GTEST_SKIP() << "infiniband/mlx5dv.h or libmlx5 not found at configure time: DC is compiled out";
}
#endif

}  // namespace
}  // namespace memkv::rdma
