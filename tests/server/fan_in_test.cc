// Fan-in: 64 threads share one client connection per rail and push
// 7,500-entry batches of 64 B to 16 KiB values through a real server in
// memory mode; every reply must be a success and every byte checked.
// MEMKV_FAN_IN_ROUNDS sets the rounds (default 20).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <random>
#include <string>
#include <cstring>
#include <mutex>
#include <thread>

#include "../io/test_util.h"
#include "client/connection.h"
#include "client/shared_region.h"
#include "common/checksum.h"
#include "server_process.h"

namespace memkv::testing {
namespace {

constexpr int kThreads = 64;
constexpr int kEntries = 7500;

// The first failure of a whole request, for the test's message.
struct FirstError {
  std::mutex mu;
  std::string what;
  void Set(const std::string& w) {
    std::lock_guard lock(mu);
    if (what.empty()) what = w;
  }
};

int Rounds() {
  const char* env = std::getenv("MEMKV_FAN_IN_ROUNDS");
  return env ? std::max(1, std::atoi(env)) : 20;
}

// The value of (thread, entry, round): its size and bytes follow from them.
size_t SizeOf(int t, int i, int round) { return 64 + (Xxh3(&i, sizeof i, t * 131 + round) % (16384 - 64)); }
void Fill(std::byte* p, size_t n, int t, int i, int round) {
  uint64_t x = Xxh3(&i, sizeof i, (uint64_t(t) << 32) ^ round);
  for (size_t k = 0; k < n; k += 8) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::memcpy(p + k, &x, std::min<size_t>(8, n - k));
  }
}

class FanInTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        dir_.path().string(),
        std::vector<std::string>{"--mode", "memory", "--memory", "6GiB", "--threads", "2"});
    ASSERT_TRUE(server_->ready());
  }
  io::testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

// Each thread runs every round with buffers it keeps: a round touches no
// fresh memory after the first, so rounds cost the transfer, not the kernel
// zeroing pages.
TEST_F(FanInTest, SixtyFourThreadsOneTcpConnection) {
  client::ConnectionOptions o;
  o.address = "127.0.0.1:" + std::to_string(server_->port());
  o.request_timeout = std::chrono::milliseconds(120000);
  auto conn = client::Connection::Connect(o);
  ASSERT_TRUE(conn) << conn.error().message();
  std::atomic<uint64_t> ok{0}, bad{0};
  FirstError first;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto values = std::make_shared<std::vector<std::byte>>();
      std::vector<std::byte> out;
      std::vector<size_t> at(kEntries);
      for (int round = 0; round < Rounds(); ++round) {
        size_t total = 0;
        for (int i = 0; i < kEntries; ++i) {
          at[i] = total;
          total += SizeOf(t, i, round);
        }
        values->resize(total);
        for (int i = 0; i < kEntries; ++i) Fill(values->data() + at[i], SizeOf(t, i, round), t, i, round);
        client::PutBatch batch;
        batch.owner = values;
        for (int i = 0; i < kEntries; ++i)
          batch.entries.push_back({"t" + std::to_string(t) + "/" + std::to_string(i),
                                   {values->data() + at[i], SizeOf(t, i, round)}});
        auto put = conn->Put(std::move(batch));
        if (!put) {
          first.Set("round " + std::to_string(round) + " put: " + put.error().message());
          bad += kEntries;
          return;
        }
        for (auto s : *put) (s == proto::StatusCode::kOk ? ok : bad) += 1;
        out.assign(total, std::byte{0});  // a stale buffer cannot pass
        std::vector<client::GetEntry> gets;
        for (int i = 0; i < kEntries; ++i)
          gets.push_back({"t" + std::to_string(t) + "/" + std::to_string(i), 0, 0,
                          {out.data() + at[i], SizeOf(t, i, round)}});
        auto got = conn->Get(std::move(gets));
        if (!got) {
          first.Set("round " + std::to_string(round) + " get: " + got.error().message());
          bad += kEntries;
          return;
        }
        for (auto& r : *got) (r.status == proto::StatusCode::kOk ? ok : bad) += 1;
        if (std::memcmp(out.data(), values->data(), total) != 0) bad += 1;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0u) << first.what;
  EXPECT_EQ(ok.load(), uint64_t{2} * kThreads * kEntries * Rounds());
}

TEST_F(FanInTest, SixtyFourThreadsOneShmConnection) {
  client::ConnectionOptions o;
  o.address = server_->socket_path();
  o.request_timeout = std::chrono::milliseconds(120000);
  auto conn = client::Connection::Connect(o);
  ASSERT_TRUE(conn) << conn.error().message();
  std::atomic<uint64_t> ok{0}, bad{0};
  FirstError first;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread's region, registered once: a round's values, then room
      // to read them back (sparse: only the bytes a round uses are touched).
      const uint64_t most = uint64_t{kEntries} * 16384;
      auto region = client::SharedRegion::Create(2 * most);
      if (!region || !conn->RegisterRegion(*region)) {
        bad += kEntries;
        return;
      }
      std::byte* base = (*region)->data();
      std::vector<size_t> at(kEntries);
      for (int round = 0; round < Rounds(); ++round) {
        size_t total = 0;
        for (int i = 0; i < kEntries; ++i) {
          at[i] = total;
          total += SizeOf(t, i, round);
        }
        for (int i = 0; i < kEntries; ++i) Fill(base + at[i], SizeOf(t, i, round), t, i, round);
        std::memset(base + most, 0, total);  // a stale buffer cannot pass
        client::ShmPutBatch put{*region, {}};
        client::ShmGetBatch get{*region, {}};
        for (int i = 0; i < kEntries; ++i) {
          const std::string key = "s" + std::to_string(t) + "/" + std::to_string(i);
          put.entries.push_back({key, at[i], SizeOf(t, i, round)});
          get.entries.push_back({key, 0, 0, most + at[i], SizeOf(t, i, round)});
        }
        auto p = conn->PutShm(std::move(put));
        if (p) {
          for (auto s : *p) (s == proto::StatusCode::kOk ? ok : bad) += 1;
        } else {
          first.Set("round " + std::to_string(round) + " put: " + p.error().message());
          bad += kEntries;
        }
        auto g = conn->GetShm(std::move(get));
        if (g) {
          for (auto& r : *g) (r.status == proto::StatusCode::kOk ? ok : bad) += 1;
        } else {
          first.Set("round " + std::to_string(round) + " get: " + g.error().message());
          bad += kEntries;
        }
        if (std::memcmp(base, base + most, total) != 0) bad += 1;
      }
      (void)conn->ReleaseRegion(*region);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0u) << first.what;
  EXPECT_EQ(ok.load(), uint64_t{2} * kThreads * kEntries * Rounds());
}

}  // namespace
}  // namespace memkv::testing
