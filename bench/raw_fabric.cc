#include "raw_fabric.h"

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <chrono>
#include <cstring>
#include <string_view>
#include <vector>

#include "rdma/libfabric.h"

namespace memkv::bench {

namespace {

using Clock = std::chrono::steady_clock;
using rdma::Libfabric;

// One bare endpoint: its own fabric, domain, completion queue, address
// vector and one registered buffer of depth x block bytes.
struct Side {
  fid_fabric* fabric = nullptr;
  fid_domain* domain = nullptr;
  fid_ep* ep = nullptr;
  fid_av* av = nullptr;
  fid_cq* cq = nullptr;
  fid_mr* mr = nullptr;
  std::vector<char> mem;
  char name[256];
  size_t name_len = sizeof name;
  fi_addr_t peer = FI_ADDR_UNSPEC;
  bool virt_addr = false;

  ~Side() {
    for (fid_t f : {mr ? &mr->fid : nullptr, ep ? &ep->fid : nullptr, av ? &av->fid : nullptr,
                    cq ? &cq->fid : nullptr, domain ? &domain->fid : nullptr,
                    fabric ? &fabric->fid : nullptr})
      if (f) fi_close(f);
  }
  uint64_t RemoteAddress(size_t offset) const {
    return virt_addr ? reinterpret_cast<uint64_t>(mem.data() + offset) : offset;
  }
};

std::string Failed(const char* call, int rc) {
  return std::string(call) + " failed: " + rdma::FiStrerror(rc < 0 ? -rc : rc);
}

// The provider named, and nothing else (as the rail pins it).
bool IsPinned(const char* got, const std::string& wanted) {
  if (got == nullptr) return false;
  const std::string_view g(got);
  return g == wanted || (g.size() > wanted.size() && g.substr(0, wanted.size()) == wanted &&
                         g[wanted.size()] == ';');
}

std::string Open(const RawFabricOptions& o, Side& s, std::string& provider) {
  const auto& lib = Libfabric();
  fi_info* hints = lib.dupinfo(nullptr);
  if (!hints) return "fi_allocinfo failed";
  hints->caps = FI_RMA | FI_MSG | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE;
  hints->mode = FI_CONTEXT | FI_CONTEXT2;
  hints->ep_attr->type = FI_EP_RDM;
  hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
  hints->domain_attr->av_type = FI_AV_TABLE;
  hints->fabric_attr->prov_name = strdup(o.provider.c_str());  // fi_freeinfo frees it
  fi_info* list = nullptr;
  const int rc = lib.getinfo(FI_VERSION(1, 11), o.node.c_str(), nullptr, FI_SOURCE, hints, &list);
  lib.freeinfo(hints);
  if (rc != 0) return "provider '" + o.provider + "': " + Failed("fi_getinfo", rc);
  fi_info* info = list;
  while (info && !IsPinned(info->fabric_attr->prov_name, o.provider)) info = info->next;
  std::string err;
  auto step = [&](int r, const char* call) {
    if (r != 0 && err.empty()) err = Failed(call, r);
    return err.empty();
  };
  if (!info) {
    err = "libfabric offered no provider '" + o.provider + "'";
  } else {
    provider = info->fabric_attr->prov_name;
    s.virt_addr = (info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
    fi_cq_attr cq_attr{};
    cq_attr.format = FI_CQ_FORMAT_CONTEXT;
    cq_attr.size = info->tx_attr->size + info->rx_attr->size;
    fi_av_attr av_attr{};
    av_attr.type = FI_AV_TABLE;
    s.mem.assign(o.block * o.depth, 'x');
    step(lib.fabric(info->fabric_attr, &s.fabric, nullptr), "fi_fabric") &&
        step(fi_domain(s.fabric, info, &s.domain, nullptr), "fi_domain") &&
        step(fi_cq_open(s.domain, &cq_attr, &s.cq, nullptr), "fi_cq_open") &&
        step(fi_av_open(s.domain, &av_attr, &s.av, nullptr), "fi_av_open") &&
        step(fi_endpoint(s.domain, info, &s.ep, nullptr), "fi_endpoint") &&
        step(fi_ep_bind(s.ep, &s.cq->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind") &&
        step(fi_ep_bind(s.ep, &s.av->fid, 0), "fi_ep_bind") && step(fi_enable(s.ep), "fi_enable") &&
        step(fi_getname(&s.ep->fid, s.name, &s.name_len), "fi_getname") &&
        step(fi_mr_reg(s.domain, s.mem.data(), s.mem.size(),
                       FI_WRITE | FI_READ | FI_REMOTE_WRITE | FI_REMOTE_READ, 0, 1, 0, &s.mr,
                       nullptr),
             "fi_mr_reg");
  }
  lib.freeinfo(list);
  return err;
}

}  // namespace

RawFabricRun RunRawFabric(const RawFabricOptions& o) {
  RawFabricRun out;
  if (!Libfabric().ok()) {
    out.error = Libfabric().error;
    return out;
  }
  if (o.block == 0 || o.depth == 0 || (o.seconds <= 0 && o.total < o.block)) {
    out.error = "bad block, depth, seconds or total";
    return out;
  }
  Side a, b;  // a posts; b is the peer whose memory a writes or reads
  if (std::string e = Open(o, a, out.provider); !e.empty()) {
    out.error = e;
    return out;
  }
  if (std::string e = Open(o, b, out.provider); !e.empty()) {
    out.error = e;
    return out;
  }
  if (fi_av_insert(a.av, b.name, 1, &a.peer, 0, nullptr) != 1 ||
      fi_av_insert(b.av, a.name, 1, &b.peer, 0, nullptr) != 1) {
    out.error = "fi_av_insert failed";
    return out;
  }
  std::vector<fi_context2> ctx(o.depth);
  std::vector<uint32_t> ready;  // slots free to post
  for (uint32_t s = 0; s < o.depth; ++s) ready.push_back(s);
  const uint64_t limit = o.seconds > 0 ? UINT64_MAX : o.total / o.block;
  uint64_t posted = 0;
  void* desc = fi_mr_desc(a.mr);
  // Posts one operation from slot `slot`: 0, -FI_EAGAIN (the provider is
  // full for now) or an error.
  auto post = [&](uint32_t slot) -> ssize_t {
    const size_t at = size_t(slot) * o.block;
    iovec iov{a.mem.data() + at, o.block};
    fi_rma_iov rma{b.RemoteAddress(at), o.block, fi_mr_key(b.mr)};
    fi_msg_rma msg{};
    msg.msg_iov = &iov;
    msg.desc = &desc;
    msg.iov_count = 1;
    msg.addr = a.peer;
    msg.rma_iov = &rma;
    msg.rma_iov_count = 1;
    msg.context = &ctx[slot];
    const bool read = o.mixed ? posted % 2 == 1 : o.read;
    return read ? fi_readmsg(a.ep, &msg, FI_COMPLETION)
                : fi_writemsg(a.ep, &msg, FI_COMPLETION | FI_DELIVERY_COMPLETE);
  };
  const auto t0 = Clock::now();
  const auto end =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  bool stopping = false;
  fi_cq_entry entries[64];
  while (out.ops < posted || !stopping) {
    stopping = stopping || posted >= limit || (o.seconds > 0 && Clock::now() >= end);
    while (!stopping && !ready.empty() && posted < limit) {
      const ssize_t rc = post(ready.back());
      if (rc == -FI_EAGAIN) break;
      if (rc != 0) {
        out.error = Failed("fi_writemsg/fi_readmsg", static_cast<int>(rc));
        return out;  // the endpoints close with what is posted
      }
      ready.pop_back();
      ++posted;
    }
    (void)fi_cq_read(b.cq, entries, 64);  // the target progresses too
    const ssize_t n = fi_cq_read(a.cq, entries, 64);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(a.cq, &err, 0);
      out.error = Failed("a completion", err.err);
      return out;
    }
    for (ssize_t i = 0; i < n; ++i) {
      ++out.ops;
      ready.push_back(
          static_cast<uint32_t>(static_cast<fi_context2*>(entries[i].op_context) - ctx.data()));
    }
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out.bytes = out.ops * o.block;
  return out;
}

}  // namespace memkv::bench
