#pragma once
// IoThreads: the client library's own small pool of I/O threads, one
// io_context and one thread each. The library runs inside programs that are
// not ours (engines, the preload shim), so it owns its threads: the first
// user starts the pool through Acquire() and the last reference stops it.
// Components (connections) take one of its io_contexts and live on that
// thread for their life.
//
// Thread-safe: Acquire() from any thread; Next()/context() are constant
// after construction apart from an atomic round-robin counter.

#include <atomic>
#include <cstddef>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace memkv::client {

struct IoThreadsOptions {
  size_t threads = 1;  // io_threads; 0 is taken as 1
};

class IoThreads {
 public:
  // The process's pool, started on first use with `options` (later callers
  // share it whatever options they pass) and stopped when the last
  // reference goes.
  static std::shared_ptr<IoThreads> Acquire(const IoThreadsOptions& options = {});

  // I/O threads of every pool alive in this process (diagnostics, tests).
  static size_t LiveThreads();

  // Stops the loops and joins their threads. When the last reference is
  // dropped on one of the pool's own threads, a short-lived helper thread
  // joins them instead (a thread cannot join itself); such helpers are
  // joined in turn when the process exits, so no pool thread outlives
  // main's return.
  ~IoThreads();
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  size_t size() const;
  boost::asio::io_context& context(size_t i);
  // The next loop, round-robin: where a new component should live.
  boost::asio::io_context& Next();
  // True when called on one of this pool's threads (where blocking on a
  // request of this pool would deadlock).
  bool InPool() const;

  struct State;  // io_contexts, work guards and threads (io_threads.cc)

 private:
  explicit IoThreads(size_t threads);

  std::unique_ptr<State> state_;
  std::atomic<size_t> next_{0};
};

}  // namespace memkv::client
