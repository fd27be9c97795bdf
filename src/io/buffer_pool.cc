#include "io/buffer_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/size.h"
#include "io/error.h"
#include "io/posted_handler.h"

namespace memkv::io {

namespace asio = boost::asio;

namespace {

constexpr size_t kAlign = 4096;

// The default huge page size (what MAP_HUGETLB maps), from /proc/meminfo.
size_t HugePageSize() {
  size_t kib = 2048;
  if (FILE* f = std::fopen("/proc/meminfo", "re")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::sscanf(line, "Hugepagesize: %zu kB", &kib) == 1) break;
    }
    std::fclose(f);
  }
  return kib * 1024;
}

}  // namespace

Buffer::Buffer(Buffer&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      index_(other.index_),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    index_ = other.index_;
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void Buffer::Release() {
  if (pool_ == nullptr) return;
  std::exchange(pool_, nullptr)->Return(index_);
  data_ = nullptr;
  size_ = 0;
}

class BufferPool::Impl {
 public:
  // Constant after construction.
  std::byte* base = nullptr;
  size_t mapped = 0;
  size_t chunk_size = 0;
  uint32_t count = 0;
  uint32_t max_waiting = 0;
  bool huge = false;

  // Guarded by mu.
  mutable std::mutex mu;
  std::vector<uint32_t> free;  // indices of free buffers, used as a stack
  size_t in_use = 0;
  std::deque<detail::PostedHandler<Result<Buffer>>> waiters;  // FIFO

  ~Impl() {
    if (base != nullptr) ::munmap(base, mapped);
  }
};

BufferPool::BufferPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<BufferPool>> BufferPool::Create(const BufferPoolOptions& options) {
  if (options.count == 0 || options.chunk_size == 0 || options.chunk_size % kAlign != 0)
    return errc::bad_option;
  auto impl = std::make_unique<Impl>();
  impl->chunk_size = options.chunk_size;
  impl->count = options.count;
  impl->max_waiting = options.max_waiting;
  const size_t bytes = options.chunk_size * options.count;

  void* p = MAP_FAILED;
  if (options.huge_pages) {
    const size_t huge = HugePageSize();
    const size_t mapped = (bytes + huge - 1) / huge * huge;
    p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
               -1, 0);
    if (p != MAP_FAILED) {
      impl->mapped = mapped;
      impl->huge = true;
    } else {
      spdlog::info(
          "buffer pool: no huge pages for {} ({}); using ordinary pages "
          "(reserve them with vm.nr_hugepages)",
          FormatSize(mapped), std::strerror(errno));
    }
  }
  if (p == MAP_FAILED) {
    p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return error_code(errno, boost::system::system_category());
    impl->mapped = bytes;
    ::madvise(p, bytes, MADV_HUGEPAGE);  // transparent huge pages, where enabled
  }
  impl->base = static_cast<std::byte*>(p);
  impl->free.reserve(options.count);
  for (uint32_t i = options.count; i > 0; --i) impl->free.push_back(i - 1);
  return std::unique_ptr<BufferPool>(new BufferPool(std::move(impl)));
}

BufferPool::~BufferPool() {
  std::lock_guard lock(impl_->mu);
  if (impl_->in_use != 0) {
    spdlog::critical("buffer pool destroyed with {} buffers still in use", impl_->in_use);
    std::abort();
  }
}

Result<Buffer> BufferPool::TryAcquire() {
  std::lock_guard lock(impl_->mu);
  if (impl_->free.empty()) return errc::pool_exhausted;
  const uint32_t index = impl_->free.back();
  impl_->free.pop_back();
  ++impl_->in_use;
  return Buffer(this, index, impl_->base + size_t{index} * impl_->chunk_size, impl_->chunk_size);
}

Awaitable<Result<Buffer>> BufferPool::Acquire() {
  if (auto b = TryAcquire(); b || b.error() != errc::pool_exhausted) co_return b;
  auto b = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<Buffer>)>(
      [this](auto handler) {
        detail::PostedHandler<Result<Buffer>> waiter(std::move(handler));
        std::unique_lock lock(impl_->mu);
        // Returned between TryAcquire and here: take it now.
        if (!impl_->free.empty()) {
          const uint32_t index = impl_->free.back();
          impl_->free.pop_back();
          ++impl_->in_use;
          lock.unlock();
          waiter.Post(Buffer(this, index, impl_->base + size_t{index} * impl_->chunk_size,
                             impl_->chunk_size));
        } else if (impl_->waiters.size() >= impl_->max_waiting) {
          lock.unlock();
          waiter.Post(errc::overloaded);
        } else {
          impl_->waiters.push_back(std::move(waiter));
        }
      },
      asio::use_awaitable);
  co_return b;
}

// A returned buffer goes straight to the oldest waiter, if any (it stays
// counted as in use), else back to the free stack.
void BufferPool::Return(uint32_t index) {
  std::unique_lock lock(impl_->mu);
  if (!impl_->waiters.empty()) {
    auto waiter = std::move(impl_->waiters.front());
    impl_->waiters.pop_front();
    lock.unlock();
    waiter.Post(
        Buffer(this, index, impl_->base + size_t{index} * impl_->chunk_size, impl_->chunk_size));
    return;
  }
  impl_->free.push_back(index);
  --impl_->in_use;
}

size_t BufferPool::chunk_size() const { return impl_->chunk_size; }
size_t BufferPool::capacity() const { return impl_->count; }
size_t BufferPool::in_use() const {
  std::lock_guard lock(impl_->mu);
  return impl_->in_use;
}
size_t BufferPool::waiting() const {
  std::lock_guard lock(impl_->mu);
  return impl_->waiters.size();
}
bool BufferPool::huge_pages() const { return impl_->huge; }
std::span<std::byte> BufferPool::region() const { return {impl_->base, impl_->mapped}; }

}  // namespace memkv::io
