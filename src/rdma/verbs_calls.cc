#include "rdma/verbs_calls.h"

#include <dlfcn.h>

#include <cerrno>
#include <string>

namespace memkv::rdma {
namespace {

// libibverbs (and libmlx5 for DC), loaded with dlopen at first use, as
// libfabric is: nothing that links the rail needs rdma-core installed, and
// a host without it finds no device, saying why. ibv_poll_cq,
// ibv_req_notify_cq and ibv_post_send are inline in <infiniband/verbs.h>
// (they call through the device context), so they need no symbol.
struct Libibverbs {
#define MEMKV_VERBS_FN(name) decltype(&::name) name = nullptr;
  MEMKV_VERBS_FN(ibv_get_device_list)
  MEMKV_VERBS_FN(ibv_free_device_list)
  MEMKV_VERBS_FN(ibv_get_device_name)
  MEMKV_VERBS_FN(ibv_open_device)
  MEMKV_VERBS_FN(ibv_close_device)
  MEMKV_VERBS_FN(ibv_query_gid)
  MEMKV_VERBS_FN(ibv_alloc_pd)
  MEMKV_VERBS_FN(ibv_dealloc_pd)
  MEMKV_VERBS_FN(ibv_create_comp_channel)
  MEMKV_VERBS_FN(ibv_destroy_comp_channel)
  MEMKV_VERBS_FN(ibv_create_cq)
  MEMKV_VERBS_FN(ibv_destroy_cq)
  MEMKV_VERBS_FN(ibv_get_cq_event)
  MEMKV_VERBS_FN(ibv_ack_cq_events)
  MEMKV_VERBS_FN(ibv_create_qp)
  MEMKV_VERBS_FN(ibv_modify_qp)
  MEMKV_VERBS_FN(ibv_destroy_qp)
  MEMKV_VERBS_FN(ibv_reg_dmabuf_mr)  // rdma-core 34 and later; may be absent
  MEMKV_VERBS_FN(ibv_dereg_mr)
  MEMKV_VERBS_FN(ibv_create_srq)
  MEMKV_VERBS_FN(ibv_destroy_srq)
  MEMKV_VERBS_FN(ibv_create_ah)
  MEMKV_VERBS_FN(ibv_destroy_ah)
#undef MEMKV_VERBS_FN
  // Macros or inlines over these exported symbols in newer headers.
  int (*query_port)(ibv_context*, uint8_t, ibv_port_attr*) = nullptr;
  ibv_mr* (*reg_mr)(ibv_pd*, void*, size_t, int) = nullptr;
#if MEMKV_HAVE_MLX5DV
  decltype(&::mlx5dv_create_qp) mlx5dv_create_qp = nullptr;
#endif
  bool loaded = false;
  std::string error;  // why it is not loaded

  Libibverbs() {
    void* lib = ::dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* e = ::dlerror();
      error = std::string("libibverbs.so.1 cannot be loaded (install rdma-core's libibverbs1): ") +
              (e ? e : "not found");
      return;
    }
    auto sym = [&](const char* name) { return ::dlsym(lib, name); };
#define MEMKV_VERBS_LOAD(name) name = reinterpret_cast<decltype(name)>(sym(#name));
    MEMKV_VERBS_LOAD(ibv_get_device_list)
    MEMKV_VERBS_LOAD(ibv_free_device_list)
    MEMKV_VERBS_LOAD(ibv_get_device_name)
    MEMKV_VERBS_LOAD(ibv_open_device)
    MEMKV_VERBS_LOAD(ibv_close_device)
    MEMKV_VERBS_LOAD(ibv_query_gid)
    MEMKV_VERBS_LOAD(ibv_alloc_pd)
    MEMKV_VERBS_LOAD(ibv_dealloc_pd)
    MEMKV_VERBS_LOAD(ibv_create_comp_channel)
    MEMKV_VERBS_LOAD(ibv_destroy_comp_channel)
    MEMKV_VERBS_LOAD(ibv_create_cq)
    MEMKV_VERBS_LOAD(ibv_destroy_cq)
    MEMKV_VERBS_LOAD(ibv_get_cq_event)
    MEMKV_VERBS_LOAD(ibv_ack_cq_events)
    MEMKV_VERBS_LOAD(ibv_create_qp)
    MEMKV_VERBS_LOAD(ibv_modify_qp)
    MEMKV_VERBS_LOAD(ibv_destroy_qp)
    MEMKV_VERBS_LOAD(ibv_reg_dmabuf_mr)
    MEMKV_VERBS_LOAD(ibv_dereg_mr)
    MEMKV_VERBS_LOAD(ibv_create_srq)
    MEMKV_VERBS_LOAD(ibv_destroy_srq)
    MEMKV_VERBS_LOAD(ibv_create_ah)
    MEMKV_VERBS_LOAD(ibv_destroy_ah)
#undef MEMKV_VERBS_LOAD
    query_port = reinterpret_cast<decltype(query_port)>(sym("ibv_query_port"));
    reg_mr = reinterpret_cast<decltype(reg_mr)>(sym("ibv_reg_mr"));
    for (void* f : {reinterpret_cast<void*>(ibv_get_device_list),
                    reinterpret_cast<void*>(ibv_open_device), reinterpret_cast<void*>(ibv_create_qp),
                    reinterpret_cast<void*>(ibv_modify_qp), reinterpret_cast<void*>(query_port),
                    reinterpret_cast<void*>(reg_mr), reinterpret_cast<void*>(ibv_dereg_mr)}) {
      if (f == nullptr) {
        error = "libibverbs.so.1 lacks a verbs entry point this memkv needs (too old?)";
        return;
      }
    }
#if MEMKV_HAVE_MLX5DV
    if (void* mlx5 = ::dlopen("libmlx5.so.1", RTLD_NOW | RTLD_LOCAL))
      mlx5dv_create_qp = reinterpret_cast<decltype(mlx5dv_create_qp)>(::dlsym(mlx5, "mlx5dv_create_qp"));
#endif
    loaded = true;
  }
};

const Libibverbs& Lib() {
  static const Libibverbs lib;  // never unloaded: verbs objects live until exit
  return lib;
}

// Each method is the libibverbs call of the same name; nothing else. Before
// the device list (the first call) finds no library, nothing else is called.
class LibibverbsCalls final : public VerbsCalls {
 public:
  ibv_device** GetDeviceList(int* n) override {
    if (!Lib().loaded) {
      if (n) *n = 0;
      errno = ENOSYS;
      return nullptr;
    }
    return Lib().ibv_get_device_list(n);
  }
  void FreeDeviceList(ibv_device** list) override { Lib().ibv_free_device_list(list); }
  const char* GetDeviceName(ibv_device* d) override { return Lib().ibv_get_device_name(d); }
  ibv_context* OpenDevice(ibv_device* d) override { return Lib().ibv_open_device(d); }
  int CloseDevice(ibv_context* c) override { return Lib().ibv_close_device(c); }
  int QueryPort(ibv_context* c, uint8_t port, ibv_port_attr* attr) override {
    return Lib().query_port(c, port, attr);
  }
  int QueryGid(ibv_context* c, uint8_t port, int index, ibv_gid* gid) override {
    return Lib().ibv_query_gid(c, port, index, gid);
  }
  ibv_pd* AllocPd(ibv_context* c) override { return Lib().ibv_alloc_pd(c); }
  int DeallocPd(ibv_pd* pd) override { return Lib().ibv_dealloc_pd(pd); }
  ibv_comp_channel* CreateCompChannel(ibv_context* c) override {
    return Lib().ibv_create_comp_channel(c);
  }
  int DestroyCompChannel(ibv_comp_channel* ch) override {
    return Lib().ibv_destroy_comp_channel(ch);
  }
  ibv_cq* CreateCq(ibv_context* c, int cqe, void* cq_context, ibv_comp_channel* ch,
                   int vector) override {
    return Lib().ibv_create_cq(c, cqe, cq_context, ch, vector);
  }
  int ReqNotifyCq(ibv_cq* cq, int solicited_only) override {
    return ibv_req_notify_cq(cq, solicited_only);
  }
  int DestroyCq(ibv_cq* cq) override { return Lib().ibv_destroy_cq(cq); }
  int GetCqEvent(ibv_comp_channel* ch, ibv_cq** cq, void** cq_context) override {
    return Lib().ibv_get_cq_event(ch, cq, cq_context);
  }
  void AckCqEvents(ibv_cq* cq, unsigned int n) override { Lib().ibv_ack_cq_events(cq, n); }
  int PollCq(ibv_cq* cq, int n, ibv_wc* wc) override { return ibv_poll_cq(cq, n, wc); }
  ibv_qp* CreateQp(ibv_pd* pd, ibv_qp_init_attr* attr) override {
    return Lib().ibv_create_qp(pd, attr);
  }
  int ModifyQp(ibv_qp* qp, ibv_qp_attr* attr, int mask) override {
    return Lib().ibv_modify_qp(qp, attr, mask);
  }
  int DestroyQp(ibv_qp* qp) override { return Lib().ibv_destroy_qp(qp); }
  int PostSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) override {
    return ibv_post_send(qp, wr, bad_wr);
  }
  ibv_mr* RegMr(ibv_pd* pd, void* addr, size_t length, int access) override {
    return Lib().reg_mr(pd, addr, length, access);
  }
  ibv_mr* RegDmabufMr(ibv_pd* pd, uint64_t offset, size_t length, uint64_t iova, int fd,
                      int access) override {
    if (Lib().ibv_reg_dmabuf_mr == nullptr) {
      errno = EOPNOTSUPP;  // an rdma-core without dma-buf: the caller falls back
      return nullptr;
    }
    return Lib().ibv_reg_dmabuf_mr(pd, offset, length, iova, fd, access);
  }
  int DeregMr(ibv_mr* mr) override { return Lib().ibv_dereg_mr(mr); }
  ibv_srq* CreateSrq(ibv_pd* pd, ibv_srq_init_attr* attr) override {
    return Lib().ibv_create_srq(pd, attr);
  }
  int DestroySrq(ibv_srq* srq) override { return Lib().ibv_destroy_srq(srq); }
  ibv_ah* CreateAh(ibv_pd* pd, ibv_ah_attr* attr) override { return Lib().ibv_create_ah(pd, attr); }
  int DestroyAh(ibv_ah* ah) override { return Lib().ibv_destroy_ah(ah); }
#if MEMKV_HAVE_MLX5DV
  ibv_qp* Mlx5dvCreateQp(ibv_context* c, ibv_qp_init_attr_ex* attr,
                         mlx5dv_qp_init_attr* mlx5_attr) override {
    if (Lib().mlx5dv_create_qp == nullptr) {
      errno = EOPNOTSUPP;  // no libmlx5: DC is not available on this host
      return nullptr;
    }
    return Lib().mlx5dv_create_qp(c, attr, mlx5_attr);
  }
#endif
};

}  // namespace

VerbsCalls& RealVerbs() {
  static LibibverbsCalls calls;
  return calls;
}

const std::string& RealVerbsLoadError() { return Lib().error; }

const char* WcStatusName(ibv_wc_status status) {
  switch (status) {
    case IBV_WC_SUCCESS: return "success";
    case IBV_WC_LOC_LEN_ERR: return "local length error";
    case IBV_WC_LOC_QP_OP_ERR: return "local QP operation error";
    case IBV_WC_LOC_EEC_OP_ERR: return "local EE context operation error";
    case IBV_WC_LOC_PROT_ERR: return "local protection error";
    case IBV_WC_WR_FLUSH_ERR: return "Work Request Flushed Error";
    case IBV_WC_MW_BIND_ERR: return "memory management operation error";
    case IBV_WC_BAD_RESP_ERR: return "bad response error";
    case IBV_WC_LOC_ACCESS_ERR: return "local access error";
    case IBV_WC_REM_INV_REQ_ERR: return "remote invalid request error";
    case IBV_WC_REM_ACCESS_ERR: return "remote access error";
    case IBV_WC_REM_OP_ERR: return "remote operation error";
    case IBV_WC_RETRY_EXC_ERR: return "transport retry counter exceeded";
    case IBV_WC_RNR_RETRY_EXC_ERR: return "RNR retry counter exceeded";
    case IBV_WC_LOC_RDD_VIOL_ERR: return "local RDD violation error";
    case IBV_WC_REM_INV_RD_REQ_ERR: return "remote invalid RD request";
    case IBV_WC_REM_ABORT_ERR: return "aborted error";
    case IBV_WC_INV_EECN_ERR: return "invalid EE context number";
    case IBV_WC_INV_EEC_STATE_ERR: return "invalid EE context state";
    case IBV_WC_FATAL_ERR: return "fatal error";
    case IBV_WC_RESP_TIMEOUT_ERR: return "response timeout error";
    case IBV_WC_GENERAL_ERR: return "general error";
    default: return "unknown work completion status";
  }
}

const char* PortStateName(ibv_port_state state) {
  switch (state) {
    case IBV_PORT_NOP: return "nop";
    case IBV_PORT_DOWN: return "down";
    case IBV_PORT_INIT: return "init";
    case IBV_PORT_ARMED: return "armed";
    case IBV_PORT_ACTIVE: return "active";
    case IBV_PORT_ACTIVE_DEFER: return "active (deferred)";
    default: return "unknown port state";
  }
}

}  // namespace memkv::rdma
