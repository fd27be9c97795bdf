#include "io/blocking_pool.h"

#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/error.h"
#include "test_util.h"

namespace memkv::io {
namespace {

using testing::RunSync;
using testing::Spawn;
namespace asio = boost::asio;

// A gate a job blocks on until the test opens it.
class Gate {
 public:
  void Wait() {
    entered_ = true;
    while (!open_) std::this_thread::yield();
  }
  void Open() { open_ = true; }
  bool entered() const { return entered_; }

 private:
  std::atomic<bool> entered_{false};
  std::atomic<bool> open_{false};
};

TEST(BlockingPoolTest, RunsTheJobOnAHelperAndResumesOnTheCallersLoop) {
  asio::io_context ctx;
  BlockingPool pool({.threads = 2});
  std::thread::id job_thread, resumed_thread;
  auto call = [](BlockingPool& pool, std::thread::id& job_thread,
                 std::thread::id& resumed_thread) -> asio::awaitable<Status> {
    auto st = co_await pool.Run([&job_thread]() -> Status {
      job_thread = std::this_thread::get_id();
      return {};
    });
    resumed_thread = std::this_thread::get_id();
    co_return st;
  };
  EXPECT_TRUE(RunSync(ctx, call(pool, job_thread, resumed_thread)));
  EXPECT_NE(job_thread, std::this_thread::get_id());
  EXPECT_EQ(resumed_thread, std::this_thread::get_id());  // the thread running ctx
}

TEST(BlockingPoolTest, PassesTheJobsErrorBackAndTurnsExceptionsIntoEio) {
  asio::io_context ctx;
  BlockingPool pool;
  auto st = RunSync(ctx, pool.Run([]() -> Status {
    return error_code(EOPNOTSUPP, boost::system::system_category());
  }));
  EXPECT_EQ(st.error(), error_code(EOPNOTSUPP, boost::system::system_category()));
  auto thrown = RunSync(ctx, pool.Run([]() -> Status { throw std::runtime_error("boom"); }));
  EXPECT_EQ(thrown.error(), error_code(EIO, boost::system::system_category()));
}

// One thread, a queue of one: the third caller waits for room, the fourth is
// refused, and everything admitted runs once the gate opens.
TEST(BlockingPoolTest, CallersWaitWhenTheQueueIsFullAndBeyondThatAreRefused) {
  asio::io_context ctx;
  BlockingPool pool({.threads = 1, .queue_capacity = 1, .max_waiting = 1});
  Gate gate;
  std::atomic<int> ran{0};
  std::vector<std::optional<Status>> results(4);
  Spawn(ctx, pool.Run([&]() -> Status {
    gate.Wait();
    ++ran;
    return {};
  }),
        results[0]);
  while (!gate.entered()) ctx.poll();  // job 0 occupies the only thread
  for (int i = 1; i < 4; ++i)
    Spawn(ctx, pool.Run([&]() -> Status {
      ++ran;
      return {};
    }),
          results[i]);
  while (!results[3].has_value()) ctx.run_one();
  EXPECT_EQ(results[3]->error(), errc::overloaded);
  EXPECT_EQ(pool.queued(), 1u);
  EXPECT_EQ(pool.waiting(), 1u);
  gate.Open();
  ctx.run();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(results[i].value()) << i;
  EXPECT_EQ(ran, 3);
}

TEST(BlockingPoolTest, StopFailsJobsNotStartedAndLetsTheRunningOneFinish) {
  asio::io_context ctx;
  BlockingPool pool({.threads = 1, .queue_capacity = 4});
  Gate gate;
  std::vector<std::optional<Status>> results(3);
  Spawn(ctx, pool.Run([&]() -> Status {
    gate.Wait();
    return {};
  }),
        results[0]);
  while (!gate.entered()) ctx.poll();
  for (int i = 1; i < 3; ++i) Spawn(ctx, pool.Run([]() -> Status { return {}; }), results[i]);
  while (pool.queued() < 2) ctx.poll();
  std::thread stopper([&] { pool.Stop(); });  // joins the helper: waits for the gate
  while (pool.queued() > 0) std::this_thread::yield();
  gate.Open();
  stopper.join();
  ctx.run();
  EXPECT_TRUE(results[0].value());
  EXPECT_EQ(results[1].value().error(), errc::stopped);
  EXPECT_EQ(results[2].value().error(), errc::stopped);
  // After Stop, new work is refused.
  EXPECT_EQ(RunSync(ctx, pool.Run([]() -> Status { return {}; })).error(), errc::stopped);
}

}  // namespace
}  // namespace memkv::io
