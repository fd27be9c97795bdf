#pragma once
// RecordingVerbs: a stand-in VerbsCalls for unit tests. It holds a set of
// made-up devices and ports, hands out real (zeroed) ibv_* objects with
// plausible numbers (QPNs, keys), records every call with the attributes it
// was given, and fails the calls a test names (FailCall). It notes what a
// real library would crash on (an object released twice, or one it never
// handed out: misuse()) and counts what is still live, so a test proves
// that everything was released. Objects outlive their release, so recorded
// pointers stay valid for the test to inspect.
//
// It is also a loopback wire for the data path (verbs_fabric.h): a QP in
// RTS connected (by its RTR's dest_qp_num) to another live QP of this
// stand-in executes ibv_post_send RDMA WRITE and READ at once, copying the
// bytes between regions registered here. The remote region is looked up by
// rkey in the remote QP's PD and checked for bounds and access flags
// (IBV_WC_REM_ACCESS_ERR otherwise, which moves both QPs to ERR as a real
// RC responder does); the local one by lkey (IBV_WC_LOC_PROT_ERR). The
// completion is queued on the QP's send CQ and, when that CQ was armed with
// ibv_req_notify_cq, an event is queued on its completion channel, whose
// fd is a real eventfd (non-blocking) that becomes readable. A test may
// hold completions back (HoldCompletions) to keep work requests
// outstanding; moving a QP to ERR flushes its held ones (IBV_WC_WR_FLUSH_ERR).
// Misuse a real library punishes is noted: posting more than max_send_wr,
// destroying a QP with work requests outstanding, or a CQ with events not
// acknowledged (ibv_destroy_cq would hang).
//
// Not thread-safe: a test drives it from one thread.

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "rdma/verbs_calls.h"

namespace memkv::rdma {

// One call, with whatever attributes it carries (the rest stay zero).
struct RecordedCall {
  std::string fn;                // "ibv_modify_qp", "mlx5dv_create_qp", ...
  const void* object = nullptr;  // what it acted on (the QP, PD, ...)
  const void* result = nullptr;  // what it created, if anything
  int error = 0;                 // the errno it failed with; 0 when it succeeded

  std::string device;                // ibv_open_device
  int port = 0;                      // ibv_query_port, ibv_query_gid
  int index = 0;                     // ibv_query_gid
  int cqe = 0;                       // ibv_create_cq
  const void* channel = nullptr;     // ibv_create_cq
  ibv_qp_init_attr qp_init{};        // ibv_create_qp
  ibv_qp_attr qp_attr{};             // ibv_modify_qp
  int attr_mask = 0;                 // ibv_modify_qp
  void* addr = nullptr;              // ibv_reg_mr
  size_t length = 0;                 // ibv_reg_mr, ibv_reg_dmabuf_mr
  uint64_t offset = 0;               // ibv_reg_dmabuf_mr
  uint64_t iova = 0;                 // ibv_reg_dmabuf_mr
  int fd = -1;                       // ibv_reg_dmabuf_mr
  int access = 0;                    // ibv_reg_mr, ibv_reg_dmabuf_mr
  ibv_ah_attr ah_attr{};             // ibv_create_ah
  ibv_srq_init_attr srq_init{};      // ibv_create_srq
  ibv_qp_init_attr_ex qp_init_ex{};  // mlx5dv_create_qp
  ibv_send_wr send_wr{};             // ibv_post_send (one per work request; next, sg_list cleared)
  ibv_sge sge{};                     // ibv_post_send: the work request's first scatter entry
#if MEMKV_HAVE_MLX5DV
  mlx5dv_qp_init_attr dv_init{};  // mlx5dv_create_qp
#endif
};

struct FakePort {
  ibv_port_state state = IBV_PORT_ACTIVE;
  uint8_t link_layer = IBV_LINK_LAYER_INFINIBAND;
  uint16_t lid = 0x11;
  ibv_mtu active_mtu = IBV_MTU_4096;
  std::map<int, ibv_gid> gids;  // by index; a missing index reads as zero
};

class RecordingVerbs final : public VerbsCalls {
 public:
  RecordingVerbs();
  ~RecordingVerbs() override;

  // A device named `name` with one port (port 1) described by `port`.
  void AddDevice(std::string name, FakePort port = {});
  // The `nth` next call of `fn` (1 = the next one) fails with errno `err`.
  void FailCall(std::string fn, int err, int nth = 1);

  const std::vector<RecordedCall>& calls() const { return calls_; }
  // The function names, in call order.
  std::vector<std::string> Names() const;
  // The calls of `fn`, in order.
  std::vector<const RecordedCall*> Find(const std::string& fn) const;
  // Objects created and not yet released (device lists included).
  size_t live() const { return live_.size(); }
  // Releases of objects that were not live (double free, foreign pointer).
  const std::vector<std::string>& misuse() const { return misuse_; }

  // The data path. While held, completions of posted work requests are kept
  // back (the bytes have moved); ReleaseCompletions delivers them in order.
  void HoldCompletions(bool hold) { hold_ = hold; }
  void ReleaseCompletions();
  size_t held() const { return held_.size(); }
  // The most work requests one QP had posted and not yet polled at once.
  uint32_t max_outstanding() const { return max_outstanding_; }
  // Work requests posted (accepted by ibv_post_send) so far.
  uint64_t posted() const { return posted_; }

  // VerbsCalls.
  ibv_device** GetDeviceList(int* num_devices) override;
  void FreeDeviceList(ibv_device** list) override;
  const char* GetDeviceName(ibv_device* device) override;
  ibv_context* OpenDevice(ibv_device* device) override;
  int CloseDevice(ibv_context* context) override;
  int QueryPort(ibv_context* context, uint8_t port, ibv_port_attr* attr) override;
  int QueryGid(ibv_context* context, uint8_t port, int index, ibv_gid* gid) override;
  ibv_pd* AllocPd(ibv_context* context) override;
  int DeallocPd(ibv_pd* pd) override;
  ibv_comp_channel* CreateCompChannel(ibv_context* context) override;
  int DestroyCompChannel(ibv_comp_channel* channel) override;
  ibv_cq* CreateCq(ibv_context* context, int cqe, void* cq_context, ibv_comp_channel* channel,
                   int comp_vector) override;
  int ReqNotifyCq(ibv_cq* cq, int solicited_only) override;
  int DestroyCq(ibv_cq* cq) override;
  int GetCqEvent(ibv_comp_channel* channel, ibv_cq** cq, void** cq_context) override;
  void AckCqEvents(ibv_cq* cq, unsigned int nevents) override;
  int PollCq(ibv_cq* cq, int num_entries, ibv_wc* wc) override;
  ibv_qp* CreateQp(ibv_pd* pd, ibv_qp_init_attr* attr) override;
  int ModifyQp(ibv_qp* qp, ibv_qp_attr* attr, int attr_mask) override;
  int DestroyQp(ibv_qp* qp) override;
  int PostSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) override;
  ibv_mr* RegMr(ibv_pd* pd, void* addr, size_t length, int access) override;
  ibv_mr* RegDmabufMr(ibv_pd* pd, uint64_t offset, size_t length, uint64_t iova, int fd,
                      int access) override;
  int DeregMr(ibv_mr* mr) override;
  ibv_srq* CreateSrq(ibv_pd* pd, ibv_srq_init_attr* attr) override;
  int DestroySrq(ibv_srq* srq) override;
  ibv_ah* CreateAh(ibv_pd* pd, ibv_ah_attr* attr) override;
  int DestroyAh(ibv_ah* ah) override;
#if MEMKV_HAVE_MLX5DV
  ibv_qp* Mlx5dvCreateQp(ibv_context* context, ibv_qp_init_attr_ex* attr,
                         mlx5dv_qp_init_attr* mlx5_attr) override;
#endif

 private:
  struct Device {
    std::string name;
    FakePort port;
    std::unique_ptr<ibv_device> dev;
  };

  // Appends the record of `fn` on `object`; its error is set when the test
  // asked this call to fail.
  RecordedCall& Record(const char* fn, const void* object);
  template <class T>
  T* Make();
  void Created(RecordedCall& call, const void* obj);
  int Release(RecordedCall& call, const void* obj);
  const Device* DeviceOf(ibv_context* context) const;
  // The data path.
  ibv_wc_status Execute(ibv_qp* qp, const ibv_send_wr& wr);
  ibv_qp* LiveQp(uint32_t qpn) const;
  const ibv_mr* LiveMr(const ibv_pd* pd, uint32_t key, bool remote, uint64_t addr,
                       uint64_t len) const;
  void Complete(ibv_qp* qp, const ibv_wc& wc);
  void Deliver(ibv_cq* cq, const ibv_wc& wc);
  void Flush(ibv_qp* qp);

  struct CqState {
    std::deque<ibv_wc> ready;  // not yet polled
    bool armed = false;        // ibv_req_notify_cq since the last event
    unsigned unacked = 0;      // events taken and not acknowledged
  };

  std::vector<RecordedCall> calls_;
  std::map<std::string, std::vector<std::pair<int, int>>> failures_;  // fn -> (countdown, errno)
  std::deque<Device> devices_;
  std::map<const ibv_context*, const Device*> open_;
  std::set<const void*> live_;
  std::vector<std::string> misuse_;
  std::vector<std::shared_ptr<void>> storage_;  // every object handed out, kept to the end
  std::map<const ibv_cq*, CqState> cqs_;
  std::map<const ibv_comp_channel*, std::deque<ibv_cq*>> channel_events_;
  std::map<const ibv_qp*, uint32_t> outstanding_;  // posted, completion not polled
  std::map<const ibv_qp*, uint32_t> dest_qpn_;     // from the RTR transition
  std::map<const ibv_qp*, uint32_t> max_send_wr_;  // from ibv_create_qp
  std::map<const ibv_mr*, int> mr_access_;         // from the registration
  std::deque<std::pair<ibv_qp*, ibv_wc>> held_;
  bool hold_ = false;
  uint32_t max_outstanding_ = 0;
  uint64_t posted_ = 0;
  uint32_t next_qpn_ = 0x000100;
  uint32_t next_key_ = 0x1000;
};

}  // namespace memkv::rdma
