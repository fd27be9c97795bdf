#include "rdma/verbs_calls.h"

namespace memkv::rdma {
namespace {

// Each method is the libibverbs call of the same name; nothing else.
class LibibverbsCalls final : public VerbsCalls {
 public:
  ibv_device** GetDeviceList(int* n) override { return ibv_get_device_list(n); }
  void FreeDeviceList(ibv_device** list) override { ibv_free_device_list(list); }
  const char* GetDeviceName(ibv_device* d) override { return ibv_get_device_name(d); }
  ibv_context* OpenDevice(ibv_device* d) override { return ibv_open_device(d); }
  int CloseDevice(ibv_context* c) override { return ibv_close_device(c); }
  int QueryPort(ibv_context* c, uint8_t port, ibv_port_attr* attr) override {
    return ibv_query_port(c, port, attr);
  }
  int QueryGid(ibv_context* c, uint8_t port, int index, ibv_gid* gid) override {
    return ibv_query_gid(c, port, index, gid);
  }
  ibv_pd* AllocPd(ibv_context* c) override { return ibv_alloc_pd(c); }
  int DeallocPd(ibv_pd* pd) override { return ibv_dealloc_pd(pd); }
  ibv_comp_channel* CreateCompChannel(ibv_context* c) override {
    return ibv_create_comp_channel(c);
  }
  int DestroyCompChannel(ibv_comp_channel* ch) override { return ibv_destroy_comp_channel(ch); }
  ibv_cq* CreateCq(ibv_context* c, int cqe, void* cq_context, ibv_comp_channel* ch,
                   int vector) override {
    return ibv_create_cq(c, cqe, cq_context, ch, vector);
  }
  int ReqNotifyCq(ibv_cq* cq, int solicited_only) override {
    return ibv_req_notify_cq(cq, solicited_only);
  }
  int DestroyCq(ibv_cq* cq) override { return ibv_destroy_cq(cq); }
  int GetCqEvent(ibv_comp_channel* ch, ibv_cq** cq, void** cq_context) override {
    return ibv_get_cq_event(ch, cq, cq_context);
  }
  void AckCqEvents(ibv_cq* cq, unsigned int n) override { ibv_ack_cq_events(cq, n); }
  int PollCq(ibv_cq* cq, int n, ibv_wc* wc) override { return ibv_poll_cq(cq, n, wc); }
  ibv_qp* CreateQp(ibv_pd* pd, ibv_qp_init_attr* attr) override { return ibv_create_qp(pd, attr); }
  int ModifyQp(ibv_qp* qp, ibv_qp_attr* attr, int mask) override {
    return ibv_modify_qp(qp, attr, mask);
  }
  int DestroyQp(ibv_qp* qp) override { return ibv_destroy_qp(qp); }
  int PostSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) override {
    return ibv_post_send(qp, wr, bad_wr);
  }
  ibv_mr* RegMr(ibv_pd* pd, void* addr, size_t length, int access) override {
    return ibv_reg_mr(pd, addr, length, access);
  }
  ibv_mr* RegDmabufMr(ibv_pd* pd, uint64_t offset, size_t length, uint64_t iova, int fd,
                      int access) override {
    return ibv_reg_dmabuf_mr(pd, offset, length, iova, fd, access);
  }
  int DeregMr(ibv_mr* mr) override { return ibv_dereg_mr(mr); }
  ibv_srq* CreateSrq(ibv_pd* pd, ibv_srq_init_attr* attr) override {
    return ibv_create_srq(pd, attr);
  }
  int DestroySrq(ibv_srq* srq) override { return ibv_destroy_srq(srq); }
  ibv_ah* CreateAh(ibv_pd* pd, ibv_ah_attr* attr) override { return ibv_create_ah(pd, attr); }
  int DestroyAh(ibv_ah* ah) override { return ibv_destroy_ah(ah); }
#if MEMKV_HAVE_MLX5DV
  ibv_qp* Mlx5dvCreateQp(ibv_context* c, ibv_qp_init_attr_ex* attr,
                         mlx5dv_qp_init_attr* mlx5_attr) override {
    return mlx5dv_create_qp(c, attr, mlx5_attr);
  }
#endif
};

}  // namespace

VerbsCalls& RealVerbs() {
  static LibibverbsCalls calls;
  return calls;
}

}  // namespace memkv::rdma
