#pragma once
// server::Loops: the event loops of a memkv process. Each loop is an
// io_context run by one thread, with its own io_uring ring attached; a
// connection or a task lives on one loop for its life. A small helper pool
// takes the system calls io_uring cannot make asynchronous (BLKDISCARD,
// BLKZEROOUT), so no loop blocks in them.
//
// Owner: main (or a tool or test). Create, then Start to run the threads, or
// RunBlocking for a one-off task on the calling thread (the tools). Stop
// stops the loops and joins their threads. Not thread-safe itself: call its
// members from the owning thread.

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "io/asio_fwd.h"
#include "io/ring.h"

namespace memkv::io {
class BlockingPool;
}  // namespace memkv::io

namespace memkv::server {

class Loops {
 public:
  // `count` loops (at least 1), each with a ring of `ring_depth` on
  // `backend` (server.io_backend).
  static Result<std::unique_ptr<Loops>> Create(
      size_t count, uint32_t ring_depth = 256,
      io::RingOptions::Backend backend = io::RingOptions::Backend::kAuto);
  // The backend of server.io_backend ("auto", "io_uring", "threads").
  static io::RingOptions::Backend BackendNamed(std::string_view name);
  // "io_uring" or "threads": what the rings run on.
  const char* backend() const;
  ~Loops();
  Loops(const Loops&) = delete;
  Loops& operator=(const Loops&) = delete;

  size_t size() const { return contexts_.size(); }
  boost::asio::io_context& loop(size_t i) { return *contexts_[i]; }
  io::BlockingPool& helpers() { return *helpers_; }

  // Runs each loop on its own thread until Stop.
  void Start();
  // Stops every loop and joins the threads. Idempotent.
  void Stop();

  // Runs `task` on loop 0 on the calling thread until it finishes (for tools
  // and tests; the loops must not be started).
  Status RunBlocking(const std::function<io::Awaitable<Status>()>& task);
  // Runs `task` on started loop `i` and waits for it on the calling thread
  // (which must not be a loop thread).
  Status RunOn(size_t i, const std::function<io::Awaitable<Status>()>& task);

 private:
  Loops() = default;

  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::unique_ptr<io::Ring>> rings_;
  std::unique_ptr<io::BlockingPool> helpers_;
  std::vector<std::thread> threads_;
  // Keeps each started loop's run() from returning while it has no work.
  std::vector<std::shared_ptr<void>> guards_;
};

}  // namespace memkv::server
