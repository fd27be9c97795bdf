// The admin API's pieces that need no server: the per-drive reset flags.

#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "server/admin.h"
#include "server/config.h"

namespace memkv::server {
namespace {

namespace asio = boost::asio;

TEST(ResetFlags, ASecondResetOfTheSameDriveIsRefusedWhileTheFirstRuns) {
  ResetFlags flags(2);
  EXPECT_FALSE(flags.resetting(0));
  {
    auto claim = flags.TryClaim(0);
    ASSERT_TRUE(claim);
    EXPECT_TRUE(flags.resetting(0));
    EXPECT_FALSE(flags.TryClaim(0));
    EXPECT_FALSE(flags.resetting(1));
    EXPECT_TRUE(flags.TryClaim(1));  // another drive: its own flag
  }
  EXPECT_FALSE(flags.resetting(0));
  EXPECT_TRUE(flags.TryClaim(0));
}

// The handler's shape: claim, co_await the reset, build the answer; here the
// reset throws.
asio::awaitable<int> ThrowingReset(ResetFlags& flags) {
  auto claim = flags.TryClaim(1);
  if (!claim) co_return 409;
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  throw std::runtime_error("the reset failed by throwing");
}

TEST(ResetFlags, ResettingFlagIsClearedWhenTheResetHandlerThrows) {
  ResetFlags flags(2);
  asio::io_context ctx;
  auto fut = asio::co_spawn(ctx, ThrowingReset(flags), asio::use_future);
  ctx.run();
  EXPECT_THROW(fut.get(), std::runtime_error);
  EXPECT_FALSE(flags.resetting(1)) << "the drive would refuse every later reset with 409";
  // And a coroutine destroyed mid-reset (the server stopping) lets go too.
  {
    asio::io_context stopped;
    asio::co_spawn(stopped, ThrowingReset(flags), [](std::exception_ptr, int) {});
    stopped.run_one();  // up to the co_await
    EXPECT_TRUE(flags.resetting(1));
  }  // the frame is destroyed with its io_context
  EXPECT_FALSE(flags.resetting(1));
}

TEST(AdminOptions, ComeFromTheAdminSection) {
  Config c = Config::EmbeddedDefault();
  AdminOptions o = ToAdminOptions(c);
  EXPECT_EQ(o.port, 9901);
  EXPECT_TRUE(o.allowed_hosts.empty());
  EXPECT_EQ(o.limits.max_connections, 64u);
  EXPECT_EQ(o.limits.header_timeout, std::chrono::seconds(10));
  EXPECT_EQ(o.limits.header_bytes, 16u * 1024);
  EXPECT_EQ(o.limits.body_bytes, 1024u * 1024);
  c.admin.allowed_hosts = {"memkv.example"};
  c.admin.max_connections = 3;
  c.admin.header_timeout_seconds = 4;
  c.admin.max_header_size = 5000;
  c.admin.max_body_size = 6000;
  o = ToAdminOptions(c);
  EXPECT_EQ(o.allowed_hosts, std::vector<std::string>{"memkv.example"});
  EXPECT_EQ(o.limits.max_connections, 3u);
  EXPECT_EQ(o.limits.header_timeout, std::chrono::seconds(4));
  EXPECT_EQ(o.limits.header_bytes, 5000u);
  EXPECT_EQ(o.limits.body_bytes, 6000u);
}

}  // namespace
}  // namespace memkv::server
