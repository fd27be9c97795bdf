#pragma once
// io::Ring: one io_uring per loop, wired into that loop's io_context.
//
// Owner: whoever owns the loop (main, a test). One ring per io_context; the
// ring registers itself with the context so that code running on the loop
// finds it with Ring::Of(executor) (the block devices do this: a drive shared
// by all loops submits each I/O to the ring of the loop that asked).
//
// Loop-confined: every member function is called on the loop's thread (the
// one thread that runs the io_context), and every operation completes there.
//
// How it runs: an operation takes a submission slot (at most `depth` in
// flight; further callers wait in FIFO order, at most `max_waiting` of them,
// beyond which they get errc::overloaded at once), prepares its SQE and asks
// for a flush. SQEs go to the kernel in batches: as soon as `submit_batch`
// are ready, and whatever a loop turn prepared beyond the last full batch at
// the end of that turn (one io_uring_submit). Holding a whole turn's SQEs
// back until its end left the drive idle while the loop ran the turn's
// other handlers: about a third fewer IOPS for 4 KiB reads at depth 32. While anything is in flight the loop reads the ring's eventfd
// through Asio; each wake-up drains every completion and posts each
// operation's handler to its own executor (never resuming a coroutine inside
// the drain). When nothing is in flight the ring holds no pending wait, so an
// io_context with no other work returns from run().
//
// Where io_uring is unavailable (a kernel without it or with
// kernel.io_uring_disabled set, a container whose seccomp profile refuses
// io_uring_setup, qemu-user), or with `backend` kThreads, the ring runs
// the same operations as plain system calls (pread, pwrite, fsync,
// fdatasync, fallocate) on `threads` helper threads of its own, with the
// same slots, FIFO waiting and completions through the same eventfd; it
// logs once per process why. Slower for small random I/O, the same
// results.
//
// Transfers are reported as the kernel made them: Read and Write return the
// byte count, which can be short (end of file, a device limit); continuing is
// the caller's choice (the block devices continue).

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/result.h"
#include "io/asio_fwd.h"

namespace memkv::io {

struct RingOptions {
  // Most operations in flight at once (prepared or in the kernel). The SQ has
  // at least this many entries and the CQ twice as many, so completions (and
  // the cancellations of Stop) never overflow it.
  uint32_t depth = 128;
  // Most callers waiting for a slot; more fail with errc::overloaded.
  uint32_t max_waiting = 4096;
  // SQEs sent together as soon as this many are ready (0 is taken as 1).
  uint32_t submit_batch = 8;
  // kAuto: io_uring, or threads where io_uring cannot be set up.
  enum class Backend { kAuto, kUring, kThreads };
  Backend backend = Backend::kAuto;
  // Helper threads of the threads backend (0 is taken as 1).
  uint32_t threads = 4;
};

struct RingStats {
  uint64_t submitted = 0;      // operations the kernel accepted
  uint64_t completed = 0;      // operations whose completion was drained
  uint64_t submit_calls = 0;   // io_uring_submit calls that sent something (batches)
  uint64_t wakeups = 0;        // eventfd wake-ups that drained the CQ
  uint32_t max_in_flight = 0;  // high-water mark of in_flight()
};

enum class SyncKind {
  kData,  // fdatasync: the data and the metadata needed to read it back
  kAll,   // fsync
};

class Ring {
 public:
  // Creates a ring for `loop`; errc::ring_attached if the loop has one,
  // errc::bad_option for a zero depth, the kernel's errno otherwise.
  static Result<std::unique_ptr<Ring>> Create(boost::asio::io_context& loop,
                                              const RingOptions& options = {});
  // The ring attached to the executor's execution context, or nullptr.
  static Ring* Of(const boost::asio::any_io_executor& executor);

  // Waits (blocking) for operations still in the kernel, since their buffers
  // may not be freed before they end, and completes them; callers still
  // waiting for a slot get errc::stopped. Prefer co_await Stop() first.
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // pread/pwrite of up to len bytes (at most 0x7ffff000, as the kernel does);
  // the count may be short. Errors are the kernel's errno, or errc::stopped.
  Awaitable<Result<size_t>> Read(int fd, void* buf, size_t len, uint64_t offset);
  Awaitable<Result<size_t>> Write(int fd, const void* buf, size_t len, uint64_t offset);
  Awaitable<Status> Fsync(int fd, SyncKind kind = SyncKind::kAll);
  // fallocate(2): mode 0 allocates; FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
  // discards; FALLOC_FL_ZERO_RANGE zeroes.
  Awaitable<Status> Fallocate(int fd, int mode, uint64_t offset, uint64_t len);

  // Refuses new operations (errc::stopped), fails those waiting for a slot,
  // asks the kernel to cancel those in flight, and returns once every
  // operation has completed. Idempotent; the ring cannot be restarted.
  Awaitable<void> Stop();

  uint32_t depth() const;
  uint32_t in_flight() const;
  size_t waiting() const;
  bool stopping() const;
  // Completions the kernel has posted that the loop has not drained yet.
  uint32_t completions_ready() const;
  const RingStats& stats() const;
  // "io_uring" or "threads".
  const char* backend() const;

 private:
  class Impl;
  struct OpArgs;
  explicit Ring(std::shared_ptr<Impl> impl);
  // Takes a slot, submits, and returns the CQE's result (negative errno
  // turned into an error).
  Awaitable<Result<int32_t>> Submit(OpArgs args);

  std::shared_ptr<Impl> impl_;  // shared only with weak references in posted handlers
};

}  // namespace memkv::io
