#include "rdma/verbs_recording.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace memkv::rdma {

RecordingVerbs::RecordingVerbs() = default;
RecordingVerbs::~RecordingVerbs() {
  for (auto& [ch, events] : channel_events_)
    if (ch->fd >= 0) ::close(ch->fd);
}

void RecordingVerbs::AddDevice(std::string name, FakePort port) {
  auto dev = std::make_unique<ibv_device>();
  std::memset(dev.get(), 0, sizeof(ibv_device));
  std::strncpy(dev->name, name.c_str(), sizeof(dev->name) - 1);
  std::strncpy(dev->dev_name, name.c_str(), sizeof(dev->dev_name) - 1);
  dev->node_type = IBV_NODE_CA;
  dev->transport_type = IBV_TRANSPORT_IB;
  devices_.push_back(Device{std::move(name), std::move(port), std::move(dev)});
}

void RecordingVerbs::FailCall(std::string fn, int err, int nth) {
  failures_[std::move(fn)].emplace_back(nth, err);
}

std::vector<std::string> RecordingVerbs::Names() const {
  std::vector<std::string> names;
  names.reserve(calls_.size());
  for (const RecordedCall& c : calls_) names.push_back(c.fn);
  return names;
}

std::vector<const RecordedCall*> RecordingVerbs::Find(const std::string& fn) const {
  std::vector<const RecordedCall*> out;
  for (const RecordedCall& c : calls_)
    if (c.fn == fn) out.push_back(&c);
  return out;
}

RecordedCall& RecordingVerbs::Record(const char* fn, const void* object) {
  RecordedCall& call = calls_.emplace_back();
  call.fn = fn;
  call.object = object;
  if (auto it = failures_.find(fn); it != failures_.end()) {
    for (auto f = it->second.begin(); f != it->second.end(); ++f) {
      if (--f->first == 0) {
        call.error = f->second;
        it->second.erase(f);
        break;
      }
    }
  }
  if (call.error) errno = call.error;
  return call;
}

template <class T>
T* RecordingVerbs::Make() {
  auto obj = std::make_shared<T>();
  std::memset(static_cast<void*>(obj.get()), 0, sizeof(T));
  storage_.push_back(obj);
  return obj.get();
}

void RecordingVerbs::Created(RecordedCall& call, const void* obj) {
  call.result = obj;
  live_.insert(obj);
}

int RecordingVerbs::Release(RecordedCall& call, const void* obj) {
  if (call.error) return call.error;
  if (live_.erase(obj) == 0) misuse_.push_back(call.fn + " of an object that is not live");
  return 0;
}

const RecordingVerbs::Device* RecordingVerbs::DeviceOf(ibv_context* context) const {
  auto it = open_.find(context);
  return it == open_.end() ? nullptr : it->second;
}

ibv_device** RecordingVerbs::GetDeviceList(int* num_devices) {
  RecordedCall& call = Record("ibv_get_device_list", nullptr);
  if (call.error) {
    if (num_devices) *num_devices = 0;
    return nullptr;
  }
  // A null-terminated array, as libibverbs returns.
  auto list = std::shared_ptr<ibv_device*[]>(new ibv_device*[devices_.size() + 1]);
  size_t i = 0;
  for (Device& d : devices_) list[i++] = d.dev.get();
  list[i] = nullptr;
  storage_.push_back(std::shared_ptr<void>(list, list.get()));
  if (num_devices) *num_devices = static_cast<int>(devices_.size());
  Created(call, list.get());
  return list.get();
}

void RecordingVerbs::FreeDeviceList(ibv_device** list) {
  RecordedCall& call = Record("ibv_free_device_list", list);
  Release(call, list);
}

const char* RecordingVerbs::GetDeviceName(ibv_device* device) {
  Record("ibv_get_device_name", device);
  return device ? device->name : nullptr;
}

ibv_context* RecordingVerbs::OpenDevice(ibv_device* device) {
  RecordedCall& call = Record("ibv_open_device", device);
  for (const Device& d : devices_)
    if (d.dev.get() == device) call.device = d.name;
  if (call.error) return nullptr;
  auto* ctx = Make<ibv_context>();
  ctx->device = device;
  for (const Device& d : devices_)
    if (d.dev.get() == device) open_[ctx] = &d;
  Created(call, ctx);
  return ctx;
}

int RecordingVerbs::CloseDevice(ibv_context* context) {
  RecordedCall& call = Record("ibv_close_device", context);
  return Release(call, context);
}

int RecordingVerbs::QueryPort(ibv_context* context, uint8_t port, ibv_port_attr* attr) {
  RecordedCall& call = Record("ibv_query_port", context);
  call.port = port;
  if (call.error) return call.error;
  const Device* d = DeviceOf(context);
  if (!d || port != 1) return call.error = EINVAL;
  std::memset(attr, 0, sizeof(*attr));
  attr->state = d->port.state;
  attr->link_layer = d->port.link_layer;
  attr->lid = d->port.link_layer == IBV_LINK_LAYER_INFINIBAND ? d->port.lid : 0;
  attr->active_mtu = d->port.active_mtu;
  attr->max_mtu = IBV_MTU_4096;
  attr->gid_tbl_len = 256;
  attr->pkey_tbl_len = 128;
  return 0;
}

int RecordingVerbs::QueryGid(ibv_context* context, uint8_t port, int index, ibv_gid* gid) {
  RecordedCall& call = Record("ibv_query_gid", context);
  call.port = port;
  call.index = index;
  if (call.error) return -1;
  const Device* d = DeviceOf(context);
  if (!d || port != 1 || index < 0 || index >= 256) {
    errno = call.error = EINVAL;
    return -1;
  }
  std::memset(gid, 0, sizeof(*gid));
  if (auto it = d->port.gids.find(index); it != d->port.gids.end()) *gid = it->second;
  return 0;
}

ibv_pd* RecordingVerbs::AllocPd(ibv_context* context) {
  RecordedCall& call = Record("ibv_alloc_pd", context);
  if (call.error) return nullptr;
  auto* pd = Make<ibv_pd>();
  pd->context = context;
  pd->handle = next_key_++;
  Created(call, pd);
  return pd;
}

int RecordingVerbs::DeallocPd(ibv_pd* pd) {
  RecordedCall& call = Record("ibv_dealloc_pd", pd);
  return Release(call, pd);
}

ibv_comp_channel* RecordingVerbs::CreateCompChannel(ibv_context* context) {
  RecordedCall& call = Record("ibv_create_comp_channel", context);
  if (call.error) return nullptr;
  auto* ch = Make<ibv_comp_channel>();
  ch->context = context;
  // An eventfd: readable while events are pending, as the kernel's channel.
  ch->fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  channel_events_[ch];
  Created(call, ch);
  return ch;
}

int RecordingVerbs::DestroyCompChannel(ibv_comp_channel* channel) {
  RecordedCall& call = Record("ibv_destroy_comp_channel", channel);
  const int rc = Release(call, channel);
  if (rc == 0 && channel && channel->fd >= 0) {
    ::close(channel->fd);
    channel->fd = -1;
  }
  return rc;
}

ibv_cq* RecordingVerbs::CreateCq(ibv_context* context, int cqe, void* cq_context,
                                 ibv_comp_channel* channel, int comp_vector) {
  RecordedCall& call = Record("ibv_create_cq", context);
  call.cqe = cqe;
  call.channel = channel;
  if (call.error) return nullptr;
  auto* cq = Make<ibv_cq>();
  cq->context = context;
  cq->channel = channel;
  cq->cq_context = cq_context;
  cq->cqe = cqe;
  Created(call, cq);
  return cq;
}

int RecordingVerbs::ReqNotifyCq(ibv_cq* cq, int solicited_only) {
  RecordedCall& call = Record("ibv_req_notify_cq", cq);
  call.index = solicited_only;
  // Armed for the next completion; those already queued raise no event.
  if (!call.error) cqs_[cq].armed = true;
  return call.error;
}

int RecordingVerbs::DestroyCq(ibv_cq* cq) {
  RecordedCall& call = Record("ibv_destroy_cq", cq);
  if (auto it = cqs_.find(cq); it != cqs_.end() && it->second.unacked > 0 && !call.error)
    misuse_.push_back("ibv_destroy_cq with " + std::to_string(it->second.unacked) +
                      " events not acknowledged (it would hang)");
  return Release(call, cq);
}

int RecordingVerbs::GetCqEvent(ibv_comp_channel* channel, ibv_cq** cq, void** cq_context) {
  RecordedCall& call = Record("ibv_get_cq_event", channel);
  if (call.error) return -1;
  auto& events = channel_events_[channel];
  if (events.empty()) {
    errno = EAGAIN;  // the fd is non-blocking
    return -1;
  }
  ibv_cq* c = events.front();
  events.pop_front();
  if (events.empty()) {
    uint64_t n = 0;
    [[maybe_unused]] ssize_t r = ::read(channel->fd, &n, sizeof n);
  }
  ++cqs_[c].unacked;
  *cq = c;
  *cq_context = c->cq_context;
  call.result = c;
  return 0;
}

void RecordingVerbs::AckCqEvents(ibv_cq* cq, unsigned int nevents) {
  RecordedCall& call = Record("ibv_ack_cq_events", cq);
  call.index = static_cast<int>(nevents);
  CqState& st = cqs_[cq];
  if (nevents > st.unacked) {
    misuse_.push_back("ibv_ack_cq_events of more events than were taken");
    st.unacked = 0;
  } else {
    st.unacked -= nevents;
  }
}

int RecordingVerbs::PollCq(ibv_cq* cq, int num_entries, ibv_wc* wc) {
  RecordedCall& call = Record("ibv_poll_cq", cq);
  if (call.error) return -call.error;
  CqState& st = cqs_[cq];
  int n = 0;
  while (n < num_entries && !st.ready.empty()) {
    wc[n] = st.ready.front();
    st.ready.pop_front();
    if (ibv_qp* qp = LiveQp(wc[n].qp_num); qp && outstanding_[qp] > 0) --outstanding_[qp];
    ++n;
  }
  call.index = n;
  return n;
}

ibv_qp* RecordingVerbs::CreateQp(ibv_pd* pd, ibv_qp_init_attr* attr) {
  RecordedCall& call = Record("ibv_create_qp", pd);
  call.qp_init = *attr;
  if (call.error) return nullptr;
  auto* qp = Make<ibv_qp>();
  qp->context = pd->context;
  qp->pd = pd;
  qp->send_cq = attr->send_cq;
  qp->recv_cq = attr->recv_cq;
  qp->qp_num = next_qpn_++;
  qp->qp_type = attr->qp_type;
  qp->state = IBV_QPS_RESET;
  max_send_wr_[qp] = attr->cap.max_send_wr;
  outstanding_[qp] = 0;
  Created(call, qp);
  return qp;
}

int RecordingVerbs::ModifyQp(ibv_qp* qp, ibv_qp_attr* attr, int attr_mask) {
  RecordedCall& call = Record("ibv_modify_qp", qp);
  call.qp_attr = *attr;
  call.attr_mask = attr_mask;
  if (call.error) return call.error;
  if (!live_.count(qp)) {
    misuse_.push_back("ibv_modify_qp of a QP that is not live");
    return call.error = EINVAL;
  }
  if (attr_mask & IBV_QP_DEST_QPN) dest_qpn_[qp] = attr->dest_qp_num;
  if (attr_mask & IBV_QP_STATE) {
    qp->state = attr->qp_state;
    if (qp->state == IBV_QPS_ERR) Flush(qp);
  }
  return 0;
}

int RecordingVerbs::DestroyQp(ibv_qp* qp) {
  RecordedCall& call = Record("ibv_destroy_qp", qp);
  if (!call.error) {
    if (uint32_t n = outstanding_[qp]; n > 0)
      misuse_.push_back("ibv_destroy_qp with " + std::to_string(n) +
                        " work requests outstanding");
    outstanding_.erase(qp);
    // Held completions of a destroyed QP never arrive.
    std::erase_if(held_, [qp](const auto& h) { return h.first == qp; });
  }
  return Release(call, qp);
}

// ---- the data path ----

ibv_qp* RecordingVerbs::LiveQp(uint32_t qpn) const {
  for (const auto& [qp, n] : outstanding_)  // live QPs only (erased when destroyed)
    if (qp->qp_num == qpn) return const_cast<ibv_qp*>(qp);
  return nullptr;
}

const ibv_mr* RecordingVerbs::LiveMr(const ibv_pd* pd, uint32_t key, bool remote, uint64_t addr,
                                     uint64_t len) const {
  for (const auto& [mr, access] : mr_access_) {
    if (!live_.count(mr) || mr->pd != pd || (remote ? mr->rkey : mr->lkey) != key) continue;
    const auto base = reinterpret_cast<uint64_t>(mr->addr);
    if (addr < base || len > mr->length || addr - base > mr->length - len) return nullptr;
    return mr;
  }
  return nullptr;
}

ibv_wc_status RecordingVerbs::Execute(ibv_qp* qp, const ibv_send_wr& wr) {
  if (qp->state == IBV_QPS_ERR) return IBV_WC_WR_FLUSH_ERR;
  const bool write = wr.opcode == IBV_WR_RDMA_WRITE;
  uint64_t len = 0;
  for (int i = 0; i < wr.num_sge; ++i) len += wr.sg_list[i].length;
  // Local scatter entries: registered in this QP's PD; READs write into them.
  for (int i = 0; i < wr.num_sge; ++i) {
    const ibv_sge& sge = wr.sg_list[i];
    const ibv_mr* mr = LiveMr(qp->pd, sge.lkey, false, sge.addr, sge.length);
    if (!mr || (!write && !(mr_access_.at(mr) & IBV_ACCESS_LOCAL_WRITE)))
      return IBV_WC_LOC_PROT_ERR;
  }
  auto dest = dest_qpn_.find(qp);
  ibv_qp* peer = dest == dest_qpn_.end() ? nullptr : LiveQp(dest->second);
  if (!peer || (peer->state != IBV_QPS_RTR && peer->state != IBV_QPS_RTS) ||
      dest_qpn_[peer] != qp->qp_num)
    return IBV_WC_RETRY_EXC_ERR;  // nobody answers at that QPN
  const ibv_mr* rmr = LiveMr(peer->pd, wr.wr.rdma.rkey, true, wr.wr.rdma.remote_addr, len);
  const int need = write ? IBV_ACCESS_REMOTE_WRITE : IBV_ACCESS_REMOTE_READ;
  if (!rmr || !(mr_access_.at(rmr) & need)) {
    peer->state = IBV_QPS_ERR;  // the responder's QP fails too
    Flush(peer);
    return IBV_WC_REM_ACCESS_ERR;
  }
  auto* remote = reinterpret_cast<std::byte*>(wr.wr.rdma.remote_addr);
  for (int i = 0; i < wr.num_sge; ++i) {
    auto* local = reinterpret_cast<std::byte*>(wr.sg_list[i].addr);
    if (write) std::memmove(remote, local, wr.sg_list[i].length);
    else std::memmove(local, remote, wr.sg_list[i].length);
    remote += wr.sg_list[i].length;
  }
  return IBV_WC_SUCCESS;
}

int RecordingVerbs::PostSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) {
  for (; wr != nullptr; wr = wr->next) {
    RecordedCall& call = Record("ibv_post_send", qp);
    call.send_wr = *wr;
    call.send_wr.next = nullptr;
    call.send_wr.sg_list = nullptr;
    if (wr->num_sge > 0) call.sge = wr->sg_list[0];
    int err = call.error;
    if (!err && !live_.count(qp)) {
      misuse_.push_back("ibv_post_send on a QP that is not live");
      err = EINVAL;
    }
    if (!err && qp->state != IBV_QPS_RTS && qp->state != IBV_QPS_ERR) err = EINVAL;
    if (!err && wr->opcode != IBV_WR_RDMA_WRITE && wr->opcode != IBV_WR_RDMA_READ) err = EINVAL;
    if (!err && outstanding_[qp] >= max_send_wr_[qp]) {
      misuse_.push_back("ibv_post_send beyond the QP's max_send_wr");
      err = ENOMEM;
    }
    if (err) {
      call.error = err;
      if (bad_wr) *bad_wr = wr;
      return err;
    }
    ++posted_;
    const ibv_wc_status status = Execute(qp, *wr);
    if (status != IBV_WC_SUCCESS && status != IBV_WC_WR_FLUSH_ERR) qp->state = IBV_QPS_ERR;
    if (!(wr->send_flags & IBV_SEND_SIGNALED) && status == IBV_WC_SUCCESS) continue;
    const uint32_t n = ++outstanding_[qp];
    max_outstanding_ = std::max(max_outstanding_, n);
    ibv_wc wc{};
    wc.wr_id = wr->wr_id;
    wc.status = status;
    wc.opcode = wr->opcode == IBV_WR_RDMA_WRITE ? IBV_WC_RDMA_WRITE : IBV_WC_RDMA_READ;
    wc.qp_num = qp->qp_num;
    for (int i = 0; i < wr->num_sge; ++i) wc.byte_len += wr->sg_list[i].length;
    Complete(qp, wc);
  }
  return 0;
}

void RecordingVerbs::Complete(ibv_qp* qp, const ibv_wc& wc) {
  if (hold_ && wc.status == IBV_WC_SUCCESS) {
    held_.emplace_back(qp, wc);
    return;
  }
  Deliver(qp->send_cq, wc);
}

void RecordingVerbs::Deliver(ibv_cq* cq, const ibv_wc& wc) {
  CqState& st = cqs_[cq];
  st.ready.push_back(wc);
  if (!st.armed) return;
  st.armed = false;
  if (cq->channel) {
    channel_events_[cq->channel].push_back(cq);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(cq->channel->fd, &one, sizeof one);
  }
}

void RecordingVerbs::ReleaseCompletions() {
  auto held = std::move(held_);
  held_.clear();
  for (auto& [qp, wc] : held) Deliver(qp->send_cq, wc);
}

void RecordingVerbs::Flush(ibv_qp* qp) {
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->first == qp) {
      ibv_wc wc = it->second;
      wc.status = IBV_WC_WR_FLUSH_ERR;
      it = held_.erase(it);
      Deliver(qp->send_cq, wc);
    } else {
      ++it;
    }
  }
}

ibv_mr* RecordingVerbs::RegMr(ibv_pd* pd, void* addr, size_t length, int access) {
  RecordedCall& call = Record("ibv_reg_mr", pd);
  call.addr = addr;
  call.length = length;
  call.access = access;
  if (call.error) return nullptr;
  auto* mr = Make<ibv_mr>();
  mr->context = pd->context;
  mr->pd = pd;
  mr->addr = addr;
  mr->length = length;
  mr->lkey = next_key_++;
  mr->rkey = next_key_++;
  mr_access_[mr] = access;
  Created(call, mr);
  return mr;
}

ibv_mr* RecordingVerbs::RegDmabufMr(ibv_pd* pd, uint64_t offset, size_t length, uint64_t iova,
                                    int fd, int access) {
  RecordedCall& call = Record("ibv_reg_dmabuf_mr", pd);
  call.offset = offset;
  call.length = length;
  call.iova = iova;
  call.fd = fd;
  call.access = access;
  if (call.error) return nullptr;
  auto* mr = Make<ibv_mr>();
  mr->context = pd->context;
  mr->pd = pd;
  mr->addr = reinterpret_cast<void*>(static_cast<uintptr_t>(iova));
  mr->length = length;
  mr->lkey = next_key_++;
  mr->rkey = next_key_++;
  mr_access_[mr] = access;
  Created(call, mr);
  return mr;
}

int RecordingVerbs::DeregMr(ibv_mr* mr) {
  RecordedCall& call = Record("ibv_dereg_mr", mr);
  return Release(call, mr);
}

ibv_srq* RecordingVerbs::CreateSrq(ibv_pd* pd, ibv_srq_init_attr* attr) {
  RecordedCall& call = Record("ibv_create_srq", pd);
  call.srq_init = *attr;
  if (call.error) return nullptr;
  auto* srq = Make<ibv_srq>();
  srq->context = pd->context;
  srq->pd = pd;
  Created(call, srq);
  return srq;
}

int RecordingVerbs::DestroySrq(ibv_srq* srq) {
  RecordedCall& call = Record("ibv_destroy_srq", srq);
  return Release(call, srq);
}

ibv_ah* RecordingVerbs::CreateAh(ibv_pd* pd, ibv_ah_attr* attr) {
  RecordedCall& call = Record("ibv_create_ah", pd);
  call.ah_attr = *attr;
  if (call.error) return nullptr;
  auto* ah = Make<ibv_ah>();
  ah->context = pd->context;
  ah->pd = pd;
  Created(call, ah);
  return ah;
}

int RecordingVerbs::DestroyAh(ibv_ah* ah) {
  RecordedCall& call = Record("ibv_destroy_ah", ah);
  return Release(call, ah);
}

#if MEMKV_HAVE_MLX5DV
ibv_qp* RecordingVerbs::Mlx5dvCreateQp(ibv_context* context, ibv_qp_init_attr_ex* attr,
                                       mlx5dv_qp_init_attr* mlx5_attr) {
  RecordedCall& call = Record("mlx5dv_create_qp", context);
  call.qp_init_ex = *attr;
  call.dv_init = *mlx5_attr;
  if (call.error) return nullptr;
  auto* qp = Make<ibv_qp>();
  qp->context = context;
  qp->pd = attr->pd;
  qp->send_cq = attr->send_cq;
  qp->recv_cq = attr->recv_cq;
  qp->srq = attr->srq;
  qp->qp_num = next_qpn_++;
  qp->qp_type = attr->qp_type;
  qp->state = IBV_QPS_RESET;
  Created(call, qp);
  return qp;
}
#endif

}  // namespace memkv::rdma
