#include "io/ring.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/intrusive/list.hpp>

#include "io/error.h"
#include "io/posted_handler.h"

namespace memkv::io {

namespace asio = boost::asio;

// io/asio_fwd.h must name the very type Asio defines.
static_assert(std::is_same_v<Awaitable<int>, asio::awaitable<int>>);

namespace {

// The kernel caps one read or write at this many bytes (MAX_RW_COUNT).
constexpr size_t kMaxTransfer = 0x7ffff000;
constexpr uint32_t kMaxDepth = 4096;

// Where Ring::Of finds the ring of an execution context: an Asio service is
// created once per context and lives as long as it.
class RingSlot final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit RingSlot(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
  std::atomic<Ring*> ring{nullptr};

 private:
  void shutdown() override {}
};

std::atomic<bool> g_fallback_logged{false};

error_code FromKernel(int32_t res) {
  if (res == -ECANCELED) return errc::stopped;
  return {-res, boost::system::system_category()};
}

}  // namespace

struct Ring::OpArgs {
  uint8_t opcode = IORING_OP_NOP;
  int fd = -1;
  void* addr = nullptr;
  uint64_t len = 0;  // bytes for read/write; length for fallocate
  uint64_t offset = 0;
  uint32_t flags = 0;  // fsync flags, or the fallocate mode
};

// The state behind a Ring. Loop-confined, like the Ring. Held by a
// shared_ptr only so that handlers posted to the loop (the flush, the
// eventfd read, the retry timer) can find out, through a weak_ptr, that the
// ring is gone.
class Ring::Impl {
 public:
  // One operation: its arguments and the handler that resumes its caller.
  // Owned by waiting_ or in_flight_ from Start until Finish deletes it; its
  // address is the SQE's user_data.
  struct Op : boost::intrusive::list_base_hook<> {
    OpArgs args;
    detail::PostedHandler<int32_t> handler;
    int32_t res = 0;  // threads backend: the call's result, set by its helper
  };
  using OpList = boost::intrusive::list<Op>;

  Impl(asio::io_context& loop, uint32_t max_waiting, uint32_t submit_batch)
      : loop_(loop),
        efd_(loop),
        retry_timer_(loop),
        max_waiting_(max_waiting),
        submit_batch_(std::max<uint32_t>(1, submit_batch)) {}

  ~Impl() {
    {
      std::lock_guard lock(jobs_mu_);
      quit_ = true;
    }
    jobs_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
    if (ring_ready_) io_uring_queue_exit(&ring_);
  }

  Status Init(uint32_t depth, RingOptions::Backend backend, uint32_t threads) {
    const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return error_code(errno, boost::system::system_category());
    boost::system::error_code ec;
    efd_.assign(efd, ec);
    if (ec) {
      ::close(efd);
      return ec;
    }
    if (backend != RingOptions::Backend::kThreads) {
      Status st = InitUring(depth, efd);
      if (st || backend == RingOptions::Backend::kUring) return st;
      if (ring_ready_) io_uring_queue_exit(&ring_);
      ring_ready_ = false;
      if (!g_fallback_logged.exchange(true))
        spdlog::warn("io: io_uring cannot be set up here ({}); drive I/O runs as system calls on "
                     "{} helper threads per loop instead (slower for small random I/O)",
                     st.error().message(), std::max<uint32_t>(1, threads));
    }
    threaded_ = true;
    depth_ = depth;
    for (uint32_t i = 0; i < std::max<uint32_t>(1, threads); ++i)
      workers_.emplace_back([this] { Work(); });
    return {};
  }

  Status InitUring(uint32_t depth, int efd) {
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    params.cq_entries = 2 * depth;  // every op in flight plus one cancellation each
    if (int rc = io_uring_queue_init_params(depth, &ring_, &params); rc < 0)
      return error_code(-rc, boost::system::system_category());
    ring_ready_ = true;
    depth_ = std::min({depth, params.sq_entries, params.cq_entries / 2});
    if (int rc = io_uring_register_eventfd(&ring_, efd); rc < 0)
      return error_code(-rc, boost::system::system_category());
    return {};
  }

  // ---- the threads backend ----

  // A helper thread: runs queued operations as system calls, hands each
  // back through done_ and wakes the loop through the eventfd.
  void Work() {
    for (;;) {
      Op* op;
      {
        std::unique_lock lock(jobs_mu_);
        jobs_cv_.wait(lock, [this] { return quit_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        op = jobs_.front();
        jobs_.pop_front();
      }
      const int32_t res = Call(op->args);
      {
        std::lock_guard lock(jobs_mu_);
        op->res = res;
        done_.push_back(op);
      }
      done_cv_.notify_all();
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t w = ::write(efd_.native_handle(), &one, sizeof one);
    }
  }

  // The system call an operation stands for: its result, or -errno.
  static int32_t Call(const OpArgs& a) {
    for (;;) {
      long rc;
      switch (a.opcode) {
        // A pipe or socket has no offset: read and write it as io_uring does.
        case IORING_OP_READ:
          rc = ::pread(a.fd, a.addr, a.len, static_cast<off_t>(a.offset));
          if (rc < 0 && errno == ESPIPE) rc = ::read(a.fd, a.addr, a.len);
          break;
        case IORING_OP_WRITE:
          rc = ::pwrite(a.fd, a.addr, a.len, static_cast<off_t>(a.offset));
          if (rc < 0 && errno == ESPIPE) rc = ::write(a.fd, a.addr, a.len);
          break;
        case IORING_OP_FSYNC:
          rc = (a.flags & IORING_FSYNC_DATASYNC) ? ::fdatasync(a.fd) : ::fsync(a.fd);
          break;
        case IORING_OP_FALLOCATE:
          rc = ::fallocate(a.fd, static_cast<int>(a.flags), static_cast<off_t>(a.offset),
                           static_cast<off_t>(a.len));
          break;
        default:
          rc = 0;
          break;
      }
      if (rc >= 0) return static_cast<int32_t>(rc);
      if (errno != EINTR) return -errno;
    }
  }

  // Completions the helpers handed back.
  std::vector<Op*> TakeDone() {
    std::vector<Op*> done;
    std::lock_guard lock(jobs_mu_);
    done.swap(done_);
    return done;
  }

  // A new operation: prepared now if a slot is free and nobody waits before
  // it, queued otherwise.
  void Start(Op* op) {
    if (in_flight_.size() < depth_ && waiting_.empty()) {
      Prepare(op);
    } else {
      waiting_.push_back(*op);
    }
  }

  bool MustWait() const { return in_flight_.size() >= depth_ || !waiting_.empty(); }

  void Prepare(Op* op) {
    if (threaded_) {
      in_flight_.push_back(*op);
      stats_.max_in_flight = std::max<uint32_t>(stats_.max_in_flight, in_flight_.size());
      ++stats_.submitted;
      {
        std::lock_guard lock(jobs_mu_);
        jobs_.push_back(op);
      }
      jobs_cv_.notify_one();
      Arm();
      return;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {  // not expected: the SQ holds at least depth_ entries
      SubmitNow();
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {
        Finish(op, -EBUSY);
        return;
      }
    }
    const OpArgs& a = op->args;
    switch (a.opcode) {
      case IORING_OP_READ:
        io_uring_prep_read(sqe, a.fd, a.addr, static_cast<unsigned>(a.len), a.offset);
        break;
      case IORING_OP_WRITE:
        io_uring_prep_write(sqe, a.fd, a.addr, static_cast<unsigned>(a.len), a.offset);
        break;
      case IORING_OP_FSYNC:
        io_uring_prep_fsync(sqe, a.fd, a.flags);
        break;
      case IORING_OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, a.fd, static_cast<int>(a.flags), static_cast<off_t>(a.offset),
                                static_cast<off_t>(a.len));
        break;
      default:
        io_uring_prep_nop(sqe);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
    in_flight_.push_back(*op);
    stats_.max_in_flight = std::max<uint32_t>(stats_.max_in_flight, in_flight_.size());
    ScheduleSubmit();
  }

  // A full batch goes at once; otherwise the first SQE of a turn posts the
  // flush, which runs after every handler already queued on the loop.
  void ScheduleSubmit() {
    if (io_uring_sq_ready(&ring_) >= submit_batch_) {
      SubmitNow();
      return;
    }
    if (submit_posted_) return;
    submit_posted_ = true;
    asio::post(loop_, [weak = self_] {
      if (auto self = weak.lock()) {
        self->submit_posted_ = false;
        self->SubmitNow();
      }
    });
  }

  void SubmitNow() {
    if (!threaded_ && io_uring_sq_ready(&ring_) > 0) {
      const int rc = io_uring_submit(&ring_);
      if (rc < 0) {
        RetrySubmitLater(rc);
      } else {
        if (rc > 0) ++stats_.submit_calls;
        stats_.submitted += static_cast<uint64_t>(rc);
        if (io_uring_sq_ready(&ring_) > 0) RetrySubmitLater(-EAGAIN);
      }
    }
    Arm();
  }

  // The kernel refused the batch for now (EAGAIN, EBUSY, EINTR): the SQEs
  // stay in the SQ; try again shortly instead of spinning the loop.
  void RetrySubmitLater(int rc) {
    if (retry_pending_) return;
    retry_pending_ = true;
    if (!retry_logged_) {
      retry_logged_ = true;
      spdlog::warn("io ring: io_uring_submit failed ({}); retrying", std::strerror(-rc));
    }
    retry_timer_.expires_after(std::chrono::milliseconds(1));
    retry_timer_.async_wait([weak = self_](boost::system::error_code) {
      if (auto self = weak.lock()) {
        self->retry_pending_ = false;
        self->SubmitNow();
      }
    });
  }

  // Reads the eventfd while the kernel owes completions. async_read_some
  // tries the read at once, so a wake-up that came while nobody was
  // waiting is not lost (Asio's epoll registration is edge-triggered).
  void Arm() {
    if (armed_ || Idle()) return;
    armed_ = true;
    efd_.async_read_some(asio::buffer(&efd_value_, sizeof efd_value_),
                         [weak = self_](boost::system::error_code ec, size_t) {
                           if (auto self = weak.lock()) self->OnWake(ec);
                         });
  }

  void OnWake(boost::system::error_code ec) {
    armed_ = false;
    if (ec == asio::error::operation_aborted) return;
    if (ec) spdlog::error("io ring: reading the eventfd failed: {}", ec.message());
    ++stats_.wakeups;
    Drain();
    while (!waiting_.empty() && in_flight_.size() < depth_) {
      Op& op = waiting_.front();
      waiting_.pop_front();
      Prepare(&op);
    }
    SubmitNow();  // this turn's batch: what the freed slots let in; re-arms
    if (stopping_ && Idle()) NotifyStopped();
  }

  // Every completion the CQ holds, until it is empty.
  void Drain() {
    if (threaded_) {
      for (Op* op : TakeDone()) Complete(op, op->res);
      return;
    }
    for (;;) {
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        Complete(cqe);
      }
      if (seen == 0) return;
      io_uring_cq_advance(&ring_, seen);
    }
  }

  void Complete(const io_uring_cqe* cqe) {
    auto* op = static_cast<Op*>(io_uring_cqe_get_data(cqe));
    if (op == nullptr) {  // the CQE of a cancellation
      --cancels_;
      return;
    }
    Complete(op, cqe->res);
  }

  void Complete(Op* op, int32_t res) {
    in_flight_.erase(in_flight_.iterator_to(*op));
    ++stats_.completed;
    Finish(op, res);
  }

  // Posts the operation's handler to its own executor: the caller resumes in
  // a later handler of the loop, never inside the drain.
  void Finish(Op* op, int32_t res) {
    auto handler = std::move(op->handler);
    delete op;
    handler.Post(res);
  }

  void BeginStop() {
    stopping_ = true;
    while (!waiting_.empty()) {
      Op& op = waiting_.front();
      waiting_.pop_front();
      Finish(&op, -ECANCELED);
    }
    SubmitNow();  // so that the cancellations find every prepared op
    if (threaded_) return;  // system calls under way finish on their own
    for (Op& op : in_flight_) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {
        io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) break;  // the ops not cancelled still complete
      }
      io_uring_prep_cancel(sqe, &op, 0);
      io_uring_sqe_set_data(sqe, nullptr);
      ++cancels_;
    }
    SubmitNow();
  }

  void NotifyStopped() {
    auto waiters = std::move(stop_waiters_);
    stop_waiters_.clear();
    for (auto& h : waiters) h.Post();
  }

  // The destructor's path: the kernel may still write into callers' buffers,
  // so wait for it, blocking, before the ring goes.
  void Shutdown() {
    if (!stopping_) BeginStop();
    while (threaded_ && !Idle()) {
      {
        std::unique_lock lock(jobs_mu_);
        done_cv_.wait(lock, [this] { return !done_.empty(); });
      }
      Drain();
    }
    while (!Idle()) {
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) {
        spdlog::critical("io ring: waiting for {} operations at shutdown failed: {}",
                         in_flight_.size(), std::strerror(-rc));
        break;
      }
      Complete(cqe);
      io_uring_cqe_seen(&ring_, cqe);
    }
    NotifyStopped();
    if (slot_ != nullptr) slot_->ring.store(nullptr, std::memory_order_release);
  }

  bool Idle() const { return in_flight_.empty() && cancels_ == 0; }

  // Constant after construction.
  asio::io_context& loop_;
  std::weak_ptr<Impl> self_;
  RingSlot* slot_ = nullptr;
  uint32_t depth_ = 0;
  io_uring ring_{};
  bool ring_ready_ = false;
  asio::posix::stream_descriptor efd_;
  asio::steady_timer retry_timer_;
  const uint32_t max_waiting_;
  const uint32_t submit_batch_;

  // Loop-confined.
  uint64_t efd_value_ = 0;  // the eventfd read lands here
  OpList waiting_;          // FIFO of ops waiting for a slot
  OpList in_flight_;        // prepared or in the kernel
  uint32_t cancels_ = 0;    // cancellation SQEs whose CQE is due
  bool submit_posted_ = false;
  bool armed_ = false;
  bool stopping_ = false;
  bool retry_pending_ = false;
  bool retry_logged_ = false;
  std::vector<detail::PostedHandler<>> stop_waiters_;
  RingStats stats_;

  // The threads backend (threaded_ is constant after Init). jobs_mu_ guards
  // jobs_, done_ and quit_; an Op in jobs_ or done_ is still in in_flight_.
  bool threaded_ = false;
  std::vector<std::thread> workers_;
  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;  // a job queued, or quit_
  std::condition_variable done_cv_;  // a job done (Shutdown waits for them)
  std::deque<Op*> jobs_;
  std::vector<Op*> done_;
  bool quit_ = false;
};

Ring::Ring(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Ring::~Ring() {
  if (impl_) impl_->Shutdown();
}

Result<std::unique_ptr<Ring>> Ring::Create(asio::io_context& loop, const RingOptions& options) {
  if (options.depth == 0 || options.depth > kMaxDepth) return errc::bad_option;
  auto& slot = asio::use_service<RingSlot>(static_cast<asio::execution_context&>(loop));
  if (slot.ring.load() != nullptr) return errc::ring_attached;

  auto impl = std::make_shared<Impl>(loop, options.max_waiting, options.submit_batch);
  impl->self_ = impl;
  if (auto st = impl->Init(options.depth, options.backend, options.threads); !st) return st.error();

  std::unique_ptr<Ring> ring(new Ring(impl));
  Ring* expected = nullptr;
  if (!slot.ring.compare_exchange_strong(expected, ring.get())) {
    ring->impl_.reset();  // never used: nothing to wait for
    return errc::ring_attached;
  }
  impl->slot_ = &slot;
  return ring;
}

Ring* Ring::Of(const asio::any_io_executor& executor) {
  asio::execution_context& ctx = asio::query(executor, asio::execution::context);
  if (!asio::has_service<RingSlot>(ctx)) return nullptr;
  return asio::use_service<RingSlot>(ctx).ring.load(std::memory_order_acquire);
}

Awaitable<Result<int32_t>> Ring::Submit(OpArgs args) {
  Impl& impl = *impl_;
  if (impl.stopping_) co_return errc::stopped;
  if (impl.MustWait() && impl.waiting_.size() >= impl.max_waiting_) co_return errc::overloaded;
  // Nothing below the co_await touches the ring: a ring destroyed while this
  // caller waited still completes it (with errc::stopped or the kernel's
  // result).
  const int32_t res = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(int32_t)>(
      [&impl, &args](auto handler) {
        auto* op = new Impl::Op;
        op->args = args;
        op->handler = detail::PostedHandler<int32_t>(std::move(handler));
        impl.Start(op);
      },
      asio::use_awaitable);
  if (res < 0) co_return FromKernel(res);
  co_return res;
}

Awaitable<Result<size_t>> Ring::Read(int fd, void* buf, size_t len, uint64_t offset) {
  OpArgs a;
  a.opcode = IORING_OP_READ;
  a.fd = fd;
  a.addr = buf;
  a.len = std::min(len, kMaxTransfer);
  a.offset = offset;
  auto res = co_await Submit(a);
  MEMKV_CO_TRY(res);
  co_return static_cast<size_t>(*res);
}

Awaitable<Result<size_t>> Ring::Write(int fd, const void* buf, size_t len, uint64_t offset) {
  OpArgs a;
  a.opcode = IORING_OP_WRITE;
  a.fd = fd;
  a.addr = const_cast<void*>(buf);
  a.len = std::min(len, kMaxTransfer);
  a.offset = offset;
  auto res = co_await Submit(a);
  MEMKV_CO_TRY(res);
  co_return static_cast<size_t>(*res);
}

Awaitable<Status> Ring::Fsync(int fd, SyncKind kind) {
  OpArgs a;
  a.opcode = IORING_OP_FSYNC;
  a.fd = fd;
  a.flags = kind == SyncKind::kData ? IORING_FSYNC_DATASYNC : 0;
  auto res = co_await Submit(a);
  MEMKV_CO_TRY(res);
  co_return Status{};
}

Awaitable<Status> Ring::Fallocate(int fd, int mode, uint64_t offset, uint64_t len) {
  OpArgs a;
  a.opcode = IORING_OP_FALLOCATE;
  a.fd = fd;
  a.flags = static_cast<uint32_t>(mode);
  a.offset = offset;
  a.len = len;
  auto res = co_await Submit(a);
  MEMKV_CO_TRY(res);
  co_return Status{};
}

Awaitable<void> Ring::Stop() {
  Impl& impl = *impl_;
  if (!impl.stopping_) impl.BeginStop();
  if (impl.Idle()) co_return;
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&impl](auto handler) { impl.stop_waiters_.emplace_back(std::move(handler)); },
      asio::use_awaitable);
}

uint32_t Ring::depth() const { return impl_->depth_; }
uint32_t Ring::in_flight() const { return static_cast<uint32_t>(impl_->in_flight_.size()); }
size_t Ring::waiting() const { return impl_->waiting_.size(); }
bool Ring::stopping() const { return impl_->stopping_; }
uint32_t Ring::completions_ready() const {
  if (impl_->threaded_) {
    std::lock_guard lock(impl_->jobs_mu_);
    return static_cast<uint32_t>(impl_->done_.size());
  }
  return io_uring_cq_ready(&impl_->ring_);
}
const char* Ring::backend() const { return impl_->threaded_ ? "threads" : "io_uring"; }
const RingStats& Ring::stats() const { return impl_->stats_; }

}  // namespace memkv::io
