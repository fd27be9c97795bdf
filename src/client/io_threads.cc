#include "client/io_threads.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "proto/auth.h"

namespace memkv::client {

namespace asio = boost::asio;

namespace {
std::atomic<size_t> g_live_threads{0};
std::mutex g_pool_mu;
std::weak_ptr<IoThreads> g_pool;  // guarded by g_pool_mu

// Joins the pools whose last reference went away on one of their own
// threads. Their helper threads are joined here, at the latest when the
// process exits (a static destructor), so no I/O thread is still tearing
// down when exit handlers and leak checkers run.
class Reaper {
 public:
  // OpenSSL's exit handler must run after this object's destructor, which
  // joins threads that may hold OpenSSL's per-thread state: initialized
  // here, OpenSSL registers its handler before this object is registered.
  Reaper() { proto::InitCrypto(); }

  void Add(std::function<void()> stop, std::vector<std::thread::id> pool_threads) {
    std::lock_guard lock(mu_);
    JoinFinishedLocked();
    auto job = std::make_unique<Job>();
    job->pool_threads = std::move(pool_threads);
    Job* j = job.get();
    job->thread = std::thread([j, stop = std::move(stop)] {
      stop();
      j->done.store(true, std::memory_order_release);
    });
    jobs_.push_back(std::move(job));
  }

  ~Reaper() {
    std::lock_guard lock(mu_);
    const auto self = std::this_thread::get_id();
    for (auto& j : jobs_) {
      // exit() called from a pool thread that is being joined: that join
      // can never finish, so let the helper go.
      const bool joins_us =
          std::find(j->pool_threads.begin(), j->pool_threads.end(), self) != j->pool_threads.end();
      if (joins_us)
        j->thread.detach();
      else
        j->thread.join();
    }
  }

 private:
  struct Job {
    std::thread thread;
    std::vector<std::thread::id> pool_threads;
    std::atomic<bool> done{false};
  };

  void JoinFinishedLocked() {
    std::erase_if(jobs_, [](std::unique_ptr<Job>& j) {
      if (!j->done.load(std::memory_order_acquire)) return false;
      j->thread.join();
      return true;
    });
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Job>> jobs_;  // guarded by mu_
};

Reaper g_reaper;
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
      proto::ReleaseThreadCrypto();  // its HMAC state, before the process may exit
      --g_live_threads;
    });
    state_->loops.push_back(std::move(loop));
  }
}

IoThreads::~IoThreads() {
  if (InPool()) {
    // The last user went away on one of our own threads: hand the joining
    // to a helper, which finishes once this thread returns from run().
    std::vector<std::thread::id> ids;
    for (const auto& l : state_->loops) ids.push_back(l->thread.get_id());
    g_reaper.Add([state = std::shared_ptr<State>(std::move(state_))] { state->Stop(); },
                 std::move(ids));
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
