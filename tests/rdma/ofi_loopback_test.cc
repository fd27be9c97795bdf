// Two `ofi` fabrics in one process, talking over libfabric's tcp provider on
// loopback: addresses exchanged, buffers registered, 16 MiB written in
// block-size chunks and read back, errors completing their operations (never
// hanging them), removed peers, and many operations bounded in flight.
// Without the tcp provider the tests skip and say why.

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "../common/fake_cuda.h"
#include "common/cuda.h"
#include "rdma/error.h"
#include "rdma/fabric_api.h"
#include "rdma/registration_cache.h"

namespace memkv::rdma {
namespace {

namespace asio = boost::asio;

constexpr size_t kBlock = 2 << 20;  // memory.block_size's default
constexpr size_t kTotal = 16 << 20;

std::vector<std::byte> Pattern(size_t n, uint64_t seed) {
  std::vector<std::byte> v(n);
  uint64_t x = seed;
  for (auto& b : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    b = static_cast<std::byte>(x >> 56);
  }
  return v;
}

class OfiLoopback : public ::testing::Test {
 protected:
  void SetUp() override { Open(FabricOptions{}); }

  // Opens the two fabrics with `o`'s limits on tcp over loopback.
  void Open(FabricOptions o) {
    a_.reset();
    b_.reset();
    o.provider = ProviderKind::kOfi;
    o.ofi_provider = "tcp";  // pinned: libfabric's tcp (under its RDM layer, ofi_rxm)
    o.node = "127.0.0.1";
    std::string why;
    auto a = Fabric::Open(o, loop_.get_executor(), &why);
    if (!a && a.error() == errc::provider_not_found) {
      skip_ = "libfabric's tcp provider is not available here: " + why;
      return;
    }
    ASSERT_TRUE(a) << why;
    auto b = Fabric::Open(o, loop_.get_executor(), &why);
    ASSERT_TRUE(b) << why;
    a_ = std::move(*a);
    b_ = std::move(*b);
    auto pa = a_->InsertPeer(b_->address());
    ASSERT_TRUE(pa) << pa.error().message();
    b_peer_ = *pa;
    auto pb = b_->InsertPeer(a_->address());
    ASSERT_TRUE(pb) << pb.error().message();
    a_peer_ = *pb;
  }

  void TearDown() override {
    if (a_) Run([this]() -> asio::awaitable<void> { co_await a_->Stop(); });
    if (b_) Run([this]() -> asio::awaitable<void> { co_await b_->Stop(); });
    a_.reset();
    b_.reset();
  }

  // Runs coroutines on the loop until all have finished. The fabrics keep
  // the loop busy while open, so this stops it explicitly; a guard fails
  // the test rather than hang it if something never completes.
  void RunAll(std::vector<std::function<asio::awaitable<void>()>> coros) {
    size_t left = coros.size();
    std::exception_ptr failure;
    for (auto& c : coros) {
      asio::co_spawn(loop_, c(), [&](std::exception_ptr e) {
        if (e) failure = e;
        if (--left == 0) loop_.stop();
      });
    }
    asio::steady_timer guard(loop_, std::chrono::minutes(2));
    bool hung = false;
    guard.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        hung = true;
        loop_.stop();
      }
    });
    loop_.restart();
    loop_.run();
    guard.cancel();
    ASSERT_FALSE(hung) << left << " coroutines never completed";
    if (failure) std::rethrow_exception(failure);
  }
  void Run(std::function<asio::awaitable<void>()> coro) { RunAll({std::move(coro)}); }

  asio::io_context loop_;
  std::unique_ptr<Fabric> a_;  // the initiator (the server's side)
  std::unique_ptr<Fabric> b_;  // the target (the client's side)
  PeerId b_peer_ = 0;          // b, as a_ knows it
  PeerId a_peer_ = 0;          // a, as b_ knows it
  std::string skip_;
};

#define SKIP_WITHOUT_TCP()                  \
  do {                                      \
    if (!skip_.empty()) GTEST_SKIP() << skip_; \
  } while (0)

TEST_F(OfiLoopback, AddressesFitAnAttachAndNameTheProvider) {
  SKIP_WITHOUT_TCP();
  EXPECT_FALSE(a_->address().empty());
  EXPECT_LE(a_->address().size(), 255u);
  EXPECT_NE(a_->address(), b_->address());
  EXPECT_EQ(a_->provider_name().rfind("ofi:tcp", 0), 0u) << a_->provider_name();
  EXPECT_EQ(a_->InsertPeer("short").error(), errc::bad_address);
}

TEST_F(OfiLoopback, WritesSixteenMiBInBlockChunksAndReadsItBack) {
  SKIP_WITHOUT_TCP();
  auto src = Pattern(kTotal, 1);
  std::vector<std::byte> remote(kTotal);
  std::vector<std::byte> back(kTotal);
  auto src_mr = a_->Register(src.data(), src.size(), access::kWriteFrom);
  auto back_mr = a_->Register(back.data(), back.size(), access::kReadInto);
  auto remote_mr =
      b_->Register(remote.data(), remote.size(), access::kRemoteWrite | access::kRemoteRead);
  ASSERT_TRUE(src_mr && back_mr && remote_mr);
  const MemoryRegion& r = **remote_mr;

  std::vector<Status> results(kTotal / kBlock);
  std::vector<std::function<asio::awaitable<void>()>> writes;
  for (size_t i = 0; i < kTotal / kBlock; ++i) {
    writes.push_back([&, i]() -> asio::awaitable<void> {
      const size_t off = i * kBlock;
      results[i] = co_await a_->Write(**src_mr, src.data() + off, kBlock, b_peer_,
                                      {r.RemoteAddress(remote.data() + off), r.key()});
    });
  }
  RunAll(std::move(writes));
  for (const auto& s : results) ASSERT_TRUE(s) << s.error().message();
  ASSERT_EQ(std::memcmp(src.data(), remote.data(), kTotal), 0);

  std::vector<std::function<asio::awaitable<void>()>> reads;
  for (size_t i = 0; i < kTotal / kBlock; ++i) {
    reads.push_back([&, i]() -> asio::awaitable<void> {
      const size_t off = i * kBlock;
      results[i] = co_await a_->Read(**back_mr, back.data() + off, kBlock, b_peer_,
                                     {r.RemoteAddress(remote.data() + off), r.key()});
    });
  }
  RunAll(std::move(reads));
  for (const auto& s : results) ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(std::memcmp(src.data(), back.data(), kTotal), 0);

  const FabricStats st = a_->stats();
  EXPECT_EQ(st.bytes_written, kTotal);
  EXPECT_EQ(st.bytes_read, kTotal);
  EXPECT_EQ(st.errors, 0u);
  EXPECT_EQ(st.writes + st.reads, 2 * kTotal / kBlock);
}

TEST_F(OfiLoopback, LocalRangeOutsideItsRegistrationIsRefused) {
  SKIP_WITHOUT_TCP();
  auto buf = Pattern(1 << 16, 2);
  auto mr = a_->Register(buf.data(), 4096, access::kWriteFrom);
  ASSERT_TRUE(mr);
  Status s;
  Run([&]() -> asio::awaitable<void> {
    s = co_await a_->Write(**mr, buf.data() + 4000, 200, b_peer_, {0, 0});
  });
  EXPECT_EQ(s.error(), errc::not_registered);
}

TEST_F(OfiLoopback, AWrongRemoteKeyCompletesWithAnErrorAndTheFabricGoesOn) {
  SKIP_WITHOUT_TCP();
  auto src = Pattern(1 << 20, 3);
  std::vector<std::byte> remote(1 << 20);
  auto src_mr = a_->Register(src.data(), src.size(), access::kWriteFrom);
  auto remote_mr = b_->Register(remote.data(), remote.size(), access::kRemoteWrite);
  ASSERT_TRUE(src_mr && remote_mr);
  const MemoryRegion& r = **remote_mr;
  Status bad, good;
  Run([&]() -> asio::awaitable<void> {
    bad = co_await a_->Write(**src_mr, src.data(), 1 << 16, b_peer_,
                             {r.RemoteAddress(remote.data()), r.key() + 0x5a5a});
  });
  ASSERT_FALSE(bad);
  EXPECT_GE(a_->stats().errors, 1u);
  // libfabric's tcp (1.17) drops the connection over a refused key, and
  // ofi_rxm does not connect that pair of endpoints again: what follows for
  // that peer completes with a status (never hangs) and the session must
  // re-attach. Both fabrics go on with other peers.
  Status next, removed;
  Run([&]() -> asio::awaitable<void> {
    next = co_await a_->Write(**src_mr, src.data(), 1 << 16, b_peer_,
                              {r.RemoteAddress(remote.data()), r.key()});
    removed = co_await a_->RemovePeer(b_peer_);
  });
  EXPECT_TRUE(removed);
  FabricOptions o;
  o.ofi_provider = "tcp";
  o.node = "127.0.0.1";
  std::string why;
  auto c = Fabric::Open(o, loop_.get_executor(), &why);
  ASSERT_TRUE(c) << why;
  std::vector<std::byte> c_mem(1 << 16);
  auto c_mr = (*c)->Register(c_mem.data(), c_mem.size(), access::kRemoteWrite | access::kWriteFrom);
  ASSERT_TRUE(c_mr);
  auto a_to_c = a_->InsertPeer((*c)->address());
  auto c_to_b = (*c)->InsertPeer(b_->address());
  ASSERT_TRUE(a_to_c && c_to_b);
  Status to_c;
  Run([&]() -> asio::awaitable<void> {
    to_c = co_await a_->Write(**src_mr, src.data(), 1 << 16, *a_to_c,
                              {(*c_mr)->RemoteAddress(c_mem.data()), (*c_mr)->key()});
    good = co_await (*c)->Write(**c_mr, c_mem.data(), 1 << 16, *c_to_b,
                                {r.RemoteAddress(remote.data()), r.key()});
    co_await (*c)->Stop();
  });
  EXPECT_TRUE(to_c) << to_c.error().message();
  EXPECT_TRUE(good) << good.error().message();
  EXPECT_EQ(std::memcmp(src.data(), c_mem.data(), 1 << 16), 0);
  EXPECT_EQ(std::memcmp(src.data(), remote.data(), 1 << 16), 0);
  std::printf("wrong key: %s; next on that connection: %s\n", bad.error().message().c_str(),
              next ? "ok" : next.error().message().c_str());
}

TEST_F(OfiLoopback, ADeregisteredRegionCompletesWithAnError) {
  SKIP_WITHOUT_TCP();
  auto src = Pattern(1 << 20, 4);
  std::vector<std::byte> remote(1 << 20);
  auto src_mr = a_->Register(src.data(), src.size(), access::kWriteFrom);
  auto remote_mr = b_->Register(remote.data(), remote.size(), access::kRemoteWrite);
  ASSERT_TRUE(src_mr && remote_mr);
  const RemoteBuffer dst{(*remote_mr)->RemoteAddress(remote.data()), (*remote_mr)->key()};
  remote_mr->reset();  // withdrawn before the write
  Status s;
  Run([&]() -> asio::awaitable<void> {
    s = co_await a_->Write(**src_mr, src.data(), 1 << 16, b_peer_, dst);
  });
  EXPECT_FALSE(s);
  std::printf("deregistered: %s\n", s ? "ok" : s.error().message().c_str());
}

TEST_F(OfiLoopback, ARemovedPeerIsUnknown) {
  SKIP_WITHOUT_TCP();
  auto src = Pattern(1 << 16, 5);
  std::vector<std::byte> remote(1 << 16);
  auto src_mr = a_->Register(src.data(), src.size(), access::kWriteFrom);
  auto remote_mr = b_->Register(remote.data(), remote.size(), access::kRemoteWrite);
  ASSERT_TRUE(src_mr && remote_mr);
  const RemoteBuffer dst{(*remote_mr)->RemoteAddress(remote.data()), (*remote_mr)->key()};
  Status before, removed, after, again;
  Run([&]() -> asio::awaitable<void> {
    before = co_await a_->Write(**src_mr, src.data(), src.size(), b_peer_, dst);
    removed = co_await a_->RemovePeer(b_peer_);
    after = co_await a_->Write(**src_mr, src.data(), src.size(), b_peer_, dst);
    again = co_await a_->RemovePeer(b_peer_);
  });
  EXPECT_TRUE(before);
  EXPECT_TRUE(removed);
  EXPECT_EQ(after.error(), errc::unknown_peer);
  EXPECT_EQ(again.error(), errc::unknown_peer);
  EXPECT_EQ(a_->stats().peers, 0u);
  // Inserted again, it is a new peer that works.
  auto p = a_->InsertPeer(b_->address());
  ASSERT_TRUE(p);
  EXPECT_NE(*p, b_peer_);
  Run([&]() -> asio::awaitable<void> {
    after = co_await a_->Write(**src_mr, src.data(), src.size(), *p, dst);
  });
  EXPECT_TRUE(after) << after.error().message();
}

TEST_F(OfiLoopback, ManyConcurrentOperationsStayWithinTheInFlightBound) {
  SKIP_WITHOUT_TCP();
  FabricOptions o;
  o.max_inflight_per_peer = 4;
  Open(o);
  constexpr size_t kOps = 512;
  constexpr size_t kSize = 64 << 10;
  auto src = Pattern(kOps * kSize, 6);
  std::vector<std::byte> remote(kOps * kSize);
  auto src_mr = a_->Register(src.data(), src.size(), access::kWriteFrom);
  auto remote_mr = b_->Register(remote.data(), remote.size(), access::kRemoteWrite);
  ASSERT_TRUE(src_mr && remote_mr);
  const MemoryRegion& r = **remote_mr;
  std::vector<Status> results(kOps);
  std::vector<std::function<asio::awaitable<void>()>> ops;
  for (size_t i = 0; i < kOps; ++i) {
    ops.push_back([&, i]() -> asio::awaitable<void> {
      const size_t off = i * kSize;
      results[i] = co_await a_->Write(**src_mr, src.data() + off, kSize, b_peer_,
                                      {r.RemoteAddress(remote.data() + off), r.key()});
    });
  }
  RunAll(std::move(ops));
  for (const auto& s : results) ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(std::memcmp(src.data(), remote.data(), remote.size()), 0);
  EXPECT_LE(a_->stats().max_in_flight, 4u);
  EXPECT_EQ(a_->stats().writes, kOps);
}

TEST_F(OfiLoopback, WaitingBeyondTheBoundIsRefusedAtOnce) {
  SKIP_WITHOUT_TCP();
  FabricOptions o;
  o.max_inflight_per_peer = 2;
  o.max_waiting_per_peer = 4;
  Open(o);
  constexpr size_t kOps = 64;
  constexpr size_t kSize = 256 << 10;
  auto src = Pattern(kOps * kSize, 7);
  std::vector<std::byte> remote(kOps * kSize);
  auto src_mr = a_->Register(src.data(), src.size(), access::kWriteFrom);
  auto remote_mr = b_->Register(remote.data(), remote.size(), access::kRemoteWrite);
  ASSERT_TRUE(src_mr && remote_mr);
  const MemoryRegion& r = **remote_mr;
  std::vector<Status> results(kOps);
  std::vector<std::function<asio::awaitable<void>()>> ops;
  for (size_t i = 0; i < kOps; ++i) {
    ops.push_back([&, i]() -> asio::awaitable<void> {
      const size_t off = i * kSize;
      results[i] = co_await a_->Write(**src_mr, src.data() + off, kSize, b_peer_,
                                      {r.RemoteAddress(remote.data() + off), r.key()});
    });
  }
  RunAll(std::move(ops));
  size_t ok = 0, refused = 0;
  for (size_t i = 0; i < kOps; ++i) {
    if (results[i]) {
      ++ok;
      EXPECT_EQ(std::memcmp(src.data() + i * kSize, remote.data() + i * kSize, kSize), 0);
    } else {
      EXPECT_EQ(results[i].error(), errc::overloaded);
      ++refused;
    }
  }
  EXPECT_GE(ok, 6u);  // those in flight and those waiting when the rest came
  EXPECT_GE(refused, 1u);
  EXPECT_EQ(ok + refused, kOps);
}

TEST_F(OfiLoopback, StopFailsNewOperations) {
  SKIP_WITHOUT_TCP();
  auto src = Pattern(4096, 8);
  auto src_mr = a_->Register(src.data(), src.size(), access::kWriteFrom);
  ASSERT_TRUE(src_mr);
  Status s;
  Run([&]() -> asio::awaitable<void> {
    co_await a_->Stop();
    s = co_await a_->Write(**src_mr, src.data(), src.size(), b_peer_, {0, 0});
  });
  EXPECT_EQ(s.error(), errc::stopped);
}

// ---------------------------------------------------------------------------
// CUDA device memory: registered through FI_HMEM where the provider offers
// it, refused by name where it does not (libfabric 1.17's tcp;ofi_rxm here).

MemoryDescriptor DeviceDescriptor(std::byte* p, size_t n, int device) {
  MemoryDescriptor m{p, n, {}};
  m.info.kind = common::MemoryKind::kDevice;
  m.info.device = device;
  m.info.buffer_id = 7;
  m.info.base = reinterpret_cast<uintptr_t>(p);
  m.info.size = n;
  return m;
}

TEST_F(OfiLoopback, DeviceMemoryWithoutFiHmemIsRefusedNamingTheProvider) {
  SKIP_WITHOUT_TCP();
  if (a_->registers_device_memory()) GTEST_SKIP() << a_->provider_name() << " has FI_HMEM here";
  std::vector<std::byte> mem(1 << 16);
  std::string why;
  auto mr = a_->Register(DeviceDescriptor(mem.data(), mem.size(), 0), access::kAll, &why);
  ASSERT_FALSE(mr);
  EXPECT_EQ(mr.error(), errc::device_memory_unsupported);
  EXPECT_NE(why.find("provider tcp;ofi_rxm cannot register CUDA memory (no FI_HMEM)"),
            std::string::npos)
      << why;
  // Host memory registers as before, and says what it is.
  auto host = a_->Register(mem.data(), mem.size(), access::kAll);
  ASSERT_TRUE(host);
  EXPECT_EQ((*host)->kind(), common::MemoryKind::kHost);
}

// Restores the process's CUDA loader however the test ends.
struct ProcessCuda {
  explicit ProcessCuda(const common::Cuda* c) { common::Cuda::SetProcessForTesting(c); }
  ~ProcessCuda() { common::Cuda::SetProcessForTesting(nullptr); }
};

TEST_F(OfiLoopback, WithACudaDriverTheFabricAsksForFiHmemAndOpensWithoutItWhereRefused) {
  SKIP_WITHOUT_TCP();
  memkv::testing::FakeGpu gpu;
  common::Cuda cuda(gpu.Table());
  ProcessCuda installed(&cuda);
  FabricOptions o;
  o.ofi_provider = "tcp";
  o.node = "127.0.0.1";
  std::string why;
  auto c = Fabric::Open(o, loop_.get_executor(), &why);
  ASSERT_TRUE(c) << why;
  std::unique_ptr<Fabric> fabric = std::move(*c);
  const bool hmem = fabric->registers_device_memory();
  std::printf("%s with a CUDA driver: %s\n", fabric->provider_name().c_str(),
              hmem ? "FI_HMEM granted" : "no FI_HMEM: host memory only");
  if (!hmem) {
    // Through the registration cache: the stand-in driver says the range is
    // device memory; the fabric refuses it by name and nothing is cached.
    memkv::testing::AlignedBuffer mem(1 << 16);
    gpu.AddDeviceRange(mem.data, mem.size, 0);
    RegistrationCache cache(std::make_shared<FabricRegistrar>(*fabric, access::kAll), &cuda);
    auto r = cache.Register(mem.data, mem.size, &why);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::device_memory_unsupported);
    EXPECT_NE(why.find("provider tcp;ofi_rxm cannot register CUDA memory (no FI_HMEM)"),
              std::string::npos)
        << why;
    EXPECT_EQ(cache.size(), 0u);
    // Host memory through the same cache registers as before.
    std::vector<std::byte> host(1 << 16);
    auto h = cache.Register(host.data(), host.size(), &why);
    ASSERT_TRUE(h) << why;
    EXPECT_FALSE((*h)->is_device());
    EXPECT_EQ(static_cast<const MemoryRegion*>((*h)->handle.get())->kind(),
              common::MemoryKind::kHost);
  }
  Run([&]() -> asio::awaitable<void> { co_await fabric->Stop(); });
}

}  // namespace
}  // namespace memkv::rdma
