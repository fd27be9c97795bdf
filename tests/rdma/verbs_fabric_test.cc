// The verbs Fabric driven through its real async path over RecordingVerbs'
// loopback: two fabrics (a "server" and a "client") in one process, the
// completion channel an eventfd awaited on the loop, bytes moved between
// registered regions by ibv_post_send as a NIC would.

#include "rdma/verbs_fabric.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "rdma/error.h"
#include "rdma/verbs_endpoint.h"
#include "rdma/verbs_recording.h"

namespace memkv::rdma {
namespace {

namespace asio = boost::asio;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class VerbsFabricTest : public ::testing::Test {
 protected:
  void SetUp() override {
    verbs_.AddDevice("mlx5_0");
    server_ = Open(0x111111);
    client_ = Open(0x222222);
    ASSERT_TRUE(server_ && client_);
  }

  void TearDown() override {
    Stop(server_);
    Stop(client_);
    server_mr_.reset();
    client_mr_.reset();
    server_.reset();
    client_.reset();
    EXPECT_EQ(verbs_.live(), 0u) << "everything created is released";
    EXPECT_THAT(verbs_.misuse(), IsEmpty());
  }

  std::unique_ptr<Fabric> Open(uint32_t psn, uint32_t inflight = 4) {
    VerbsOptions v;
    v.device = "mlx5_0";
    v.psn = psn;
    FabricOptions f;
    f.provider = ProviderKind::kVerbs;
    f.domain = "mlx5_0";
    f.max_inflight_per_peer = inflight;
    f.max_waiting_per_peer = 1024;
    v.max_send_wr = inflight;
    std::string why;
    auto fab = OpenVerbsFabric(verbs_, v, f, io_.get_executor(), &why);
    EXPECT_TRUE(fab) << why;
    return fab ? std::move(*fab) : nullptr;
  }

  void Stop(std::unique_ptr<Fabric>& f) {
    if (!f) return;
    bool done = false;
    asio::co_spawn(io_, f->Stop(), [&](std::exception_ptr) { done = true; });
    RunUntil([&] { return done; });
  }

  template <class Pred>
  void RunUntil(Pred pred) {
    // A hang fails the test instead of blocking it: the loop must run dry of
    // ready handlers before the predicate is given up on.
    for (int i = 0; i < 1000000 && !pred(); ++i) {
      if (io_.poll() == 0 && !pred()) {
        io_.restart();
        if (io_.run_one_for(std::chrono::seconds(5)) == 0) break;
      }
      io_.restart();
    }
    ASSERT_TRUE(pred()) << "the loop went idle before the awaited event";
  }

  // The exchange: the client offers, the server accepts, the client completes.
  std::pair<PeerId, PeerId> Connect() {
    auto offer = client_->OfferPeer();
    EXPECT_TRUE(offer);
    auto accepted = server_->AcceptPeer(offer->address);
    EXPECT_TRUE(accepted) << accepted.error().message();
    auto st = client_->CompletePeer(offer->peer, accepted->address);
    EXPECT_TRUE(st) << st.error().message();
    return {accepted->peer, offer->peer};
  }

  // Spawns a transfer of the server's; its status lands in *out.
  void Spawn(bool write, size_t off, size_t len, PeerId peer, RemoteBuffer remote,
             std::optional<Status>* out) {
    auto* base = server_buf_.data() + off;
    auto op = write ? server_->Write(*server_mr_, base, len, peer, remote)
                    : server_->Read(*server_mr_, base, len, peer, remote);
    asio::co_spawn(io_, std::move(op), [out](std::exception_ptr e, Status st) {
      ASSERT_FALSE(e);
      *out = st;
    });
  }

  void Buffers(size_t n) {
    server_buf_.assign(n, std::byte{0});
    client_buf_.assign(n, std::byte{0});
    auto s = server_->Register(server_buf_.data(), n, access::kWriteFrom | access::kReadInto);
    auto c = client_->Register(client_buf_.data(), n, access::kRemoteRead | access::kRemoteWrite);
    ASSERT_TRUE(s && c);
    server_mr_ = std::move(*s);
    client_mr_ = std::move(*c);
  }

  RemoteBuffer At(size_t off) const {
    return {client_mr_->RemoteAddress(client_buf_.data() + off), client_mr_->key()};
  }

  RecordingVerbs verbs_;
  asio::io_context io_;
  std::unique_ptr<Fabric> server_, client_;
  std::vector<std::byte> server_buf_, client_buf_;
  std::unique_ptr<MemoryRegion> server_mr_, client_mr_;
};

TEST_F(VerbsFabricTest, PeerExchangeBringsBothQueuePairsToRtsTowardsEachOther) {
  auto offer = client_->OfferPeer();
  ASSERT_TRUE(offer);
  auto client_ep = DecodeEndpoint(std::as_bytes(std::span(offer->address)));
  ASSERT_TRUE(client_ep);
  EXPECT_EQ(client_ep->psn, 0x222222u);
  // Not connected yet: nothing can be posted to it.
  EXPECT_EQ(verbs_.Find("ibv_modify_qp").size(), 0u);

  auto accepted = server_->AcceptPeer(offer->address);
  ASSERT_TRUE(accepted);
  auto server_ep = DecodeEndpoint(std::as_bytes(std::span(accepted->address)));
  ASSERT_TRUE(server_ep);
  EXPECT_EQ(server_ep->psn, 0x111111u);
  ASSERT_TRUE(client_->CompletePeer(offer->peer, accepted->address));

  const auto mods = verbs_.Find("ibv_modify_qp");
  ASSERT_EQ(mods.size(), 6u);  // the server's three, then the client's
  const void* server_qp = mods[0]->object;
  const void* client_qp = mods[3]->object;
  std::vector<int> states;
  for (const RecordedCall* m : mods) states.push_back(m->qp_attr.qp_state);
  EXPECT_THAT(states, ElementsAre(IBV_QPS_INIT, IBV_QPS_RTR, IBV_QPS_RTS, IBV_QPS_INIT,
                                  IBV_QPS_RTR, IBV_QPS_RTS));
  for (int i : {0, 1, 2}) EXPECT_EQ(mods[i]->object, server_qp);
  for (int i : {3, 4, 5}) EXPECT_EQ(mods[i]->object, client_qp);
  EXPECT_EQ(mods[1]->attr_mask, kRcRtrMask);
  EXPECT_EQ(mods[2]->attr_mask, kRcRtsMask);
  // Each RTR names the other's QPN and first PSN and reaches its LID.
  EXPECT_EQ(mods[1]->qp_attr.dest_qp_num, client_ep->qpn);
  EXPECT_EQ(mods[1]->qp_attr.rq_psn, 0x222222u);
  EXPECT_EQ(mods[1]->qp_attr.ah_attr.dlid, client_ep->lid);
  EXPECT_EQ(mods[2]->qp_attr.sq_psn, 0x111111u);
  EXPECT_EQ(mods[4]->qp_attr.dest_qp_num, server_ep->qpn);
  EXPECT_EQ(mods[4]->qp_attr.rq_psn, 0x111111u);
  EXPECT_EQ(mods[4]->qp_attr.ah_attr.dlid, server_ep->lid);
  EXPECT_EQ(mods[5]->qp_attr.sq_psn, 0x222222u);
  EXPECT_EQ(static_cast<const ibv_qp*>(server_qp)->qp_num, server_ep->qpn);
  EXPECT_EQ(static_cast<const ibv_qp*>(client_qp)->qp_num, client_ep->qpn);

  // Completing twice, or an unknown peer, is refused.
  EXPECT_FALSE(client_->CompletePeer(offer->peer, accepted->address));
  EXPECT_FALSE(client_->CompletePeer(999, accepted->address));
  EXPECT_EQ(server_->InsertPeer(offer->address).error(), make_error_code(errc::exchange_required));
}

TEST_F(VerbsFabricTest, SixteenMibWrittenAndReadBackInChunksWithTheBoundHeld) {
  constexpr size_t kSize = 16 << 20, kChunk = 256 << 10, kN = kSize / kChunk;
  ASSERT_NO_FATAL_FAILURE(Buffers(kSize));
  const auto [peer, client_peer] = Connect();
  for (size_t i = 0; i < kSize; ++i) server_buf_[i] = static_cast<std::byte>((i * 131 + 7) >> 3);

  std::vector<std::optional<Status>> st(kN);
  for (size_t k = 0; k < kN; ++k) Spawn(true, k * kChunk, kChunk, peer, At(k * kChunk), &st[k]);
  RunUntil([&] { return std::all_of(st.begin(), st.end(), [](auto& s) { return s.has_value(); }); });
  for (auto& s : st) EXPECT_TRUE(*s) << s->error().message();
  EXPECT_EQ(std::memcmp(server_buf_.data(), client_buf_.data(), kSize), 0);

  // READ it back into a cleared buffer.
  const std::vector<std::byte> want = server_buf_;
  std::fill(server_buf_.begin(), server_buf_.end(), std::byte{0});
  std::vector<std::optional<Status>> rd(kN);
  for (size_t k = 0; k < kN; ++k) Spawn(false, k * kChunk, kChunk, peer, At(k * kChunk), &rd[k]);
  RunUntil([&] { return std::all_of(rd.begin(), rd.end(), [](auto& s) { return s.has_value(); }); });
  for (auto& s : rd) EXPECT_TRUE(*s) << s->error().message();
  EXPECT_TRUE(server_buf_ == want);

  // The bound: never more than 4 posted to the peer at once, and 4 were.
  EXPECT_EQ(verbs_.max_outstanding(), 4u);
  const FabricStats stats = server_->stats();
  EXPECT_EQ(stats.max_in_flight, 4u);
  EXPECT_EQ(stats.writes, kN);
  EXPECT_EQ(stats.reads, kN);
  EXPECT_EQ(stats.bytes_written, kSize);
  EXPECT_EQ(stats.bytes_read, kSize);
  EXPECT_EQ(stats.errors, 0u);
  EXPECT_GT(stats.wakeups, 0u);
  // Every work request was signaled and named its operation.
  const auto posts = verbs_.Find("ibv_post_send");
  ASSERT_EQ(posts.size(), 2 * kN);
  EXPECT_EQ(posts[0]->send_wr.opcode, IBV_WR_RDMA_WRITE);
  EXPECT_EQ(posts[kN]->send_wr.opcode, IBV_WR_RDMA_READ);
  for (const RecordedCall* p : posts) {
    EXPECT_TRUE(p->send_wr.send_flags & IBV_SEND_SIGNALED);
    EXPECT_NE(p->send_wr.wr_id, 0u);
    EXPECT_EQ(p->send_wr.wr.rdma.rkey, client_mr_->key());
  }
  // Each wake-up acknowledged its events and re-armed before draining.
  EXPECT_FALSE(verbs_.Find("ibv_ack_cq_events").empty());

  bool removed = false;
  asio::co_spawn(io_, server_->RemovePeer(peer), [&](std::exception_ptr, Status s) {
    EXPECT_TRUE(s);
    removed = true;
  });
  asio::co_spawn(io_, client_->RemovePeer(client_peer), [&](std::exception_ptr, Status s) {
    EXPECT_TRUE(s);
  });
  RunUntil([&] { return removed; });
}

TEST_F(VerbsFabricTest, WrongRkeyFailsWithRemoteAccessAndThePeerThenFailsNotHangs) {
  ASSERT_NO_FATAL_FAILURE(Buffers(1 << 20));
  const auto [peer, client_peer] = Connect();
  RemoteBuffer bad = At(0);
  bad.key ^= 0x5a5a;
  std::optional<Status> a, b, c;
  Spawn(true, 0, 4096, peer, bad, &a);
  RunUntil([&] { return a.has_value(); });
  ASSERT_FALSE(*a);
  EXPECT_EQ(a->error(), make_error_code(errc::remote_access));
  // The error moved the RC QP to ERR: later operations fail with a status.
  Spawn(true, 0, 4096, peer, At(0), &b);
  RunUntil([&] { return b.has_value(); });
  ASSERT_FALSE(*b);
  EXPECT_EQ(b->error().category(), wc_category());
  EXPECT_EQ(b->error().message(), WcStatusName(IBV_WC_WR_FLUSH_ERR));
  // A key wider than 32 bits names no region.
  Spawn(true, 0, 4096, peer, {At(0).address, uint64_t{1} << 40}, &c);
  RunUntil([&] { return c.has_value(); });
  EXPECT_EQ(c->error(), make_error_code(errc::remote_access));

  // A fresh exchange gives a working peer.
  const auto [peer2, client_peer2] = Connect();
  std::optional<Status> d;
  Spawn(true, 0, 4096, peer2, At(0), &d);
  RunUntil([&] { return d.has_value(); });
  EXPECT_TRUE(*d);
}

TEST_F(VerbsFabricTest, OutOfRangeAndDeregisteredRegionsFailWithRemoteAccess) {
  ASSERT_NO_FATAL_FAILURE(Buffers(1 << 20));
  {
    const auto [peer, cp] = Connect();
    std::optional<Status> a;
    Spawn(true, 0, 8192, peer, At((1 << 20) - 4096), &a);  // runs past the region's end
    RunUntil([&] { return a.has_value(); });
    EXPECT_EQ(a->error(), make_error_code(errc::remote_access));
  }
  const auto [peer, cp] = Connect();
  const RemoteBuffer gone = At(0);
  client_mr_.reset();  // ibv_dereg_mr
  std::optional<Status> b;
  Spawn(true, 0, 4096, peer, gone, &b);
  RunUntil([&] { return b.has_value(); });
  EXPECT_EQ(b->error(), make_error_code(errc::remote_access));
  // A local range outside the registration never reaches the NIC.
  std::optional<Status> c;
  asio::co_spawn(io_, server_->Write(*server_mr_, server_buf_.data() + (1 << 20) - 10, 20, peer, gone),
                 [&](std::exception_ptr, Status s) { c = s; });
  RunUntil([&] { return c.has_value(); });
  EXPECT_EQ(c->error(), make_error_code(errc::not_registered));
}

TEST_F(VerbsFabricTest, RemovePeerWithOperationsInFlightCompletesEveryOneWithAStatus) {
  ASSERT_NO_FATAL_FAILURE(Buffers(1 << 20));
  const auto [peer, cp] = Connect();
  verbs_.HoldCompletions(true);  // posted ones stay outstanding
  std::vector<std::optional<Status>> st(10);
  for (size_t k = 0; k < st.size(); ++k) Spawn(true, k * 4096, 4096, peer, At(k * 4096), &st[k]);
  io_.poll();
  io_.restart();
  EXPECT_EQ(verbs_.held(), 4u) << "4 posted, 6 waiting";
  EXPECT_EQ(std::count_if(st.begin(), st.end(), [](auto& s) { return s.has_value(); }), 0);

  bool removed = false;
  asio::co_spawn(io_, server_->RemovePeer(peer), [&](std::exception_ptr, Status s) {
    EXPECT_TRUE(s);
    removed = true;
  });
  RunUntil([&] {
    return removed && std::all_of(st.begin(), st.end(), [](auto& s) { return s.has_value(); });
  });
  // The posted ones were flushed by ERR, the waiting ones never ran.
  for (size_t k = 0; k < 4; ++k) {
    ASSERT_FALSE(*st[k]);
    EXPECT_EQ(st[k]->error().category(), wc_category());
  }
  for (size_t k = 4; k < st.size(); ++k)
    EXPECT_EQ(st[k]->error(), make_error_code(errc::peer_removed));
  // The QP went only once nothing was outstanding (RecordingVerbs notes
  // misuse otherwise), and the peer is unknown from now on.
  EXPECT_THAT(verbs_.misuse(), IsEmpty());
  std::optional<Status> after;
  Spawn(true, 0, 4096, peer, At(0), &after);
  RunUntil([&] { return after.has_value(); });
  EXPECT_EQ(after->error(), make_error_code(errc::unknown_peer));
  verbs_.HoldCompletions(false);
}

TEST_F(VerbsFabricTest, StopFailsTheWaitingAndWaitsForThePosted) {
  ASSERT_NO_FATAL_FAILURE(Buffers(1 << 20));
  const auto [peer, cp] = Connect();
  verbs_.HoldCompletions(true);
  std::vector<std::optional<Status>> st(7);
  for (size_t k = 0; k < st.size(); ++k) Spawn(true, k * 4096, 4096, peer, At(k * 4096), &st[k]);
  io_.poll();
  io_.restart();
  bool stopped = false;
  asio::co_spawn(io_, server_->Stop(), [&](std::exception_ptr) { stopped = true; });
  RunUntil([&] { return st[4].has_value() && st[5].has_value() && st[6].has_value(); });
  for (size_t k = 4; k < st.size(); ++k) EXPECT_EQ(st[k]->error(), make_error_code(errc::stopped));
  EXPECT_FALSE(stopped) << "four are still posted";
  EXPECT_FALSE(st[0].has_value());

  verbs_.ReleaseCompletions();
  verbs_.HoldCompletions(false);
  RunUntil([&] { return stopped; });
  for (size_t k = 0; k < 4; ++k) EXPECT_TRUE(*st[k]);
  std::optional<Status> late;
  Spawn(true, 0, 4096, peer, At(0), &late);
  RunUntil([&] { return late.has_value(); });
  EXPECT_EQ(late->error(), make_error_code(errc::stopped));
}

TEST(VerbsFabricOpen, AMissingDeviceFailsNamingRdmaDevice) {
  RecordingVerbs verbs;
  verbs.AddDevice("mlx5_0");
  asio::io_context io;
  VerbsOptions v;
  v.device = "mlx5_9";
  std::string why;
  auto fab = OpenVerbsFabric(verbs, v, FabricOptions{}, io.get_executor(), &why);
  ASSERT_FALSE(fab);
  EXPECT_THAT(why, ::testing::HasSubstr("rdma.device: mlx5_9 not found; devices found: mlx5_0"));
  EXPECT_EQ(verbs.live(), 0u);
}

// rdma.device names the HCA, and its port and GID index where they are not
// 1 and 0: RoCE v2 usually sits at GID index 3.
TEST(VerbsFabricOpen, RdmaDeviceNamesThePortAndTheGidIndex) {
  FabricOptions f;
  f.provider = ProviderKind::kVerbs;
  const auto parse = [&](std::string device, std::string* why = nullptr) {
    f.domain = std::move(device);
    return VerbsOptionsFrom(f, why);
  };
  auto v = parse("mlx5_0");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->device, "mlx5_0");
  EXPECT_EQ(v->port, 1);
  EXPECT_EQ(v->gid_index, 0);
  v = parse("mlx5_1:2");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->device, "mlx5_1");
  EXPECT_EQ(v->port, 2);
  EXPECT_EQ(v->gid_index, 0);
  v = parse("mlx5_0:1:3");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->port, 1);
  EXPECT_EQ(v->gid_index, 3);
  for (const char* bad : {"mlx5_0:", "mlx5_0:0", "mlx5_0:256", "mlx5_0:x", "mlx5_0:1:", "mlx5_0:1:256",
                          "mlx5_0:1:-1", "mlx5_0:1:3:4", ":1", ""}) {
    std::string why;
    EXPECT_FALSE(parse(bad, &why)) << bad;
    EXPECT_THAT(why, ::testing::StartsWith("rdma.device: '" + std::string(bad) + "': expected the HCA"))
        << bad;
  }

  // The index reaches ibv_query_gid: a RoCE port whose GID sits at index 3.
  RecordingVerbs verbs;
  FakePort roce;
  roce.link_layer = IBV_LINK_LAYER_ETHERNET;
  ibv_gid gid{};
  gid.raw[10] = 0xff;
  gid.raw[11] = 0xff;
  gid.raw[15] = 7;
  roce.gids[3] = gid;
  verbs.AddDevice("mlx5_0", roce);
  asio::io_context io;
  v = parse("mlx5_0:1:3");
  ASSERT_TRUE(v);
  std::string why;
  {
    auto fab = OpenVerbsFabric(verbs, *v, f, io.get_executor(), &why);
    ASSERT_TRUE(fab) << why;
    const auto queries = verbs.Find("ibv_query_gid");
    ASSERT_FALSE(queries.empty());
    EXPECT_EQ(queries.back()->port, 1);
    EXPECT_EQ(queries.back()->index, 3);
    bool stopped = false;
    asio::co_spawn(io, (*fab)->Stop(), [&](std::exception_ptr) { stopped = true; });
    for (int i = 0; i < 1000 && !stopped; ++i) io.run_one_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(stopped);
  }
  // The default index, 0, is empty on that port: the error says where to look.
  v = parse("mlx5_0");
  ASSERT_TRUE(v);
  auto fab = OpenVerbsFabric(verbs, *v, f, io.get_executor(), &why);
  ASSERT_FALSE(fab);
  EXPECT_THAT(why, ::testing::HasSubstr("index 0"));
  EXPECT_EQ(verbs.live(), 0u);
}

}  // namespace
}  // namespace memkv::rdma

namespace memkv::rdma {
namespace {

// rdma.provider: verbs through Fabric::Open and the real libibverbs: on a
// host without that device (here: no RDMA NIC at all) it fails at once,
// saying so and naming rdma.device.
TEST(VerbsFabricOpen, ThroughFabricOpenWithoutTheDeviceTheMessageNamesRdmaDevice) {
  boost::asio::io_context io;
  FabricOptions f;
  f.provider = ProviderKind::kVerbs;
  f.domain = "memkv_no_such_hca0";
  std::string why;
  auto fab = Fabric::Open(f, io.get_executor(), &why);
  ASSERT_FALSE(fab);
  EXPECT_THAT(why, ::testing::StartsWith("rdma.device: memkv_no_such_hca0 not found"));
}

}  // namespace
}  // namespace memkv::rdma
