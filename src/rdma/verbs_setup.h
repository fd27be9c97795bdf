#pragma once
// The verbs provider's connection setup, written as a sequence of raw verbs
// calls over a VerbsCalls table (verbs_calls.h): RealVerbs() on hardware,
// RecordingVerbs (verbs_recording.h) in unit tests, which assert every call,
// its order and its attributes.
//
//   VerbsDevice::Open   ibv_get_device_list, ibv_open_device (by rdma.device
//                       name), ibv_query_port (LID, link layer, active MTU),
//                       ibv_query_gid (RoCE), ibv_alloc_pd,
//                       ibv_create_comp_channel, ibv_create_cq,
//                       ibv_req_notify_cq
//   RcQueuePair::Create ibv_create_qp (RC, capacities from VerbsOptions)
//     local()           the VerbsEndpoint sent to the peer at Attach
//   RcQueuePair::Connect(peer's endpoint)
//                       ibv_modify_qp RESET->INIT->RTR->RTS
//   VerbsDevice::Register
//                       ibv_reg_mr (host), or for GPU memory a dma-buf
//                       export + ibv_reg_dmabuf_mr, falling back to
//                       ibv_reg_mr on the GPU address (nvidia_peermem)
//   DcTarget / DcInitiator (only where mlx5dv is compiled in)
//                       the DCT (SRQ + mlx5dv_create_qp, INIT, RTR) and the
//                       DCI (mlx5dv_create_qp, INIT, RTR, RTS, one address
//                       handle per peer)
//
// Every object releases what it created in the reverse order of creation,
// also when a step of its own setup fails. Ownership: a VerbsDevice outlives
// its queue pairs and memory regions. None of these types is thread-safe:
// each is confined to the loop of the connection (or the process endpoint)
// that owns it. One exception: VerbsDevice::Register only reads the device
// (with RealVerbs, rdma-core's registration calls are thread-safe), so the
// registration cache may call it from any thread (VerbsRegistrar).
//
// None of this has run on an RDMA NIC yet (see docs/rdma.md).

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cuda.h"
#include "common/result.h"
#include "rdma/memory_descriptor.h"
#include "rdma/registration_cache.h"
#include "rdma/verbs_calls.h"
#include "rdma/verbs_endpoint.h"

namespace memkv::rdma {

// What the setup needs from config (rdma.*, limits.*); each with a default.
struct VerbsOptions {
  std::string device;  // rdma.device, e.g. "mlx5_0"
  uint8_t port = 1;    // the HCA port (1-based)
  int gid_index = 0;   // RoCE: the GID table index (RoCE v2 is usually 3)
  uint16_t pkey_index = 0;
  // Queue depths: bounded, from limits.*.
  int cq_depth = 4096;
  uint32_t max_send_wr = 1024;
  uint32_t max_recv_wr = 1;  // one-sided transfers post no receives
  uint32_t max_send_sge = 1;
  uint32_t max_recv_sge = 1;
  uint32_t max_inline_data = 0;
  uint8_t max_rd_atomic = 16;       // READs this side has in flight (RTS)
  uint8_t max_dest_rd_atomic = 16;  // READs this side serves (RTR)
  // Transport timers (IB encodings).
  uint8_t min_rnr_timer = 12;  // 0.64 ms
  uint8_t timeout = 14;        // 4.096 us * 2^14 = 67 ms per retry
  uint8_t retry_cnt = 7;
  uint8_t rnr_retry = 7;  // 7 = retry forever
  uint8_t service_level = 0;
  uint8_t traffic_class = 0;  // RoCE GRH
  uint8_t hop_limit = 64;     // RoCE GRH
  // The first PSN this side sends; random (24 bits) when unset.
  std::optional<uint32_t> psn;
};

// How a buffer was registered with the NIC.
enum class RegistrationPath {
  kHost,     // ibv_reg_mr on host memory
  kDmabuf,   // GPU memory: cuMemGetHandleForAddressRange + ibv_reg_dmabuf_mr
  kPeerMem,  // GPU memory: ibv_reg_mr on the GPU address (needs nvidia_peermem)
};
const char* RegistrationPathName(RegistrationPath path);

class VerbsDevice;

// One registered buffer; deregistered (ibv_dereg_mr) when destroyed.
class VerbsMemoryRegion {
 public:
  VerbsMemoryRegion(VerbsCalls& calls, ibv_mr* mr, RegistrationPath path, common::PointerInfo info,
                    std::string fallback_reason);
  ~VerbsMemoryRegion();
  VerbsMemoryRegion(const VerbsMemoryRegion&) = delete;
  VerbsMemoryRegion& operator=(const VerbsMemoryRegion&) = delete;

  uint32_t lkey() const { return mr_->lkey; }
  uint32_t rkey() const { return mr_->rkey; }
  ibv_mr* mr() const { return mr_; }
  RegistrationPath path() const { return path_; }
  const common::PointerInfo& memory() const { return info_; }
  // Why a GPU buffer did not take the dma-buf path (empty otherwise).
  const std::string& fallback_reason() const { return fallback_reason_; }

 private:
  VerbsCalls& calls_;
  ibv_mr* const mr_;
  const RegistrationPath path_;
  const common::PointerInfo info_;
  const std::string fallback_reason_;
};

// An opened device port with its protection domain, completion channel and
// completion queue: one per process and device, shared by its queue pairs.
class VerbsDevice {
 public:
  // Opens options.device; on failure releases what it created, in reverse,
  // and `why` names the device, port or call ("rdma.device: mlx5_9 not
  // found; devices found: mlx5_0, mlx5_1").
  static Result<std::unique_ptr<VerbsDevice>> Open(VerbsCalls& calls, VerbsOptions options,
                                                   std::string* why = nullptr);
  // Destroys the CQ, the channel, the PD and closes the device, in that order.
  ~VerbsDevice();
  VerbsDevice(const VerbsDevice&) = delete;
  VerbsDevice& operator=(const VerbsDevice&) = delete;

  // Registers [addr, addr + length) for local and remote read and write,
  // classifying the memory once through `cuda`.
  Result<std::unique_ptr<VerbsMemoryRegion>> Register(void* addr, size_t length,
                                                      const common::Cuda& cuda,
                                                      std::string* why = nullptr);
  // The same with the access flags given (IBV_ACCESS_*; kRemoteAccess above).
  Result<std::unique_ptr<VerbsMemoryRegion>> Register(void* addr, size_t length,
                                                      const common::Cuda& cuda, int access,
                                                      std::string* why = nullptr);
  // The same for memory already classified (by the registration cache):
  // `cuda` only exports the dma-buf of device memory.
  Result<std::unique_ptr<VerbsMemoryRegion>> Register(const MemoryDescriptor& memory,
                                                      const common::Cuda& cuda,
                                                      std::string* why = nullptr);
  Result<std::unique_ptr<VerbsMemoryRegion>> Register(const MemoryDescriptor& memory,
                                                      const common::Cuda& cuda, int access,
                                                      std::string* why = nullptr);

  VerbsCalls& calls() const { return calls_; }
  const VerbsOptions& options() const { return options_; }
  LinkLayer link_layer() const { return link_layer_; }
  uint16_t lid() const { return lid_; }
  uint8_t active_mtu() const { return active_mtu_; }  // enum ibv_mtu
  const std::optional<std::array<uint8_t, 16>>& gid() const { return gid_; }
  ibv_context* context() const { return context_; }
  ibv_pd* pd() const { return pd_; }
  ibv_comp_channel* channel() const { return channel_; }
  ibv_cq* cq() const { return cq_; }

  // The address vector that reaches `peer` from this port (dlid, or a GRH
  // with the peer's GID on RoCE).
  ibv_ah_attr AddressTo(const VerbsEndpoint& peer) const;
  // "mlx5_0 port 1", for messages.
  std::string Name() const;

 private:
  VerbsDevice(VerbsCalls& calls, VerbsOptions options)
      : calls_(calls), options_(std::move(options)) {}

  VerbsCalls& calls_;
  const VerbsOptions options_;
  LinkLayer link_layer_ = LinkLayer::kInfiniband;
  uint16_t lid_ = 0;
  uint8_t active_mtu_ = 0;
  std::optional<std::array<uint8_t, 16>> gid_;
  ibv_context* context_ = nullptr;
  ibv_pd* pd_ = nullptr;
  ibv_comp_channel* channel_ = nullptr;
  ibv_cq* cq_ = nullptr;
};

// A Registrar over a VerbsDevice, for the registration cache: each handle
// is a VerbsMemoryRegion (its path() says how it was registered). The
// device and `cuda` must outlive the registrar's registrations. The cache
// calls it from any thread, several at once: Register only reads the
// device, and rdma-core's ibv_reg_mr / ibv_reg_dmabuf_mr / ibv_dereg_mr
// are thread-safe (RecordingVerbs is not: its tests register from one
// thread).
class VerbsRegistrar final : public Registrar {
 public:
  explicit VerbsRegistrar(VerbsDevice& device, const common::Cuda& cuda = common::Cuda::Process())
      : device_(device), cuda_(cuda) {}
  Result<std::shared_ptr<const void>> Register(const MemoryDescriptor& memory,
                                               std::string* why) override;

 private:
  VerbsDevice& device_;
  const common::Cuda& cuda_;
};

// One RC queue pair to one peer.
class RcQueuePair {
 public:
  static Result<std::unique_ptr<RcQueuePair>> Create(VerbsDevice& device,
                                                     std::string* why = nullptr);
  ~RcQueuePair();  // ibv_destroy_qp
  RcQueuePair(const RcQueuePair&) = delete;
  RcQueuePair& operator=(const RcQueuePair&) = delete;

  // This side's endpoint: sent to the peer at Attach.
  const VerbsEndpoint& local() const { return local_; }
  // RESET -> INIT -> RTR -> RTS towards `peer`. A refused transition leaves
  // the QP unusable: it is destroyed at once and later calls fail qp_closed.
  Status Connect(const VerbsEndpoint& peer, std::string* why = nullptr);

  bool connected() const { return connected_; }
  ibv_qp* qp() const { return qp_; }

 private:
  RcQueuePair(VerbsDevice& device, ibv_qp* qp, VerbsEndpoint local)
      : device_(device), qp_(qp), local_(local) {}
  Status Transition(const char* step, ibv_qp_attr& attr, int mask, std::string* why);
  void Release();

  VerbsDevice& device_;
  ibv_qp* qp_;
  const VerbsEndpoint local_;
  bool connected_ = false;
};

// The attribute masks of the transitions, as the tests assert them.
inline constexpr int kRcInitMask =
    IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
inline constexpr int kRcRtrMask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                                  IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
inline constexpr int kRcRtsMask = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                                  IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC;
inline constexpr int kRemoteAccess =
    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;

#if MEMKV_HAVE_MLX5DV
// DC target: what peers send to. An SRQ (DCT needs one, though one-sided
// transfers consume no receives) and the DCT, brought to RTR.
class DcTarget {
 public:
  static Result<std::unique_ptr<DcTarget>> Create(VerbsDevice& device, uint64_t access_key,
                                                  std::string* why = nullptr);
  ~DcTarget();  // the DCT, then the SRQ
  const VerbsEndpoint& local() const { return local_; }
  ibv_qp* qp() const { return qp_; }

 private:
  explicit DcTarget(VerbsDevice& device) : device_(device) {}
  VerbsDevice& device_;
  ibv_srq* srq_ = nullptr;
  ibv_qp* qp_ = nullptr;
  VerbsEndpoint local_;
};

// DC initiator: one send queue that reaches any DCT through a per-peer
// address handle; brought to RTS at creation, needing no peer.
class DcInitiator {
 public:
  struct Peer {
    ibv_ah* ah = nullptr;
    uint32_t dct_number = 0;
    uint64_t access_key = 0;
  };

  static Result<std::unique_ptr<DcInitiator>> Create(VerbsDevice& device,
                                                     std::string* why = nullptr);
  ~DcInitiator();  // the address handles (newest first), then the DCI
  // The address handle and DCT of `peer` (a DC endpoint); kept until destroyed.
  Result<Peer> AddPeer(const VerbsEndpoint& peer, std::string* why = nullptr);
  ibv_qp* qp() const { return qp_; }

 private:
  explicit DcInitiator(VerbsDevice& device) : device_(device) {}
  VerbsDevice& device_;
  ibv_qp* qp_ = nullptr;
  std::vector<ibv_ah*> ahs_;
};

inline constexpr int kDctInitMask =
    IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
inline constexpr int kDctRtrMask =
    IBV_QP_STATE | IBV_QP_MIN_RNR_TIMER | IBV_QP_AV | IBV_QP_PATH_MTU;
inline constexpr int kDciInitMask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;
inline constexpr int kDciRtrMask = IBV_QP_STATE | IBV_QP_PATH_MTU | IBV_QP_AV;
inline constexpr int kDciRtsMask = kRcRtsMask;
#endif

}  // namespace memkv::rdma
