#include "io/ring.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/error.h"
#include "test_util.h"

namespace memkv::io {
namespace {

using testing::AlignedBuf;
using testing::Fd;
using testing::RunSync;
using testing::Spawn;
using testing::TempDir;
namespace asio = boost::asio;

using Backend = RingOptions::Backend;

class RingTestBase : public ::testing::Test {
 protected:
  virtual Backend backend() const { return Backend::kAuto; }
  void SetUp() override { MakeRing({}); }
  void MakeRing(RingOptions options) {
    options.backend = backend();
    ring_.reset();
    auto ring = Ring::Create(ctx_, options);
    ASSERT_TRUE(ring) << ring.error().message();
    ring_ = std::move(*ring);
  }
  Fd OpenFile(const std::string& name, int flags = O_RDWR | O_CREAT) {
    Fd fd(::open(dir_.File(name).c_str(), flags | O_CLOEXEC, 0644));
    EXPECT_GE(fd.get(), 0) << std::strerror(errno);
    return fd;
  }

  asio::io_context ctx_;
  TempDir dir_;
  std::unique_ptr<Ring> ring_;
};

// What both backends do: io_uring, and the system calls on helper threads
// that stand in where io_uring cannot be set up.
class RingTest : public RingTestBase, public ::testing::WithParamInterface<Backend> {
 protected:
  Backend backend() const override { return GetParam(); }
};
INSTANTIATE_TEST_SUITE_P(Backends, RingTest, ::testing::Values(Backend::kUring, Backend::kThreads),
                         [](const auto& info) {
                           return std::string(info.param == Backend::kUring ? "IoUring" : "Threads");
                         });

// io_uring's own: batched submission, cancellation in the kernel.
class UringTest : public RingTestBase {
 protected:
  Backend backend() const override { return Backend::kUring; }
};

// The threads backend's own.
class ThreadsRingTest : public RingTestBase {
 protected:
  Backend backend() const override { return Backend::kThreads; }
};

TEST_P(RingTest, WriteFsyncReadRoundTrip) {
  Fd fd = OpenFile("data");
  AlignedBuf out(8192), in(8192);
  out.Fill(7);
  auto wrote = RunSync(ctx_, ring_->Write(fd.get(), out.data(), out.size(), 4096));
  ASSERT_TRUE(wrote) << wrote.error().message();
  EXPECT_EQ(*wrote, 8192u);
  EXPECT_TRUE(RunSync(ctx_, ring_->Fsync(fd.get(), SyncKind::kAll)));
  EXPECT_TRUE(RunSync(ctx_, ring_->Fsync(fd.get(), SyncKind::kData)));
  auto read = RunSync(ctx_, ring_->Read(fd.get(), in.data(), in.size(), 4096));
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(*read, 8192u);
  EXPECT_EQ(std::memcmp(out.data(), in.data(), out.size()), 0);
}

TEST_P(RingTest, DirectIoRoundTrip) {
  Fd fd = OpenFile("direct", O_RDWR | O_CREAT | O_DIRECT);
  AlignedBuf out(64 * 1024), in(64 * 1024);
  out.Fill(3);
  auto wrote = RunSync(ctx_, ring_->Write(fd.get(), out.data(), out.size(), 1 << 20));
  ASSERT_TRUE(wrote) << wrote.error().message();
  EXPECT_EQ(*wrote, out.size());
  auto read = RunSync(ctx_, ring_->Read(fd.get(), in.data(), in.size(), 1 << 20));
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(*read, in.size());
  EXPECT_EQ(std::memcmp(out.data(), in.data(), out.size()), 0);
}

TEST_P(RingTest, ShortReadAtEndOfFileIsReportedAsTheCount) {
  Fd fd = OpenFile("short");
  AlignedBuf buf(8192);
  buf.Fill(1);
  ASSERT_EQ(RunSync(ctx_, ring_->Write(fd.get(), buf.data(), 4096, 0)).value(), 4096u);
  EXPECT_EQ(RunSync(ctx_, ring_->Read(fd.get(), buf.data(), 8192, 0)).value(), 4096u);
  EXPECT_EQ(RunSync(ctx_, ring_->Read(fd.get(), buf.data(), 8192, 4096)).value(), 0u);
}

TEST_P(RingTest, KernelErrorsKeepTheirErrno) {
  Fd ro = OpenFile("ro", O_RDONLY | O_CREAT);
  AlignedBuf buf(4096);
  auto w = RunSync(ctx_, ring_->Write(ro.get(), buf.data(), 4096, 0));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), boost::system::error_code(EBADF, boost::system::system_category()));

  auto bad_fd = RunSync(ctx_, ring_->Fsync(-1));
  ASSERT_FALSE(bad_fd);
  EXPECT_EQ(bad_fd.error(), boost::system::error_code(EBADF, boost::system::system_category()));
}

TEST_P(RingTest, FallocateAllocatesPunchesHolesAndZeroes) {
  Fd fd = OpenFile("falloc");
  constexpr uint64_t kSize = 1 << 20;
  ASSERT_TRUE(RunSync(ctx_, ring_->Fallocate(fd.get(), 0, 0, kSize)));
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);

  AlignedBuf data(kSize), back(64 * 1024);
  data.Fill(9);
  ASSERT_EQ(RunSync(ctx_, ring_->Write(fd.get(), data.data(), kSize, 0)).value(), kSize);

  ASSERT_TRUE(RunSync(
      ctx_, ring_->Fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 64 * 1024)));
  ASSERT_EQ(RunSync(ctx_, ring_->Read(fd.get(), back.data(), back.size(), 0)).value(), back.size());
  EXPECT_TRUE(back.AllZero());

  ASSERT_TRUE(RunSync(ctx_, ring_->Fallocate(fd.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                                             512 * 1024, 64 * 1024)));
  ASSERT_EQ(RunSync(ctx_, ring_->Read(fd.get(), back.data(), back.size(), 512 * 1024)).value(),
            back.size());
  EXPECT_TRUE(back.AllZero());
  // Outside the two ranges the data is intact, and the size did not change.
  ASSERT_EQ(RunSync(ctx_, ring_->Read(fd.get(), back.data(), back.size(), 128 * 1024)).value(),
            back.size());
  EXPECT_EQ(std::memcmp(back.data(), data.data() + 128 * 1024, back.size()), 0);
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);
}

// 200 coroutines, 4 slots: all complete, and never more than 4 are in flight.
TEST_P(RingTest, ManyCallersBeyondTheDepthAllCompleteWithinTheBound) {
  MakeRing({.depth = 4});
  Fd fd = OpenFile("many");
  constexpr int kCallers = 200;
  AlignedBuf data(kCallers * 4096);
  data.Fill(5);
  std::vector<std::optional<Result<size_t>>> results(kCallers);
  size_t max_waiting = 0;
  // A coroutine's arguments live in its frame; a lambda's captures would not.
  auto write_block = [](Ring& ring, int fd, std::byte* src, int i,
                        size_t& max_waiting) -> asio::awaitable<Result<size_t>> {
    auto r = co_await ring.Write(fd, src, 4096, i * 4096);
    max_waiting = std::max(max_waiting, ring.waiting());
    co_return r;
  };
  for (int i = 0; i < kCallers; ++i)
    Spawn(ctx_, write_block(*ring_, fd.get(), data.data() + i * 4096, i, max_waiting), results[i]);
  ctx_.run();
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(results[i].has_value()) << i;
    ASSERT_TRUE(*results[i]) << results[i]->error().message();
    EXPECT_EQ(**results[i], 4096u);
  }
  EXPECT_EQ(ring_->stats().max_in_flight, 4u);
  EXPECT_GT(max_waiting, 0u);
  EXPECT_EQ(ring_->in_flight(), 0u);
  EXPECT_EQ(ring_->waiting(), 0u);
  EXPECT_EQ(ring_->stats().completed, static_cast<uint64_t>(kCallers));

  AlignedBuf back(kCallers * 4096);
  ASSERT_EQ(RunSync(ctx_, ring_->Read(fd.get(), back.data(), back.size(), 0)).value(), back.size());
  EXPECT_EQ(std::memcmp(back.data(), data.data(), back.size()), 0);
}

// Operations started in one loop turn go to the kernel in batches of
// submit_batch (8 by default), the rest in one submit at the end of the turn.
TEST_F(UringTest, SubmitsFullBatchesAtOnceAndTheRestOncePerLoopTurn) {
  Fd fd = OpenFile("batch");
  constexpr int kOps = 20;
  AlignedBuf buf(kOps * 4096);
  std::vector<std::optional<Result<size_t>>> results(kOps);
  for (int i = 0; i < kOps; ++i)
    Spawn(ctx_, ring_->Write(fd.get(), buf.data() + i * 4096, 4096, i * 4096), results[i]);
  ctx_.run();
  for (auto& r : results) EXPECT_EQ(r.value().value(), 4096u);
  EXPECT_EQ(ring_->stats().submitted, uint64_t{kOps});
  EXPECT_EQ(ring_->stats().submit_calls, 3u);  // 8, 8, then 4 at the end of the turn
}

// With every completion already in the CQ when the loop wakes, one eventfd
// wake-up drains them all.
TEST_P(RingTest, OneWakeUpDrainsEveryCompletion) {
  Fd fd = OpenFile("drain");
  constexpr int kOps = 16;
  AlignedBuf buf(kOps * 4096);
  std::vector<std::optional<Result<size_t>>> results(kOps);
  for (int i = 0; i < kOps; ++i)
    Spawn(ctx_, ring_->Write(fd.get(), buf.data() + i * 4096, 4096, i * 4096), results[i]);
  // Holds the loop (after the batch is submitted) until the kernel has posted
  // every completion, so the next wake-up finds all of them.
  std::function<void()> hold = [&] {
    if (ring_->stats().submitted < kOps) {
      asio::post(ctx_, hold);
      return;
    }
    while (ring_->completions_ready() < kOps)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  };
  asio::post(ctx_, hold);
  ctx_.run();
  for (auto& r : results) EXPECT_EQ(r.value().value(), 4096u);
  EXPECT_EQ(ring_->stats().completed, static_cast<uint64_t>(kOps));
  EXPECT_EQ(ring_->stats().wakeups, 1u);
}

// Reads from an empty pipe stay in the kernel until cancelled: Stop fails
// the waiting ones, cancels the in-flight ones, and returns once all ended.
TEST_F(UringTest, StopCancelsInFlightAndWaitingOperations) {
  MakeRing({.depth = 2});
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd rd(p[0]), wr(p[1]);
  constexpr int kOps = 5;
  std::vector<std::optional<Result<size_t>>> results(kOps);
  char bufs[kOps][16];
  for (int i = 0; i < kOps; ++i)
    Spawn(ctx_, ring_->Read(rd.get(), bufs[i], sizeof bufs[i], 0), results[i]);
  bool stopped = false;
  // A named closure: the coroutine refers to its captures until it ends.
  auto stop = [&]() -> asio::awaitable<void> {
    // Let the reads reach the kernel first.
    while (ring_->stats().submitted < 2) co_await asio::post(ctx_, asio::use_awaitable);
    EXPECT_EQ(ring_->in_flight(), 2u);
    EXPECT_EQ(ring_->waiting(), 3u);
    co_await ring_->Stop();
    EXPECT_EQ(ring_->in_flight(), 0u);
  };
  Spawn(ctx_, stop(), stopped);
  ctx_.run();
  EXPECT_TRUE(stopped);
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value());
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->error(), errc::stopped);
  }
  // A stopped ring refuses new work.
  auto after = RunSync(ctx_, ring_->Read(rd.get(), bufs[0], 1, 0));
  EXPECT_EQ(after.error(), errc::stopped);
}

TEST_P(RingTest, CallersBeyondMaxWaitingAreRefused) {
  MakeRing({.depth = 1, .max_waiting = 2});
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd rd(p[0]), wr(p[1]);
  std::vector<std::optional<Result<size_t>>> results(4);
  char bufs[4][1];
  for (int i = 0; i < 4; ++i) Spawn(ctx_, ring_->Read(rd.get(), bufs[i], 1, 0), results[i]);
  bool fed = false;
  auto feed = [&]() -> asio::awaitable<void> {
    // The fourth caller was refused at once; the pipe then gets one byte per
    // remaining reader.
    while (!results[3].has_value()) co_await asio::post(ctx_, asio::use_awaitable);
    EXPECT_EQ(results[3]->error(), errc::overloaded);
    EXPECT_EQ(::write(wr.get(), "abc", 3), 3);
  };
  Spawn(ctx_, feed(), fed);
  ctx_.run();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(results[i].value().value(), 1u) << i;
}

// The destructor may not free the ring under the kernel: it cancels, waits,
// and completes every caller with errc::stopped.
TEST_F(UringTest, DestroyingARingWithOperationsInFlightCompletesThem) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd rd(p[0]), wr(p[1]);
  std::vector<std::optional<Result<size_t>>> results(3);
  char bufs[3][1];
  for (int i = 0; i < 3; ++i) Spawn(ctx_, ring_->Read(rd.get(), bufs[i], 1, 0), results[i]);
  while (ring_->stats().submitted < 3) ctx_.run_one();
  ring_.reset();
  ctx_.run();
  for (auto& r : results) EXPECT_EQ(r.value().error(), errc::stopped);
}

TEST_P(RingTest, OfFindsTheRingOfTheCallersLoop) {
  EXPECT_EQ(Ring::Of(ctx_.get_executor()), ring_.get());
  asio::io_context other;
  EXPECT_EQ(Ring::Of(other.get_executor()), nullptr);
  EXPECT_EQ(Ring::Create(ctx_).error(), errc::ring_attached);
  ring_.reset();
  EXPECT_EQ(Ring::Of(ctx_.get_executor()), nullptr);
  auto again = Ring::Create(ctx_);
  ASSERT_TRUE(again);
  EXPECT_EQ(Ring::Of(ctx_.get_executor()), again->get());
}

TEST_F(UringTest, SaysWhichBackendRuns) { EXPECT_STREQ(ring_->backend(), "io_uring"); }

TEST_F(ThreadsRingTest, SaysWhichBackendRuns) { EXPECT_STREQ(ring_->backend(), "threads"); }

// System calls under way cannot be cancelled: Stop fails the callers still
// waiting for a slot, lets the running ones finish with their results, and
// returns once all have ended.
TEST_F(ThreadsRingTest, StopFailsTheWaitingAndLetsRunningCallsFinish) {
  MakeRing({.depth = 2, .threads = 2});
  Fd fd = OpenFile("stop");
  constexpr int kOps = 40;
  AlignedBuf buf(kOps * 4096);
  buf.Fill(9);
  std::vector<std::optional<Result<size_t>>> results(kOps);
  for (int i = 0; i < kOps; ++i)
    Spawn(ctx_, ring_->Write(fd.get(), buf.data() + i * 4096, 4096, i * 4096), results[i]);
  bool stopped = false;
  auto stop = [&]() -> asio::awaitable<void> {
    EXPECT_EQ(ring_->in_flight(), 2u);
    EXPECT_EQ(ring_->waiting(), size_t{kOps - 2});
    co_await ring_->Stop();
    EXPECT_EQ(ring_->in_flight(), 0u);
  };
  Spawn(ctx_, stop(), stopped);
  ctx_.run();
  EXPECT_TRUE(stopped);
  int written = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value());
    if (*r) {
      EXPECT_EQ(**r, 4096u);
      ++written;
    } else {
      EXPECT_EQ(r->error(), errc::stopped);
    }
  }
  EXPECT_EQ(written, 2);  // the two running; the 38 waiting were stopped
}

// Destroying the ring waits for the calls under way and completes them.
TEST_F(ThreadsRingTest, DestroyingARingWithCallsUnderWayCompletesThem) {
  Fd fd = OpenFile("destroy");
  constexpr int kOps = 8;
  AlignedBuf buf(kOps * 4096);
  std::vector<std::optional<Result<size_t>>> results(kOps);
  for (int i = 0; i < kOps; ++i)
    Spawn(ctx_, ring_->Write(fd.get(), buf.data() + i * 4096, 4096, i * 4096), results[i]);
  while (ring_->stats().submitted < kOps) ctx_.run_one();
  ring_.reset();
  ctx_.run();
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(!*r || **r == 4096u);  // finished, or stopped: never left hanging
  }
}

TEST(RingOptionsTest, ZeroDepthIsRefused) {
  asio::io_context ctx;
  EXPECT_EQ(Ring::Create(ctx, {.depth = 0}).error(), errc::bad_option);
}

}  // namespace
}  // namespace memkv::io
