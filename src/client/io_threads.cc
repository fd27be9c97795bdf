#include "client/io_threads.h"

#include <pthread.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "proto/auth.h"

namespace memkv::client {

namespace asio = boost::asio;

namespace {
std::atomic<size_t> g_live_threads{0};
Mutex g_pool_mu;
std::weak_ptr<IoThreads> g_pool GUARDED_BY(g_pool_mu);

// Joins the pools whose last reference went away on one of their own
// threads. Their helper threads are joined here, at the latest when the
// process exits (Close(), from a static destructor), so no I/O thread is
// still tearing down when exit handlers and leak checkers run.
//
// The reaper itself is never destroyed: a pool thread can drop its pool's
// last reference while the process is exiting, after Close(). Such a pool
// is kept, idle, until the process is gone.
//
// Thread-safe: mu_ guards the job list and closed_; a job's `done` is atomic
// and its thread is joined by whoever removed the job from the list.
class Reaper {
 public:
  static Reaper& Get() {
    static Reaper* const reaper = new Reaper();
    return *reaper;
  }

  void Add(std::shared_ptr<IoThreads::State> state, std::vector<std::thread::id> pool_threads) {
    MutexLock lock(mu_);
    if (closed_) {
      abandoned_.push_back(std::move(state));
      return;
    }
    JoinFinishedLocked();
    auto job = std::make_unique<Job>();
    job->pool_threads = std::move(pool_threads);
    Job* j = job.get();
    job->thread = std::thread([j, state = std::move(state)] {
      Stop(*state);
      j->done.store(true, std::memory_order_release);
    });
    jobs_.push_back(std::move(job));
  }

  // Joins every helper; later pools are abandoned (see above). The joins
  // run outside the lock: a pool thread being joined may call Add().
  void Close() {
    std::vector<std::unique_ptr<Job>> jobs;
    {
      MutexLock lock(mu_);
      closed_ = true;
      jobs.swap(jobs_);
    }
    const auto self = std::this_thread::get_id();
    for (auto& j : jobs) {
      // exit() called from a pool thread that is being joined: that join
      // can never finish, so let the helper go.
      const bool joins_us =
          std::find(j->pool_threads.begin(), j->pool_threads.end(), self) != j->pool_threads.end();
      if (joins_us) {
        j->thread.detach();
        (void)j.release();  // the helper still writes its `done`
      } else {
        j->thread.join();
      }
    }
  }

 private:
  struct Job {
    std::thread thread;
    std::vector<std::thread::id> pool_threads;
    std::atomic<bool> done{false};
  };

  Reaper() = default;
  static void Stop(IoThreads::State& state);

  void JoinFinishedLocked() REQUIRES(mu_) {
    std::erase_if(jobs_, [](std::unique_ptr<Job>& j) {
      if (!j->done.load(std::memory_order_acquire)) return false;
      j->thread.join();
      return true;
    });
  }

  Mutex mu_;
  bool closed_ GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Job>> jobs_ GUARDED_BY(mu_);
  std::vector<std::shared_ptr<IoThreads::State>> abandoned_ GUARDED_BY(mu_);
};

// Closes the reaper when the process exits. OpenSSL's exit handler must run
// after that, since the joined threads may hold OpenSSL's per-thread state:
// initialized here, OpenSSL registers its handler before this object's
// destructor is registered.
struct ReaperCloser {
  ReaperCloser() {
    proto::InitCrypto();
    Reaper::Get();
  }
  ~ReaperCloser() { Reaper::Get().Close(); }
} g_reaper_closer;
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

void Reaper::Stop(IoThreads::State& state) { state.Stop(); }

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
    Reaper::Get().Add(std::shared_ptr<State>(std::move(state_)), std::move(ids));
    return;
  }
  state_->Stop();
}

namespace {
// After fork the child has none of the pool's threads (and a thread that
// did not fork may have held the lock): the child forgets the pool, leaking
// the parent's, which engines made before the fork still name, and its next
// Acquire starts a pool of its own.
void ForgetPoolInChild() NO_THREAD_SAFETY_ANALYSIS {
  new (&g_pool_mu) Mutex();
  new (&g_pool) std::weak_ptr<IoThreads>();
  g_live_threads.store(0);
}
[[maybe_unused]] const int g_fork_handler = pthread_atfork(nullptr, nullptr, ForgetPoolInChild);
}  // namespace

std::shared_ptr<IoThreads> IoThreads::Acquire(const IoThreadsOptions& options) {
  MutexLock lock(g_pool_mu);
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
