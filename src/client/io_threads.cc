#include "client/io_threads.h"

#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

namespace memkv::client {

namespace asio = boost::asio;

namespace {
std::atomic<size_t> g_live_threads{0};
std::mutex g_pool_mu;
std::weak_ptr<IoThreads> g_pool;  // guarded by g_pool_mu
}  // namespace

struct IoThreads::State {
  struct Loop {
    asio::io_context ctx{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Loop>> loops;

  void Stop() {
    for (auto& l : loops) {
      l->guard.reset();
      l->ctx.stop();
    }
    for (auto& l : loops) {
      if (l->thread.joinable()) l->thread.join();
    }
  }
};

IoThreads::IoThreads(size_t threads) : state_(std::make_unique<State>()) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) {
    auto loop = std::make_unique<State::Loop>();
    loop->guard.emplace(loop->ctx.get_executor());
    State::Loop* l = loop.get();
    ++g_live_threads;  // counted from here, so a pool is counted as soon as it exists
    l->thread = std::thread([l] {
      for (;;) {
        try {
          l->ctx.run();
          break;
        } catch (const std::exception& e) {
          // A handler threw: log it and keep the loop alive for the others.
          spdlog::error("memkv client I/O thread: unhandled exception: {}", e.what());
        }
      }
      --g_live_threads;
    });
    state_->loops.push_back(std::move(loop));
  }
}

IoThreads::~IoThreads() {
  if (InPool()) {
    // The last user went away on one of our own threads: hand the joining
    // to a helper, which finishes once this thread returns from run().
    std::thread([state = std::move(state_)] { state->Stop(); }).detach();
    return;
  }
  state_->Stop();
}

std::shared_ptr<IoThreads> IoThreads::Acquire(const IoThreadsOptions& options) {
  std::lock_guard lock(g_pool_mu);
  if (auto pool = g_pool.lock()) return pool;
  std::shared_ptr<IoThreads> pool(new IoThreads(options.threads));
  g_pool = pool;
  return pool;
}

size_t IoThreads::LiveThreads() { return g_live_threads.load(); }

size_t IoThreads::size() const { return state_->loops.size(); }

asio::io_context& IoThreads::context(size_t i) { return state_->loops.at(i)->ctx; }

asio::io_context& IoThreads::Next() {
  return context(next_.fetch_add(1, std::memory_order_relaxed) % size());
}

bool IoThreads::InPool() const {
  const auto self = std::this_thread::get_id();
  for (const auto& l : state_->loops)
    if (l->thread.get_id() == self) return true;
  return false;
}

}  // namespace memkv::client
