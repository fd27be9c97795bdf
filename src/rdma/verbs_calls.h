#pragma once
// VerbsCalls: the raw libibverbs (and mlx5dv) calls that the verbs provider's
// connection setup makes, behind one small virtual interface, so the setup
// sequence (verbs_setup.h) runs unchanged over the real library on hardware
// and over RecordingVerbs (verbs_recording.h) in unit tests.
//
// Each method has the signature and the return convention of the call it
// stands for: pointers are null on failure and ints are 0 on success, with
// errno set (ibv_modify_qp and friends return the errno value itself; the
// setup reads both). The interface holds no state; an implementation is
// shared by every device and queue pair of a process and must outlive them.
//
// MEMKV_HAVE_MLX5DV is defined (by src/rdma/CMakeLists.txt) when
// <infiniband/mlx5dv.h> and libmlx5 were found at configure time; only then
// do the DC (DCT/DCI) calls exist.

#include <infiniband/verbs.h>

#include <cstddef>
#include <cstdint>
#include <string>

#ifndef MEMKV_HAVE_MLX5DV
#define MEMKV_HAVE_MLX5DV 0
#endif
#if MEMKV_HAVE_MLX5DV
#include <infiniband/mlx5dv.h>
#endif

namespace memkv::rdma {

class VerbsCalls {
 public:
  virtual ~VerbsCalls() = default;

  // Devices.
  virtual ibv_device** GetDeviceList(int* num_devices) = 0;
  virtual void FreeDeviceList(ibv_device** list) = 0;
  virtual const char* GetDeviceName(ibv_device* device) = 0;
  virtual ibv_context* OpenDevice(ibv_device* device) = 0;
  virtual int CloseDevice(ibv_context* context) = 0;
  virtual int QueryPort(ibv_context* context, uint8_t port, ibv_port_attr* attr) = 0;
  virtual int QueryGid(ibv_context* context, uint8_t port, int index, ibv_gid* gid) = 0;

  // Protection domain, completion channel and queue.
  virtual ibv_pd* AllocPd(ibv_context* context) = 0;
  virtual int DeallocPd(ibv_pd* pd) = 0;
  virtual ibv_comp_channel* CreateCompChannel(ibv_context* context) = 0;
  virtual int DestroyCompChannel(ibv_comp_channel* channel) = 0;
  virtual ibv_cq* CreateCq(ibv_context* context, int cqe, void* cq_context,
                           ibv_comp_channel* channel, int comp_vector) = 0;
  virtual int ReqNotifyCq(ibv_cq* cq, int solicited_only) = 0;
  virtual int DestroyCq(ibv_cq* cq) = 0;
  // The completion path (verbs_fabric.cc): the channel's next event (-1 with
  // errno EAGAIN when its fd is non-blocking and none is pending), its
  // acknowledgement, and the completions themselves.
  virtual int GetCqEvent(ibv_comp_channel* channel, ibv_cq** cq, void** cq_context) = 0;
  virtual void AckCqEvents(ibv_cq* cq, unsigned int nevents) = 0;
  virtual int PollCq(ibv_cq* cq, int num_entries, ibv_wc* wc) = 0;

  // Queue pairs.
  virtual ibv_qp* CreateQp(ibv_pd* pd, ibv_qp_init_attr* attr) = 0;
  virtual int ModifyQp(ibv_qp* qp, ibv_qp_attr* attr, int attr_mask) = 0;
  virtual int DestroyQp(ibv_qp* qp) = 0;
  // Work requests (RDMA WRITE and READ; the QP must be in RTS).
  virtual int PostSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) = 0;

  // Memory regions: host (or peer-memory GPU) addresses, and dma-buf.
  virtual ibv_mr* RegMr(ibv_pd* pd, void* addr, size_t length, int access) = 0;
  virtual ibv_mr* RegDmabufMr(ibv_pd* pd, uint64_t offset, size_t length, uint64_t iova, int fd,
                              int access) = 0;
  virtual int DeregMr(ibv_mr* mr) = 0;

  // DC (mlx5 Dynamically Connected transport): the DCT's shared receive
  // queue, the address handles a DCI sends through, and the mlx5dv QP itself.
  virtual ibv_srq* CreateSrq(ibv_pd* pd, ibv_srq_init_attr* attr) = 0;
  virtual int DestroySrq(ibv_srq* srq) = 0;
  virtual ibv_ah* CreateAh(ibv_pd* pd, ibv_ah_attr* attr) = 0;
  virtual int DestroyAh(ibv_ah* ah) = 0;
#if MEMKV_HAVE_MLX5DV
  virtual ibv_qp* Mlx5dvCreateQp(ibv_context* context, ibv_qp_init_attr_ex* attr,
                                 mlx5dv_qp_init_attr* mlx5_attr) = 0;
#endif
};

// The process's binding to libibverbs (and libmlx5 where compiled in),
// loaded with dlopen at first use: each method is the library call. Without
// the library the device list is empty (errno ENOSYS) and
// RealVerbsLoadError() says why. Exercised only on hardware (label rdma-hw).
VerbsCalls& RealVerbs();
const std::string& RealVerbsLoadError();

// The names of a work completion's status and a port's state, for messages
// (libibverbs' own *_str functions, without needing the library).
const char* WcStatusName(ibv_wc_status status);
const char* PortStateName(ibv_port_state state);

// True where this build has the DC (mlx5dv) sequence.
constexpr bool kHaveMlx5dv = MEMKV_HAVE_MLX5DV != 0;

}  // namespace memkv::rdma
