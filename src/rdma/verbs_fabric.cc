// The `verbs` provider (see verbs_fabric.h for what each member does).
//
// Locking: TransferQueue::mu_ guards the peers, their queues and the
// counters; ibv_post_send runs under it (from any thread, or from the drain
// refilling a peer), ibv_poll_cq and the channel calls run on the loop
// outside it. libibverbs is thread-safe for these calls.

#include "rdma/verbs_fabric.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string_view>
#include <vector>
#include <thread>
#include <cstring>
#include <span>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/cuda.h"
#include "rdma/transfer_queue.h"
#include "rdma/verbs_endpoint.h"
#include "rdma/verbs_error.h"

namespace memkv::rdma {

const boost::system::error_category& wc_category() {
  static const EnumCategory cat("ibv_wc_status", [](int ev) {
    return WcStatusName(static_cast<ibv_wc_status>(ev));
  });
  return cat;
}

Result<VerbsOptions> VerbsOptionsFrom(const FabricOptions& options, std::string* why) {
  VerbsOptions v;
  v.max_send_wr = std::max<uint32_t>(1, std::min<uint32_t>(options.max_inflight_per_peer, 1024));
  std::vector<std::string_view> fields;  // NAME[:PORT[:GID_INDEX]]
  for (std::string_view rest = options.domain;;) {
    const size_t colon = rest.find(':');
    fields.push_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest = rest.substr(colon + 1);
  }
  const auto number = [](std::string_view text, int lo, int hi) -> std::optional<int> {
    int n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < lo || n > hi)
      return std::nullopt;
    return n;
  };
  v.device = std::string(fields[0]);
  const std::optional<int> port = fields.size() > 1 ? number(fields[1], 1, 255) : 1;
  const std::optional<int> gid = fields.size() > 2 ? number(fields[2], 0, 255) : 0;
  if (v.device.empty() || fields.size() > 3 || !port || !gid) {
    if (why)
      *why = "rdma.device: '" + options.domain +
             "': expected the HCA, optionally with its port and GID index: NAME, NAME:PORT or "
             "NAME:PORT:GID_INDEX (e.g. mlx5_0, mlx5_0:1:3; port 1 to 255, index 0 to 255)";
    return errc::bad_option;
  }
  v.port = static_cast<uint8_t>(*port);
  v.gid_index = *gid;
  return v;
}

namespace detail {
namespace {

namespace asio = boost::asio;

// Completions read per ibv_poll_cq call.
constexpr int kPollBatch = 32;
// The largest RDMA message (InfiniBand's 2^31).
constexpr size_t kMaxMessage = size_t{1} << 31;

int IbvAccess(uint32_t a) {
  int f = 0;
  if (a & access::kReadInto) f |= IBV_ACCESS_LOCAL_WRITE;
  if (a & access::kRemoteRead) f |= IBV_ACCESS_REMOTE_READ;
  if (a & access::kRemoteWrite) f |= IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
  return f;  // kWriteFrom: local reads need no flag
}

error_code FromWc(const ibv_wc& wc) {
  switch (wc.status) {
    case IBV_WC_SUCCESS:
      return {};
    case IBV_WC_REM_ACCESS_ERR:
      return errc::remote_access;
    default:
      return {static_cast<int>(wc.status), wc_category()};
  }
}

std::string Blob(const VerbsEndpoint& ep) {
  auto blob = EncodeEndpoint(ep);
  if (!blob) return {};
  return std::string(reinterpret_cast<const char*>(blob->data()), blob->size());
}

class VerbsRegion final : public MemoryRegion {
 public:
  VerbsRegion(std::shared_ptr<VerbsDevice> device, std::unique_ptr<VerbsMemoryRegion> mr,
              const MemoryDescriptor& memory, uint32_t access)
      : MemoryRegion(memory, access, mr->rkey(), /*virtual_addressing=*/true),
        device_(std::move(device)),
        mr_(std::move(mr)) {}

  const VerbsDevice* device() const { return device_.get(); }
  uint32_t lkey() const { return mr_->lkey(); }

 private:
  // The device outlives the registration (members go in reverse order).
  const std::shared_ptr<VerbsDevice> device_;
  const std::unique_ptr<VerbsMemoryRegion> mr_;
};

}  // namespace

class VerbsImpl final : public TransferQueue {
 public:
  struct Peer : TransferPeer {
    std::unique_ptr<RcQueuePair> qp;
    bool connected = false;
  };

  VerbsImpl(VerbsCalls& calls, const asio::any_io_executor& loop, const FabricOptions& options,
            uint32_t max_inflight, uint32_t max_total)
      : TransferQueue(max_inflight, options.max_waiting_per_peer, options.max_peers, max_total),
        calls_(calls),
        loop_(loop),
        channel_fd_(loop) {}

  ~VerbsImpl() override {
    MutexLock lock(mu_);
    ReleaseAllPeersLocked();  // the QPs go before the device
  }

  Status Init(const VerbsOptions& verbs, std::string* why) {
    auto device = VerbsDevice::Open(calls_, verbs, why);
    if (!device) return device.error();
    device_ = std::move(*device);
    provider_name_ = fmt::format("verbs:{}", device_->Name());
    address_ = fmt::format("verbs {} ({})", device_->Name(),
                           device_->link_layer() == LinkLayer::kEthernet ? "RoCE" : "InfiniBand");
    // The loop waits on its own descriptor (Asio closes it); libibverbs
    // keeps the channel's, which must not block when drained.
    const int fd = device_->channel()->fd;
    if (const int fl = ::fcntl(fd, F_GETFL); fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
      if (why) *why = fmt::format("rdma.device: {}: making the completion channel non-blocking: {}",
                                  device_->Name(), std::strerror(errno));
      return error_code(errno, boost::system::system_category());
    }
    const int own = ::dup(fd);
    if (own < 0) {
      if (why) *why = "rdma.device: dup of the completion channel's fd failed";
      return error_code(errno, boost::system::system_category());
    }
    boost::system::error_code ec;
    channel_fd_.assign(own, ec);
    if (ec) {
      ::close(own);
      if (why) *why = "rdma: registering the completion channel with the loop: " + ec.message();
      return ec;
    }
    spdlog::info("rdma: opened {} ({}), RC, up to {} in flight per peer", provider_name_, address_,
                 device_->options().max_send_wr);
    return {};
  }

  // Starts waiting on the loop (VerbsDevice::Open armed the CQ already).
  void Begin() {
    asio::post(loop_, [weak = self_] {
      if (auto self = weak.lock()) self->Arm();
    });
  }

  // ---- peers ----

  Result<Fabric::PeerOffer> Offer(std::string* why) {
    auto qp = RcQueuePair::Create(*device_, why);
    if (!qp) return qp.error();
    auto peer = std::make_unique<Peer>();
    const std::string address = Blob((*qp)->local());
    peer->qp = std::move(*qp);
    auto id = AddPeer(std::move(peer));
    if (!id) return id.error();
    return Fabric::PeerOffer{*id, address};
  }

  Status Complete(PeerId id, std::string_view address, std::string* why) {
    auto ep = DecodeEndpoint(std::as_bytes(std::span(address.data(), address.size())), why);
    if (!ep) return ep.error();
    MutexLock lock(mu_);
    auto* p = static_cast<Peer*>(FindPeerLocked(id));
    if (p == nullptr || p->removing) return errc::unknown_peer;
    if (p->connected) return errc::bad_address;  // completed once already
    MEMKV_TRY(p->qp->Connect(*ep, why));
    p->connected = true;
    return {};
  }

  Result<Fabric::PeerOffer> Accept(std::string_view address, std::string* why) {
    auto ep = DecodeEndpoint(std::as_bytes(std::span(address.data(), address.size())), why);
    if (!ep) return ep.error();
    auto qp = RcQueuePair::Create(*device_, why);
    if (!qp) return qp.error();
    MEMKV_TRY((*qp)->Connect(*ep, why));
    auto peer = std::make_unique<Peer>();
    const std::string local = Blob((*qp)->local());
    peer->qp = std::move(*qp);
    peer->connected = true;
    auto id = AddPeer(std::move(peer));
    if (!id) return id.error();
    return Fabric::PeerOffer{*id, local};
  }

  // ---- the destructor's path ----

  // On the loop's thread, or with the loop not running: operations still
  // posted get a bounded moment to complete (the NIC may write into their
  // buffers until then); then the QPs go, and what is left fails.
  void Shutdown() {
    {
      MutexLock lock(mu_);
      BeginStopLocked();
    }
    for (int i = 0; i < 2000 && InFlight() > 0; ++i) {
      Drain();
      if (InFlight() > 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    Close();
    TakeEvents();
    MutexLock lock(mu_);
    if (InFlightLocked() > 0)
      spdlog::warn("rdma {}: closed with {} operations still posted; they fail", provider_name_,
                   InFlightLocked());
    ReleaseAllPeersLocked();
    AbandonPostedLocked(errc::stopped);
  }

  // ---- the loop ----

  void Arm() {
    if (armed_ || closed_) return;
    armed_ = true;
    channel_fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                           [weak = self_](boost::system::error_code ec) {
                             if (auto self = weak.lock()) self->OnWake(ec);
                           });
  }

  void OnWake(boost::system::error_code ec) {
    armed_ = false;
    if (ec == asio::error::operation_aborted || closed_) return;
    if (ec) {
      spdlog::error("rdma {}: waiting on the completion channel failed: {}", provider_name_,
                    ec.message());
      return;
    }
    {
      MutexLock lock(mu_);
      ++stats_.wakeups;
    }
    TakeEvents();
    // Re-armed before the drain: a completion that lands after the last
    // poll raises the next event.
    if (int rc = calls_.ReqNotifyCq(device_->cq(), 0); rc != 0 && !notify_logged_) {
      notify_logged_ = true;
      spdlog::error("rdma {}: ibv_req_notify_cq failed: {}", provider_name_, std::strerror(rc));
    }
    Drain();
    Arm();
  }

  // Takes the channel's pending events and acknowledges them.
  void TakeEvents() {
    unsigned n = 0;
    ibv_cq* cq = nullptr;
    void* ctx = nullptr;
    while (calls_.GetCqEvent(device_->channel(), &cq, &ctx) == 0) ++n;
    if (n > 0) calls_.AckCqEvents(device_->cq(), n);
  }

  // Reads every completion the CQ holds and finishes their operations.
  void Drain() {
    ibv_wc wc[kPollBatch];
    for (;;) {
      const int n = calls_.PollCq(device_->cq(), kPollBatch, wc);
      if (n < 0) {
        if (!poll_logged_) {
          poll_logged_ = true;
          spdlog::error("rdma {}: ibv_poll_cq failed ({})", provider_name_, n);
        }
        return;
      }
      if (n == 0) return;
      MutexLock lock(mu_);
      for (int i = 0; i < n; ++i) {
        if (wc[i].status != IBV_WC_SUCCESS)
          spdlog::debug("rdma {}: work request failed: {} (vendor error {:#x})", provider_name_,
                        WcStatusName(wc[i].status), wc[i].vendor_err);
        Completed(reinterpret_cast<Transfer*>(static_cast<uintptr_t>(wc[i].wr_id)), FromWc(wc[i]));
      }
    }
  }

  void Close() {
    closed_ = true;
    boost::system::error_code ignored;
    channel_fd_.cancel(ignored);
  }

  // ---- TransferQueue's hooks (under mu_) ----

  error_code PostLocked(Transfer& op) override REQUIRES(mu_) {
    auto& peer = static_cast<Peer&>(*op.peer);
    if (!peer.connected) return errc::not_connected;
    const auto& region = static_cast<const VerbsRegion&>(*op.local);
    ibv_sge sge{};
    sge.addr = reinterpret_cast<uintptr_t>(op.buf);
    sge.length = static_cast<uint32_t>(op.len);
    sge.lkey = region.lkey();
    ibv_send_wr wr{};
    wr.wr_id = reinterpret_cast<uintptr_t>(&op);
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = op.write ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.rdma.remote_addr = op.remote_address;
    wr.wr.rdma.rkey = static_cast<uint32_t>(op.remote_key);
    ibv_send_wr* bad = nullptr;
    if (int rc = calls_.PostSend(peer.qp->qp(), &wr, &bad); rc != 0) {
      spdlog::debug("rdma {}: ibv_post_send: {}", provider_name_, std::strerror(rc));
      return error_code(rc, boost::system::system_category());
    }
    return {};
  }

  // Flushes the peer's posted work requests: each completes (with
  // IBV_WC_WR_FLUSH_ERR if it had not yet).
  void RemovingLocked(TransferPeer& p) override REQUIRES(mu_) {
    auto& peer = static_cast<Peer&>(p);
    if (!peer.qp || !peer.qp->qp()) return;
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_ERR;
    if (int rc = calls_.ModifyQp(peer.qp->qp(), &attr, IBV_QP_STATE); rc != 0)
      spdlog::warn("rdma {}: moving qpn {:#x} to ERR to flush it: {}", provider_name_,
                   peer.qp->local().qpn, std::strerror(rc));
  }

  void ReleasePeerLocked(TransferPeer& p) override REQUIRES(mu_) {
    static_cast<Peer&>(p).qp.reset();  // ibv_destroy_qp
  }

  void StoppedLocked(std::vector<PostedHandler<>> waiters) override REQUIRES(mu_) {
    auto shared = std::make_shared<std::vector<PostedHandler<>>>(std::move(waiters));
    // Stop waiting on the loop first, then resume the callers.
    asio::post(loop_, [weak = self_, shared] {
      if (auto self = weak.lock()) self->Close();
      for (auto& w : *shared) w.Post();
    });
  }

  // Constant after Init.
  VerbsCalls& calls_;
  asio::any_io_executor loop_;
  std::weak_ptr<VerbsImpl> self_;
  std::shared_ptr<VerbsDevice> device_;
  std::string provider_name_;
  std::string address_;

  // Loop-confined.
  asio::posix::stream_descriptor channel_fd_;
  bool armed_ = false;
  bool closed_ = false;
  bool notify_logged_ = false;
  bool poll_logged_ = false;
};

namespace {

class VerbsFabric final : public Fabric {
 public:
  explicit VerbsFabric(std::shared_ptr<VerbsImpl> impl) : impl_(std::move(impl)) {}
  ~VerbsFabric() override { impl_->Shutdown(); }

  const std::string& provider_name() const override { return impl_->provider_name_; }
  const std::string& address() const override { return impl_->address_; }

  Result<PeerId> InsertPeer(std::string_view) override { return errc::exchange_required; }

  Result<PeerOffer> AcceptPeer(std::string_view address) override {
    std::string why;
    auto r = impl_->Accept(address, &why);
    if (!r) spdlog::warn("rdma {}: accepting a peer: {}", impl_->provider_name_, why);
    return r;
  }
  Result<PeerOffer> OfferPeer() override {
    std::string why;
    auto r = impl_->Offer(&why);
    if (!r) spdlog::warn("rdma {}: offering a peer: {}", impl_->provider_name_, why);
    return r;
  }
  Status CompletePeer(PeerId offered, std::string_view address) override {
    std::string why;
    auto st = impl_->Complete(offered, address, &why);
    if (!st && !why.empty())
      spdlog::warn("rdma {}: connecting peer {}: {}", impl_->provider_name_, offered, why);
    return st;
  }

  Awaitable<Status> RemovePeer(PeerId peer) override {
    return TransferQueue::AwaitRemovePeer(impl_, peer);
  }

  // Host memory with ibv_reg_mr; device memory by dma-buf, else on its
  // address (nvidia_peermem): VerbsDevice::Register.
  using Fabric::Register;
  Result<std::unique_ptr<MemoryRegion>> Register(const MemoryDescriptor& memory, uint32_t access,
                                                 std::string* why) override {
    if (memory.base == nullptr || memory.size == 0) return errc::bad_argument;
    if (access == 0 || (access & ~access::kAll) != 0) return errc::bad_option;
    std::string reason;
    auto mr = impl_->device_->Register(memory, common::Cuda::Process(), IbvAccess(access), &reason);
    if (!mr) {
      spdlog::warn("rdma {}: {}", impl_->provider_name_, reason);
      if (why) *why = reason;
      return mr.error();
    }
    return std::unique_ptr<MemoryRegion>(
        new VerbsRegion(impl_->device_, std::move(*mr), memory, access));
  }
  bool registers_device_memory() const override { return true; }

  Awaitable<Status> Write(const MemoryRegion& local, const void* src, size_t len, PeerId peer,
                          RemoteBuffer dst) override {
    return Transfer(true, local, const_cast<void*>(src), len, peer, dst);
  }
  Awaitable<Status> Read(const MemoryRegion& local, void* dst, size_t len, PeerId peer,
                         RemoteBuffer src) override {
    return Transfer(false, local, dst, len, peer, src);
  }

  Awaitable<void> Stop() override { return TransferQueue::AwaitStop(impl_); }

  FabricStats stats() const override { return impl_->stats(); }

 private:
  Awaitable<Status> Transfer(bool write, const MemoryRegion& local, void* buf, size_t len,
                             PeerId peer, RemoteBuffer remote) {
    if (buf == nullptr || len == 0 || len > kMaxMessage) co_return errc::bad_argument;
    const auto* region = dynamic_cast<const VerbsRegion*>(&local);
    if (region == nullptr || region->device() != impl_->device_.get() || !local.Covers(buf, len) ||
        (!write && !(local.access() & access::kReadInto)))
      co_return errc::not_registered;
    // Keys are 32-bit rkeys: a wider one names no region of the peer.
    if (remote.key > UINT32_MAX) co_return errc::remote_access;
    auto* op = new detail::Transfer;
    op->write = write;
    op->buf = buf;
    op->len = len;
    op->local = region;
    op->remote_address = remote.address;
    op->remote_key = remote.key;
    op->peer_id = peer;
    co_return co_await TransferQueue::AwaitTransfer(impl_, op);
  }

  std::shared_ptr<VerbsImpl> impl_;
};

}  // namespace
}  // namespace detail

Result<std::unique_ptr<Fabric>> OpenVerbsFabric(VerbsCalls& calls, const VerbsOptions& verbs,
                                                const FabricOptions& options,
                                                const boost::asio::any_io_executor& loop,
                                                std::string* why) {
  if (options.max_inflight_per_peer == 0 || options.max_peers == 0) {
    if (why) *why = "rdma: max_inflight_per_peer and max_peers must be at least 1";
    return errc::bad_option;
  }
  // Per peer: no more than its send queue holds; in all: no more than the
  // CQ holds, so that it never overflows.
  const uint32_t per_peer = std::min(options.max_inflight_per_peer, verbs.max_send_wr);
  const uint32_t total = static_cast<uint32_t>(std::max(1, verbs.cq_depth));
  auto impl = std::make_shared<detail::VerbsImpl>(calls, loop, options, per_peer, total);
  impl->self_ = impl;
  MEMKV_TRY(impl->Init(verbs, why));
  impl->Begin();
  return std::unique_ptr<Fabric>(new detail::VerbsFabric(std::move(impl)));
}

}  // namespace memkv::rdma
