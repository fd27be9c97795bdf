#pragma once
// http::TaskGroup: every coroutine the HTTP server spawns goes through one.
// It counts the live tasks, logs a task's exception (the task is gone, the
// server goes on) and lets Stop wait for them all with a deadline.
//
// Internal to src/http (it includes Asio). Thread-safe: tasks end on any
// loop; Wait is called from outside the loops.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <utility>

#include <boost/asio/co_spawn.hpp>

#include "common/log.h"

namespace memkv::http {

class TaskGroup {
 public:
  explicit TaskGroup(std::string name) : name_(std::move(name)) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Runs `task` (an awaitable<void>) on `executor`.
  template <class Executor, class Task>
  void Spawn(const Executor& executor, Task task) {
    live_.fetch_add(1);
    boost::asio::co_spawn(executor, std::move(task), [this](std::exception_ptr e) {
      if (e) Log(e);
      Done();
    });
  }

  size_t live() const { return live_.load(); }

  // Waits until no task is live or `deadline`; true when none is.
  bool Wait(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [this] { return live_.load() == 0; });
  }

 private:
  void Log(std::exception_ptr e) { LogTaskFailure(name_ + ": task", e); }
  void Done() {
    std::lock_guard lock(mu_);
    if (live_.fetch_sub(1) == 1) cv_.notify_all();
  }

  const std::string name_;
  std::atomic<size_t> live_{0};
  std::mutex mu_;  // pairs with cv_ for Wait
  std::condition_variable cv_;
};

}  // namespace memkv::http
