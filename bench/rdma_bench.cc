// rdma_bench: WRITE throughput between two endpoints of one process over a
// pinned libfabric provider (tcp on loopback here), measured two ways with
// the same provider, block size and depth:
//   raw   a bare fi_writemsg loop (FI_DELIVERY_COMPLETE, as the rail posts
//         them) that busy-polls both completion queues: the baseline;
//   rail  memkv's rdma::Fabric: coroutines on one Asio loop, completions
//         through the CQ wait fd.
// Loopback tcp figures say what the provider and this machine's memory do,
// not what a NIC does.
//
//   rdma_bench [--provider tcp] [--block 2MiB] [--total 1GiB] [--depth 16]

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "common/size.h"
#include "rdma/fabric_api.h"

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string provider = "tcp";
  uint64_t block = 2 << 20;
  uint64_t total = 1ull << 30;
  uint32_t depth = 16;
};

[[noreturn]] void Die(const char* what, int rc) {
  std::fprintf(stderr, "rdma_bench: %s: %s\n", what, fi_strerror(rc < 0 ? -rc : rc));
  std::exit(1);
}
#define CHECK_FI(call)                  \
  do {                                  \
    const int rc_ = static_cast<int>(call); \
    if (rc_ != 0) Die(#call, rc_);      \
  } while (0)

// One bare endpoint of the baseline.
struct RawSide {
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
};

void OpenRaw(const Config& c, RawSide& s) {
  fi_info* hints = fi_allocinfo();
  hints->caps = FI_RMA | FI_MSG | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE;
  hints->mode = FI_CONTEXT | FI_CONTEXT2;
  hints->ep_attr->type = FI_EP_RDM;
  hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
  hints->domain_attr->av_type = FI_AV_TABLE;
  hints->fabric_attr->prov_name = strdup(c.provider.c_str());
  fi_info* info = nullptr;
  CHECK_FI(fi_getinfo(FI_VERSION(1, 11), "127.0.0.1", nullptr, FI_SOURCE, hints, &info));
  s.virt_addr = (info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
  CHECK_FI(fi_fabric(info->fabric_attr, &s.fabric, nullptr));
  CHECK_FI(fi_domain(s.fabric, info, &s.domain, nullptr));
  fi_cq_attr cq_attr{};
  cq_attr.format = FI_CQ_FORMAT_CONTEXT;
  cq_attr.size = info->tx_attr->size;
  CHECK_FI(fi_cq_open(s.domain, &cq_attr, &s.cq, nullptr));
  fi_av_attr av_attr{};
  av_attr.type = FI_AV_TABLE;
  CHECK_FI(fi_av_open(s.domain, &av_attr, &s.av, nullptr));
  CHECK_FI(fi_endpoint(s.domain, info, &s.ep, nullptr));
  CHECK_FI(fi_ep_bind(s.ep, &s.cq->fid, FI_TRANSMIT | FI_RECV));
  CHECK_FI(fi_ep_bind(s.ep, &s.av->fid, 0));
  CHECK_FI(fi_enable(s.ep));
  CHECK_FI(fi_getname(&s.ep->fid, s.name, &s.name_len));
  s.mem.assign(c.block * c.depth, 'x');
  CHECK_FI(fi_mr_reg(s.domain, s.mem.data(), s.mem.size(),
                     FI_WRITE | FI_READ | FI_REMOTE_WRITE | FI_REMOTE_READ, 0, 1, 0, &s.mr,
                     nullptr));
  fi_freeinfo(hints);
  fi_freeinfo(info);
}

void CloseRaw(RawSide& s) {
  fi_close(&s.mr->fid);
  fi_close(&s.ep->fid);
  fi_close(&s.av->fid);
  fi_close(&s.cq->fid);
  fi_close(&s.domain->fid);
  fi_close(&s.fabric->fid);
}

double RunRaw(const Config& c) {
  RawSide a, b;
  OpenRaw(c, a);
  OpenRaw(c, b);
  if (fi_av_insert(a.av, b.name, 1, &a.peer, 0, nullptr) != 1) Die("fi_av_insert", FI_EINVAL);
  if (fi_av_insert(b.av, a.name, 1, &b.peer, 0, nullptr) != 1) Die("fi_av_insert", FI_EINVAL);
  const uint64_t ops = c.total / c.block;
  std::vector<fi_context2> ctx(c.depth);
  std::vector<uint32_t> ready;  // slots free to post
  for (uint32_t s = 0; s < c.depth; ++s) ready.push_back(s);
  uint64_t posted = 0, done = 0;
  // Posts one WRITE from slot `slot`; false if the provider refused for now.
  auto post = [&](uint32_t slot) {
    char* local = a.mem.data() + slot * c.block;
    char* remote = b.mem.data() + slot * c.block;
    iovec iov{local, c.block};
    void* desc = fi_mr_desc(a.mr);
    fi_rma_iov rma{b.virt_addr ? reinterpret_cast<uint64_t>(remote) : slot * c.block, c.block,
                   fi_mr_key(b.mr)};
    fi_msg_rma msg{};
    msg.msg_iov = &iov;
    msg.desc = &desc;
    msg.iov_count = 1;
    msg.addr = a.peer;
    msg.rma_iov = &rma;
    msg.rma_iov_count = 1;
    msg.context = &ctx[slot];
    const ssize_t rc = fi_writemsg(a.ep, &msg, FI_COMPLETION | FI_DELIVERY_COMPLETE);
    if (rc == -FI_EAGAIN) return false;
    if (rc != 0) Die("fi_writemsg", static_cast<int>(rc));
    return true;
  };
  const auto t0 = Clock::now();
  fi_cq_entry entries[64];
  while (done < ops) {
    while (!ready.empty() && posted < ops && post(ready.back())) {
      ready.pop_back();
      ++posted;
    }
    (void)fi_cq_read(b.cq, entries, 64);  // the target progresses too
    const ssize_t n = fi_cq_read(a.cq, entries, 64);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(a.cq, &err, 0);
      Die("write completion", err.err);
    }
    for (ssize_t i = 0; i < n; ++i) {
      ++done;
      ready.push_back(
          static_cast<uint32_t>(static_cast<fi_context2*>(entries[i].op_context) - ctx.data()));
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  CloseRaw(a);
  CloseRaw(b);
  return static_cast<double>(ops * c.block) / secs;
}

double RunRail(const Config& c) {
  using namespace memkv;
  asio::io_context loop;
  rdma::FabricOptions o;
  o.ofi_provider = c.provider;
  o.node = "127.0.0.1";
  o.max_inflight_per_peer = c.depth;
  std::string why;
  auto a = rdma::Fabric::Open(o, loop.get_executor(), &why);
  auto b = rdma::Fabric::Open(o, loop.get_executor(), &why);
  if (!a || !b) {
    std::fprintf(stderr, "rdma_bench: %s\n", why.c_str());
    std::exit(1);
  }
  std::vector<std::byte> src(c.block * c.depth), dst(c.block * c.depth);
  auto src_mr = (*a)->Register(src.data(), src.size(), rdma::access::kWriteFrom);
  auto dst_mr = (*b)->Register(dst.data(), dst.size(), rdma::access::kRemoteWrite);
  auto peer = (*a)->InsertPeer((*b)->address());
  if (!src_mr || !dst_mr || !peer) {
    std::fprintf(stderr, "rdma_bench: registration or peer insertion failed\n");
    std::exit(1);
  }
  (void)(*b)->InsertPeer((*a)->address());
  const uint64_t ops = c.total / c.block;
  uint64_t next = 0;
  uint32_t running = c.depth;
  const auto t0 = Clock::now();
  Clock::time_point t1;
  for (uint32_t w = 0; w < c.depth; ++w) {
    asio::co_spawn(
        loop,
        [&, w]() -> asio::awaitable<void> {
          std::byte* s = src.data() + w * c.block;
          std::byte* d = dst.data() + w * c.block;
          const rdma::RemoteBuffer remote{(*dst_mr)->RemoteAddress(d), (*dst_mr)->key()};
          while (next < ops) {
            ++next;
            auto st = co_await (*a)->Write(**src_mr, s, c.block, *peer, remote);
            if (!st) {
              std::fprintf(stderr, "rdma_bench: write: %s\n", st.error().message().c_str());
              std::exit(1);
            }
          }
          if (--running == 0) {
            t1 = Clock::now();
            co_await (*a)->Stop();
            co_await (*b)->Stop();
          }
        },
        asio::detached);
  }
  loop.run();
  return static_cast<double>(ops * c.block) / std::chrono::duration<double>(t1 - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  std::string block = "2MiB", total = "1GiB";
  CLI::App app{"WRITE throughput over a pinned libfabric provider: raw fi_writemsg loop vs memkv's "
               "rdma::Fabric"};
  app.add_option("--provider", c.provider, "libfabric provider (pinned)");
  app.add_option("--block", block, "bytes per WRITE");
  app.add_option("--total", total, "bytes per measurement");
  app.add_option("--depth", c.depth, "WRITEs in flight");
  CLI11_PARSE(app, argc, argv);
  auto b = memkv::ParseSize(block);
  auto t = memkv::ParseSize(total);
  if (!b || !t || *b == 0 || *t < *b || c.depth == 0) {
    std::fprintf(stderr, "rdma_bench: bad --block, --total or --depth\n");
    return 2;
  }
  c.block = *b;
  c.total = *t;
  const double raw = RunRaw(c);
  const double rail = RunRail(c);
  std::printf("provider %s, block %s, depth %u, %s per run\n", c.provider.c_str(), block.c_str(),
              c.depth, total.c_str());
  std::printf("raw fi_writemsg loop   %8.2f GiB/s\n", raw / (1u << 30));
  std::printf("memkv rdma::Fabric     %8.2f GiB/s  (%.0f%% of raw)\n", rail / (1u << 30),
              100.0 * rail / raw);
  return 0;
}
