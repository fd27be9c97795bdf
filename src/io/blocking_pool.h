#pragma once
// io::BlockingPool: a few helper threads for the system calls that io_uring
// cannot make asynchronous here (BLKDISCARD, BLKZEROOUT), so that no loop
// ever blocks in them.
//
// Owner: main (the server), or a tool or test; it starts its fixed threads in
// the constructor and joins them in Stop(), and must outlive every device
// that uses it. Thread-safe: Run may be awaited from any loop; the job runs
// on a helper thread, and the caller resumes on its own executor.
//
// Bounded: at most queue_capacity jobs wait for a thread. Beyond that the
// caller waits, suspended with its loop free, until the queue has room (FIFO);
// more than max_waiting such callers get errc::overloaded at once.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/result.h"
#include "io/asio_fwd.h"

namespace memkv::io {

struct BlockingPoolOptions {
  uint32_t threads = 2;
  uint32_t queue_capacity = 64;
  uint32_t max_waiting = 1024;
};

class BlockingPool {
 public:
  explicit BlockingPool(const BlockingPoolOptions& options = {});
  // Stop().
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Runs `job` on a helper thread and returns its status; errc::stopped if
  // the pool stopped before the job ran. A job that throws fails with EIO
  // (and is logged).
  Awaitable<Status> Run(std::function<Status()> job);

  // Jobs not yet started complete with errc::stopped; running ones finish;
  // the threads are joined. Blocks for as long as the running jobs take.
  // Idempotent.
  void Stop();

  size_t queued() const;   // jobs waiting for a thread
  size_t waiting() const;  // callers waiting for room in the queue

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memkv::io
