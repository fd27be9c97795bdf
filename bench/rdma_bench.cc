// rdma_bench: WRITE throughput between two endpoints of one process over a
// pinned libfabric provider (tcp on loopback here), measured two ways with
// the same provider, block size and depth:
//   raw   a bare fi_writemsg loop (FI_DELIVERY_COMPLETE, as the rail posts
//         them) that busy-polls both completion queues: the baseline
//         (raw_fabric.h; memkv-bench --tier rail --baseline runs the same
//         loop beside the rdma rail's rows);
//   rail  memkv's rdma::Fabric: coroutines on one Asio loop, completions
//         through the CQ wait fd.
// Loopback tcp figures say what the provider and this machine's memory do,
// not what a NIC does.
//
//   rdma_bench [--provider tcp] [--block 2MiB] [--total 1GiB] [--depth 16]

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
#include "raw_fabric.h"
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

double RunRaw(const Config& c) {
  memkv::bench::RawFabricOptions o;
  o.provider = c.provider;
  o.block = c.block;
  o.depth = c.depth;
  o.seconds = 0;
  o.total = c.total;
  const memkv::bench::RawFabricRun r = memkv::bench::RunRawFabric(o);
  if (!r.error.empty()) {
    std::fprintf(stderr, "rdma_bench: raw loop: %s\n", r.error.c_str());
    std::exit(1);
  }
  return static_cast<double>(r.bytes) / r.seconds;
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
