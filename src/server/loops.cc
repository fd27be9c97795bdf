#include "server/loops.h"

#include <exception>
#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <spdlog/spdlog.h>

#include "io/blocking_pool.h"
#include "io/ring.h"

namespace memkv::server {
namespace asio = boost::asio;

io::RingOptions::Backend Loops::BackendNamed(std::string_view name) {
  if (name == "io_uring") return io::RingOptions::Backend::kUring;
  if (name == "threads") return io::RingOptions::Backend::kThreads;
  return io::RingOptions::Backend::kAuto;
}

const char* Loops::backend() const { return rings_.front()->backend(); }

Result<std::unique_ptr<Loops>> Loops::Create(size_t count, uint32_t ring_depth,
                                             io::RingOptions::Backend backend) {
  std::unique_ptr<Loops> loops(new Loops());
  for (size_t i = 0; i < std::max<size_t>(count, 1); ++i) {
    // One thread runs each context: no internal locking needed.
    loops->contexts_.push_back(std::make_unique<asio::io_context>(1));
    io::RingOptions o;
    o.depth = ring_depth;
    o.backend = backend;
    auto ring = io::Ring::Create(*loops->contexts_.back(), o);
    if (!ring) return ring.error();
    loops->rings_.push_back(std::move(*ring));
  }
  loops->helpers_ = std::make_unique<io::BlockingPool>();
  return loops;
}

Loops::~Loops() {
  Stop();
  // Rings before their contexts; the pool after every device is gone.
  rings_.clear();
  contexts_.clear();
}

void Loops::Start() {
  for (auto& ctx : contexts_) {
    ctx->restart();  // RunBlocking may have run it out of work (which stops it)
    guards_.push_back(std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(
        ctx->get_executor()));
    threads_.emplace_back([c = ctx.get()] { c->run(); });
  }
}

void Loops::Stop() {
  guards_.clear();
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (helpers_) helpers_->Stop();
}

Status Loops::RunBlocking(const std::function<io::Awaitable<Status>()>& task) {
  asio::io_context& ctx = *contexts_[0];
  Status result = boost::system::errc::make_error_code(boost::system::errc::interrupted);
  std::exception_ptr failure;
  asio::co_spawn(ctx, task(), [&](std::exception_ptr e, Status st) {
    failure = e;
    result = st;
  });
  ctx.restart();
  ctx.run();
  if (failure) std::rethrow_exception(failure);
  return result;
}

}  // namespace memkv::server

namespace memkv::server {

Status Loops::RunOn(size_t i, const std::function<io::Awaitable<Status>()>& task) {
  auto future = asio::co_spawn(*contexts_[i], task(), asio::use_future);
  return future.get();  // rethrows what the task threw
}

}  // namespace memkv::server
