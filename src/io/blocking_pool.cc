#include "io/blocking_pool.h"

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/error.h"
#include "io/posted_handler.h"

namespace memkv::io {

namespace asio = boost::asio;

class BlockingPool::Impl {
 public:
  struct Job {
    std::function<Status()> fn;
    detail::PostedHandler<Status> done;
  };

  explicit Impl(const BlockingPoolOptions& options)
      : capacity_(std::max<uint32_t>(1, options.queue_capacity)),
        max_waiting_(options.max_waiting) {
    const uint32_t n = std::max<uint32_t>(1, options.threads);
    threads_.reserve(n);
    for (uint32_t i = 0; i < n; ++i) threads_.emplace_back([this] { Work(); });
  }

  void Submit(Job job) {
    std::unique_lock lock(mu_);
    if (stopping_) {
      lock.unlock();
      job.done.Post(errc::stopped);
    } else if (queue_.size() < capacity_ && waiting_.empty()) {
      queue_.push_back(std::move(job));
      lock.unlock();
      cv_.notify_one();
    } else if (waiting_.size() < max_waiting_) {
      waiting_.push_back(std::move(job));
    } else {
      lock.unlock();
      job.done.Post(errc::overloaded);
    }
  }

  void Work() {
    pthread_setname_np(pthread_self(), "memkv-blocking");
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        // Room in the queue: the longest-waiting caller gets in.
        if (!waiting_.empty()) {
          queue_.push_back(std::move(waiting_.front()));
          waiting_.pop_front();
        }
      }
      Status st;
      try {
        st = job.fn();
      } catch (const std::exception& e) {
        spdlog::error("blocking pool: a job threw: {}", e.what());
        st = error_code(EIO, boost::system::system_category());
      } catch (...) {
        spdlog::error("blocking pool: a job threw");
        st = error_code(EIO, boost::system::system_category());
      }
      job.done.Post(st);
    }
  }

  void Stop() {
    std::deque<Job> dropped;
    {
      std::lock_guard lock(mu_);
      if (stopping_ && threads_.empty()) return;
      stopping_ = true;
      dropped = std::move(queue_);
      queue_.clear();
      for (auto& j : waiting_) dropped.push_back(std::move(j));
      waiting_.clear();
    }
    cv_.notify_all();
    for (auto& j : dropped) j.done.Post(errc::stopped);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  size_t queued() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  size_t waiting() const {
    std::lock_guard lock(mu_);
    return waiting_.size();
  }

 private:
  // Constant after construction.
  const size_t capacity_;
  const size_t max_waiting_;
  std::vector<std::thread> threads_;  // joined by Stop (called by one thread)

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;    // at most capacity_
  std::deque<Job> waiting_;  // callers waiting for room, at most max_waiting_
  bool stopping_ = false;
};

BlockingPool::BlockingPool(const BlockingPoolOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}

BlockingPool::~BlockingPool() { impl_->Stop(); }

Awaitable<Status> BlockingPool::Run(std::function<Status()> job) {
  Impl& impl = *impl_;
  auto st = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Status)>(
      [&impl, &job](auto handler) {
        impl.Submit({std::move(job), detail::PostedHandler<Status>(std::move(handler))});
      },
      asio::use_awaitable);
  co_return st;
}

void BlockingPool::Stop() { impl_->Stop(); }
size_t BlockingPool::queued() const { return impl_->queued(); }
size_t BlockingPool::waiting() const { return impl_->waiting(); }

}  // namespace memkv::io
