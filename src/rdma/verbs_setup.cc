#include "rdma/verbs_setup.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "rdma/verbs_error.h"

namespace memkv::rdma {
namespace {

error_code Fail(std::string* why, verbs_errc code, std::string text) {
  if (why) *why = std::move(text);
  return code;
}

// "Invalid argument (errno 22)".
std::string Errno(int err) { return fmt::format("{} (errno {})", std::strerror(err), err); }

// ibv_modify_qp and the destroy calls return the errno value; some providers
// return -1 and set errno.
int ErrorOf(int rc) { return rc > 0 ? rc : (errno ? errno : EIO); }

uint32_t RandomPsn() {
  std::random_device rd;
  return rd() & 0xFFFFFF;
}

bool IsZeroGid(const ibv_gid& gid) {
  return std::all_of(std::begin(gid.raw), std::end(gid.raw), [](uint8_t b) { return b == 0; });
}

}  // namespace

const char* RegistrationPathName(RegistrationPath path) {
  switch (path) {
    case RegistrationPath::kHost:
      return "host (ibv_reg_mr)";
    case RegistrationPath::kDmabuf:
      return "GPU dma-buf (ibv_reg_dmabuf_mr)";
    case RegistrationPath::kPeerMem:
      return "GPU peer memory (ibv_reg_mr, nvidia_peermem)";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// VerbsMemoryRegion

VerbsMemoryRegion::VerbsMemoryRegion(VerbsCalls& calls, ibv_mr* mr, RegistrationPath path,
                                     common::PointerInfo info, std::string fallback_reason)
    : calls_(calls),
      mr_(mr),
      path_(path),
      info_(info),
      fallback_reason_(std::move(fallback_reason)) {}

VerbsMemoryRegion::~VerbsMemoryRegion() { calls_.DeregMr(mr_); }

// ---------------------------------------------------------------------------
// VerbsDevice

std::string VerbsDevice::Name() const {
  return fmt::format("{} port {}", options_.device, options_.port);
}

Result<std::unique_ptr<VerbsDevice>> VerbsDevice::Open(VerbsCalls& calls, VerbsOptions options,
                                                       std::string* why) {
  // Filled step by step; an early return destroys it, which releases what
  // was created so far in reverse.
  std::unique_ptr<VerbsDevice> d(new VerbsDevice(calls, std::move(options)));
  const VerbsOptions& o = d->options_;

  int n = 0;
  ibv_device** list = calls.GetDeviceList(&n);
  if (!list || n <= 0) {
    const int err = errno;
    if (list) calls.FreeDeviceList(list);
    return Fail(why, verbs_errc::no_device,
                fmt::format("rdma.device: {} not found: no RDMA devices on this host ({}; is the "
                            "NIC's driver loaded? `ibv_devices` lists them)",
                            o.device, list ? "the device list is empty" : Errno(err)));
  }
  ibv_device* found = nullptr;
  std::vector<std::string> names;
  for (int i = 0; i < n && list[i]; ++i) {
    const char* name = calls.GetDeviceName(list[i]);
    names.emplace_back(name ? name : "?");
    if (names.back() == o.device && !found) found = list[i];
  }
  if (!found) {
    calls.FreeDeviceList(list);
    return Fail(why, verbs_errc::no_device,
                fmt::format("rdma.device: {} not found; devices found: {}",
                            o.device.empty() ? "(empty)" : o.device, fmt::join(names, ", ")));
  }
  d->context_ = calls.OpenDevice(found);
  const int open_err = errno;
  calls.FreeDeviceList(list);  // an opened context keeps its device
  if (!d->context_)
    return Fail(why, verbs_errc::device_open_failed,
                fmt::format("rdma.device: ibv_open_device({}): {}", o.device, Errno(open_err)));

  ibv_port_attr port{};
  if (int rc = calls.QueryPort(d->context_, o.port, &port); rc != 0)
    return Fail(why, verbs_errc::port_query_failed,
                fmt::format("ibv_query_port({}): {} (does the device have port {}?)", d->Name(),
                            Errno(ErrorOf(rc)), o.port));
  if (port.state != IBV_PORT_ACTIVE)
    return Fail(why, verbs_errc::port_not_active,
                fmt::format("{} is {} (state {}), not ACTIVE: check the link and the subnet "
                            "manager (`ibv_devinfo -d {}`)",
                            d->Name(), PortStateName(port.state), static_cast<int>(port.state),
                            o.device));
  if (port.link_layer == IBV_LINK_LAYER_ETHERNET) {
    d->link_layer_ = LinkLayer::kEthernet;
    ibv_gid gid{};
    if (int rc = calls.QueryGid(d->context_, o.port, o.gid_index, &gid); rc != 0)
      return Fail(why, verbs_errc::gid_query_failed,
                  fmt::format("ibv_query_gid({}, index {}): {}", d->Name(), o.gid_index,
                              Errno(ErrorOf(rc))));
    if (IsZeroGid(gid))
      return Fail(why, verbs_errc::gid_query_failed,
                  fmt::format("{}: GID index {} is empty (RoCE needs an address there; "
                              "`show_gids` lists the table, RoCE v2 is usually index 3: "
                              "rdma.device {}:{}:3)",
                              d->Name(), o.gid_index, o.device, o.port));
    std::array<uint8_t, 16> raw{};
    std::memcpy(raw.data(), gid.raw, raw.size());
    d->gid_ = raw;
  } else {
    d->link_layer_ = LinkLayer::kInfiniband;
  }
  d->lid_ = port.lid;
  d->active_mtu_ = static_cast<uint8_t>(port.active_mtu);

  d->pd_ = calls.AllocPd(d->context_);
  if (!d->pd_)
    return Fail(why, verbs_errc::resource_failed,
                fmt::format("ibv_alloc_pd({}): {}", d->Name(), Errno(errno)));
  d->channel_ = calls.CreateCompChannel(d->context_);
  if (!d->channel_)
    return Fail(why, verbs_errc::resource_failed,
                fmt::format("ibv_create_comp_channel({}): {}", d->Name(), Errno(errno)));
  d->cq_ = calls.CreateCq(d->context_, o.cq_depth, d.get(), d->channel_, 0);
  if (!d->cq_)
    return Fail(
        why, verbs_errc::resource_failed,
        fmt::format("ibv_create_cq({}, {} entries): {}", d->Name(), o.cq_depth, Errno(errno)));
  // Armed from the start: the first completion wakes the channel's fd.
  if (int rc = calls.ReqNotifyCq(d->cq_, 0); rc != 0)
    return Fail(why, verbs_errc::resource_failed,
                fmt::format("ibv_req_notify_cq({}): {}", d->Name(), Errno(ErrorOf(rc))));
  return d;
}

VerbsDevice::~VerbsDevice() {
  if (cq_) calls_.DestroyCq(cq_);
  if (channel_) calls_.DestroyCompChannel(channel_);
  if (pd_) calls_.DeallocPd(pd_);
  if (context_) calls_.CloseDevice(context_);
}

ibv_ah_attr VerbsDevice::AddressTo(const VerbsEndpoint& peer) const {
  ibv_ah_attr ah{};
  ah.port_num = options_.port;
  ah.sl = options_.service_level;
  ah.src_path_bits = 0;
  ah.static_rate = 0;
  ah.dlid = peer.link_layer == LinkLayer::kInfiniband ? peer.lid : 0;
  // RoCE routes by GID; InfiniBand only when the peer sent one (another subnet).
  if (peer.gid) {
    ah.is_global = 1;
    std::memcpy(ah.grh.dgid.raw, peer.gid->data(), peer.gid->size());
    ah.grh.sgid_index = static_cast<uint8_t>(options_.gid_index);
    ah.grh.hop_limit = options_.hop_limit;
    ah.grh.traffic_class = options_.traffic_class;
    ah.grh.flow_label = 0;
  }
  return ah;
}

Result<std::unique_ptr<VerbsMemoryRegion>> VerbsDevice::Register(void* addr, size_t length,
                                                                 const common::Cuda& cuda,
                                                                 std::string* why) {
  return Register(addr, length, cuda, kRemoteAccess, why);
}

Result<std::unique_ptr<VerbsMemoryRegion>> VerbsDevice::Register(void* addr, size_t length,
                                                                 const common::Cuda& cuda,
                                                                 int access, std::string* why) {
  std::string cuda_why;
  auto info = cuda.Classify(addr, &cuda_why);
  if (!info)
    return Fail(why, verbs_errc::reg_mr_failed,
                fmt::format("registering {} + {} bytes on {}: cannot classify the memory: {}", addr,
                            length, Name(), cuda_why));
  return Register(MemoryDescriptor{static_cast<std::byte*>(addr), length, *info}, cuda, access,
                  why);
}

Result<std::unique_ptr<VerbsMemoryRegion>> VerbsDevice::Register(const MemoryDescriptor& memory,
                                                                 const common::Cuda& cuda,
                                                                 std::string* why) {
  return Register(memory, cuda, kRemoteAccess, why);
}

Result<std::unique_ptr<VerbsMemoryRegion>> VerbsDevice::Register(const MemoryDescriptor& memory,
                                                                 const common::Cuda& cuda,
                                                                 int access, std::string* why) {
  void* const addr = memory.base;
  const size_t length = memory.size;
  const common::PointerInfo& info = memory.info;
  std::string cuda_why;
  if (!info.is_device()) {
    ibv_mr* mr = calls_.RegMr(pd_, addr, length, access);
    if (!mr)
      return Fail(why, verbs_errc::reg_mr_failed,
                  fmt::format("ibv_reg_mr({} + {} bytes) on {}: {} (is RLIMIT_MEMLOCK large "
                              "enough? `ulimit -l`)",
                              addr, length, Name(), Errno(errno)));
    return std::make_unique<VerbsMemoryRegion>(calls_, mr, RegistrationPath::kHost, info, "");
  }

  // GPU memory: dma-buf first (no kernel module beyond the GPU driver's),
  // then ibv_reg_mr on the device address, which nvidia_peermem serves.
  std::string fallback;
  if (auto dmabuf = cuda.ExportDmabuf(info, addr, length, &cuda_why); dmabuf) {
    ibv_mr* mr = calls_.RegDmabufMr(pd_, dmabuf->offset(), length,
                                    reinterpret_cast<uintptr_t>(addr), dmabuf->fd(), access);
    if (mr)
      return std::make_unique<VerbsMemoryRegion>(calls_, mr, RegistrationPath::kDmabuf, info, "");
    fallback = fmt::format("ibv_reg_dmabuf_mr: {}", Errno(errno));
  } else {
    fallback = fmt::format("dma-buf export: {}", cuda_why);
  }
  ibv_mr* mr = calls_.RegMr(pd_, addr, length, access);
  if (!mr)
    return Fail(why, verbs_errc::reg_mr_failed,
                fmt::format("GPU memory {} + {} bytes (device {}) on {}: {}; then ibv_reg_mr: {} "
                            "(load nvidia_peermem, or use a driver with dma-buf)",
                            addr, length, info.device, Name(), fallback, Errno(errno)));
  return std::make_unique<VerbsMemoryRegion>(calls_, mr, RegistrationPath::kPeerMem, info,
                                             std::move(fallback));
}

Result<std::shared_ptr<const void>> VerbsRegistrar::Register(const MemoryDescriptor& memory,
                                                             std::string* why) {
  auto mr = device_.Register(memory, cuda_, why);
  if (!mr) return mr.error();
  return std::shared_ptr<const void>(std::shared_ptr<const VerbsMemoryRegion>(std::move(*mr)));
}

// ---------------------------------------------------------------------------
// RcQueuePair

Result<std::unique_ptr<RcQueuePair>> RcQueuePair::Create(VerbsDevice& device, std::string* why) {
  const VerbsOptions& o = device.options();
  ibv_qp_init_attr init{};
  init.send_cq = device.cq();
  init.recv_cq = device.cq();
  init.cap.max_send_wr = o.max_send_wr;
  init.cap.max_recv_wr = o.max_recv_wr;
  init.cap.max_send_sge = o.max_send_sge;
  init.cap.max_recv_sge = o.max_recv_sge;
  init.cap.max_inline_data = o.max_inline_data;
  init.qp_type = IBV_QPT_RC;
  init.sq_sig_all = 0;  // each work request asks for its own completion
  ibv_qp* qp = device.calls().CreateQp(device.pd(), &init);
  if (!qp)
    return Fail(why, verbs_errc::qp_create_failed,
                fmt::format("ibv_create_qp(RC, max_send_wr {}) on {}: {}", o.max_send_wr,
                            device.Name(), Errno(errno)));
  VerbsEndpoint local;
  local.transport = VerbsTransport::kRc;
  local.link_layer = device.link_layer();
  local.port = o.port;
  local.mtu = device.active_mtu();
  local.rd_atomic = o.max_dest_rd_atomic;
  local.lid = device.lid();
  local.qpn = qp->qp_num;
  local.psn = (o.psn ? *o.psn : RandomPsn()) & 0xFFFFFF;
  local.gid = device.gid();
  return std::unique_ptr<RcQueuePair>(new RcQueuePair(device, qp, local));
}

RcQueuePair::~RcQueuePair() { Release(); }

void RcQueuePair::Release() {
  if (qp_) device_.calls().DestroyQp(std::exchange(qp_, nullptr));
  connected_ = false;
}

Status RcQueuePair::Transition(const char* step, ibv_qp_attr& attr, int mask, std::string* why) {
  if (int rc = device_.calls().ModifyQp(qp_, &attr, mask); rc != 0) {
    const int err = ErrorOf(rc);
    const uint32_t qpn = local_.qpn;
    Release();
    return Fail(why, verbs_errc::qp_modify_failed,
                fmt::format("ibv_modify_qp({}) on {} qpn {:#x}: {}", step, device_.Name(), qpn,
                            Errno(err)));
  }
  return {};
}

Status RcQueuePair::Connect(const VerbsEndpoint& peer, std::string* why) {
  if (!qp_)
    return Fail(why, verbs_errc::qp_closed,
                fmt::format("qpn {:#x} on {} was released after a failed transition", local_.qpn,
                            device_.Name()));
  if (peer.transport != VerbsTransport::kRc || peer.link_layer != local_.link_layer)
    return Fail(why, verbs_errc::peer_mismatch,
                fmt::format("peer endpoint ({}) cannot connect to {} ({})", DescribeEndpoint(peer),
                            device_.Name(), DescribeEndpoint(local_)));
  const VerbsOptions& o = device_.options();

  ibv_qp_attr init{};
  init.qp_state = IBV_QPS_INIT;
  init.pkey_index = o.pkey_index;
  init.port_num = o.port;
  init.qp_access_flags = kRemoteAccess;
  MEMKV_TRY(Transition("RESET->INIT", init, kRcInitMask, why));

  ibv_qp_attr rtr{};
  rtr.qp_state = IBV_QPS_RTR;
  rtr.path_mtu = static_cast<ibv_mtu>(std::min(local_.mtu, peer.mtu));
  rtr.dest_qp_num = peer.qpn;
  rtr.rq_psn = peer.psn;
  rtr.max_dest_rd_atomic = o.max_dest_rd_atomic;
  rtr.min_rnr_timer = o.min_rnr_timer;
  rtr.ah_attr = device_.AddressTo(peer);
  MEMKV_TRY(Transition("INIT->RTR", rtr, kRcRtrMask, why));

  ibv_qp_attr rts{};
  rts.qp_state = IBV_QPS_RTS;
  rts.timeout = o.timeout;
  rts.retry_cnt = o.retry_cnt;
  rts.rnr_retry = o.rnr_retry;
  rts.sq_psn = local_.psn;
  // No more READs in flight than the peer said it serves.
  rts.max_rd_atomic = std::min(o.max_rd_atomic, peer.rd_atomic);
  MEMKV_TRY(Transition("RTR->RTS", rts, kRcRtsMask, why));
  connected_ = true;
  return {};
}

// ---------------------------------------------------------------------------
// DC (mlx5dv)

#if MEMKV_HAVE_MLX5DV

namespace {

Status DcTransition(VerbsDevice& device, ibv_qp* qp, const char* what, ibv_qp_attr& attr, int mask,
                    std::string* why) {
  if (int rc = device.calls().ModifyQp(qp, &attr, mask); rc != 0)
    return Fail(why, verbs_errc::qp_modify_failed,
                fmt::format("ibv_modify_qp({}) on {} qpn {:#x}: {}", what, device.Name(),
                            qp->qp_num, Errno(ErrorOf(rc))));
  return {};
}

// The address vector a DCT or DCI is created with: the local port, and on
// RoCE the local GID index (the peer's address comes per work request).
ibv_ah_attr LocalPath(const VerbsDevice& device) {
  ibv_ah_attr ah{};
  ah.port_num = device.options().port;
  ah.sl = device.options().service_level;
  if (device.link_layer() == LinkLayer::kEthernet) {
    ah.is_global = 1;
    ah.grh.sgid_index = static_cast<uint8_t>(device.options().gid_index);
    ah.grh.hop_limit = device.options().hop_limit;
    ah.grh.traffic_class = device.options().traffic_class;
  }
  return ah;
}

}  // namespace

Result<std::unique_ptr<DcTarget>> DcTarget::Create(VerbsDevice& device, uint64_t access_key,
                                                   std::string* why) {
  std::unique_ptr<DcTarget> t(new DcTarget(device));
  const VerbsOptions& o = device.options();
  VerbsCalls& calls = device.calls();

  ibv_srq_init_attr srq{};
  srq.attr.max_wr = 1;
  srq.attr.max_sge = 1;
  t->srq_ = calls.CreateSrq(device.pd(), &srq);
  if (!t->srq_)
    return Fail(why, verbs_errc::qp_create_failed,
                fmt::format("ibv_create_srq (for the DCT) on {}: {}", device.Name(), Errno(errno)));

  ibv_qp_init_attr_ex attr{};
  attr.qp_type = IBV_QPT_DRIVER;
  attr.send_cq = device.cq();
  attr.recv_cq = device.cq();
  attr.srq = t->srq_;
  attr.pd = device.pd();
  attr.comp_mask = IBV_QP_INIT_ATTR_PD;
  mlx5dv_qp_init_attr dv{};
  dv.comp_mask = MLX5DV_QP_INIT_ATTR_MASK_DC;
  dv.dc_init_attr.dc_type = MLX5DV_DCTYPE_DCT;
  dv.dc_init_attr.dct_access_key = access_key;
  t->qp_ = calls.Mlx5dvCreateQp(device.context(), &attr, &dv);
  if (!t->qp_)
    return Fail(why, verbs_errc::dc_unavailable,
                fmt::format("mlx5dv_create_qp(DCT) on {}: {} (does the NIC support DC? "
                            "use RC)",
                            device.Name(), Errno(errno)));

  ibv_qp_attr init{};
  init.qp_state = IBV_QPS_INIT;
  init.pkey_index = o.pkey_index;
  init.port_num = o.port;
  init.qp_access_flags = kRemoteAccess;
  MEMKV_TRY(DcTransition(device, t->qp_, "DCT RESET->INIT", init, kDctInitMask, why));
  ibv_qp_attr rtr{};
  rtr.qp_state = IBV_QPS_RTR;
  rtr.path_mtu = static_cast<ibv_mtu>(device.active_mtu());
  rtr.min_rnr_timer = o.min_rnr_timer;
  rtr.ah_attr = LocalPath(device);
  MEMKV_TRY(DcTransition(device, t->qp_, "DCT INIT->RTR", rtr, kDctRtrMask, why));

  t->local_.transport = VerbsTransport::kDc;
  t->local_.link_layer = device.link_layer();
  t->local_.port = o.port;
  t->local_.mtu = device.active_mtu();
  t->local_.rd_atomic = o.max_dest_rd_atomic;
  t->local_.lid = device.lid();
  t->local_.qpn = t->qp_->qp_num;  // the DCT number
  t->local_.psn = 0;
  t->local_.gid = device.gid();
  t->local_.dc_key = access_key;
  return t;
}

DcTarget::~DcTarget() {
  if (qp_) device_.calls().DestroyQp(qp_);
  if (srq_) device_.calls().DestroySrq(srq_);
}

Result<std::unique_ptr<DcInitiator>> DcInitiator::Create(VerbsDevice& device, std::string* why) {
  std::unique_ptr<DcInitiator> d(new DcInitiator(device));
  const VerbsOptions& o = device.options();

  ibv_qp_init_attr_ex attr{};
  attr.qp_type = IBV_QPT_DRIVER;
  attr.send_cq = device.cq();
  attr.recv_cq = device.cq();
  attr.pd = device.pd();
  attr.cap.max_send_wr = o.max_send_wr;
  attr.cap.max_send_sge = o.max_send_sge;
  attr.cap.max_inline_data = o.max_inline_data;
  attr.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
  attr.send_ops_flags = IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_RDMA_READ;
  mlx5dv_qp_init_attr dv{};
  dv.comp_mask = MLX5DV_QP_INIT_ATTR_MASK_DC;
  dv.dc_init_attr.dc_type = MLX5DV_DCTYPE_DCI;
  d->qp_ = device.calls().Mlx5dvCreateQp(device.context(), &attr, &dv);
  if (!d->qp_)
    return Fail(why, verbs_errc::dc_unavailable,
                fmt::format("mlx5dv_create_qp(DCI) on {}: {} (does the NIC support DC? use RC)",
                            device.Name(), Errno(errno)));

  ibv_qp_attr init{};
  init.qp_state = IBV_QPS_INIT;
  init.pkey_index = o.pkey_index;
  init.port_num = o.port;
  MEMKV_TRY(DcTransition(device, d->qp_, "DCI RESET->INIT", init, kDciInitMask, why));
  ibv_qp_attr rtr{};
  rtr.qp_state = IBV_QPS_RTR;
  rtr.path_mtu = static_cast<ibv_mtu>(device.active_mtu());
  rtr.ah_attr = LocalPath(device);
  MEMKV_TRY(DcTransition(device, d->qp_, "DCI INIT->RTR", rtr, kDciRtrMask, why));
  ibv_qp_attr rts{};
  rts.qp_state = IBV_QPS_RTS;
  rts.timeout = o.timeout;
  rts.retry_cnt = o.retry_cnt;
  rts.rnr_retry = o.rnr_retry;
  rts.sq_psn = 0;
  rts.max_rd_atomic = o.max_rd_atomic;
  MEMKV_TRY(DcTransition(device, d->qp_, "DCI RTR->RTS", rts, kDciRtsMask, why));
  return d;
}

DcInitiator::~DcInitiator() {
  for (auto it = ahs_.rbegin(); it != ahs_.rend(); ++it) device_.calls().DestroyAh(*it);
  if (qp_) device_.calls().DestroyQp(qp_);
}

Result<DcInitiator::Peer> DcInitiator::AddPeer(const VerbsEndpoint& peer, std::string* why) {
  if (peer.transport != VerbsTransport::kDc || !peer.dc_key ||
      peer.link_layer != device_.link_layer())
    return Fail(why, verbs_errc::peer_mismatch,
                fmt::format("peer endpoint ({}) is not a DC target this DCI on {} can reach",
                            DescribeEndpoint(peer), device_.Name()));
  ibv_ah_attr ah_attr = device_.AddressTo(peer);
  ibv_ah* ah = device_.calls().CreateAh(device_.pd(), &ah_attr);
  if (!ah)
    return Fail(why, verbs_errc::ah_create_failed,
                fmt::format("ibv_create_ah to {} on {}: {}", DescribeEndpoint(peer), device_.Name(),
                            Errno(errno)));
  ahs_.push_back(ah);
  return Peer{ah, peer.qpn, *peer.dc_key};
}

#endif  // MEMKV_HAVE_MLX5DV

}  // namespace memkv::rdma
