#include "io/memory_device.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/awaitable.hpp>

#include "io/error.h"

namespace memkv::io {

namespace {
uint64_t PageSize() { return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }
}  // namespace

Result<std::unique_ptr<MemoryDevice>> MemoryDevice::Create(std::string name, uint64_t size,
                                                           uint32_t block_size) {
  if (block_size < 512 || block_size > 65536 || (block_size & (block_size - 1)) != 0 || size == 0 ||
      size % block_size != 0)
    return errc::bad_option;
  const uint64_t page = PageSize();
  const uint64_t mapped = (size + page - 1) / page * page;
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return error_code(errno, boost::system::system_category());
  return std::unique_ptr<MemoryDevice>(
      new MemoryDevice(std::move(name), static_cast<std::byte*>(p), mapped, size, block_size));
}

MemoryDevice::MemoryDevice(std::string name, std::byte* base, uint64_t mapped, uint64_t size,
                           uint32_t block_size)
    : name_(std::move(name)), base_(base), mapped_(mapped), size_(size), block_size_(block_size) {}

MemoryDevice::~MemoryDevice() { ::munmap(base_, mapped_); }

Awaitable<Result<size_t>> MemoryDevice::Read(uint64_t offset, std::span<std::byte> out) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, out.size(), out.data()));
  std::memcpy(out.data(), base_ + offset, out.size());
  co_return out.size();
}

Awaitable<Status> MemoryDevice::Write(uint64_t offset, std::span<const std::byte> data) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, data.size(), data.data()));
  std::memcpy(base_ + offset, data.data(), data.size());
  co_return Status{};
}

Awaitable<Status> MemoryDevice::Flush() { co_return Status{}; }

Awaitable<Status> MemoryDevice::Discard(uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, len));
  Zero(offset, len);
  co_return Status{};
}

Awaitable<Status> MemoryDevice::ZeroFill(uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, len));
  Zero(offset, len);
  co_return Status{};
}

// Whole pages go back to the kernel (a private anonymous page reads as zeros
// after MADV_DONTNEED); the partial pages at the edges are cleared.
void MemoryDevice::Zero(uint64_t offset, uint64_t len) {
  const uint64_t page = PageSize();
  const uint64_t end = offset + len;
  const uint64_t first = (offset + page - 1) / page * page;
  const uint64_t last = end / page * page;
  if (first >= last) {
    std::memset(base_ + offset, 0, len);
    return;
  }
  std::memset(base_ + offset, 0, first - offset);
  if (::madvise(base_ + first, last - first, MADV_DONTNEED) != 0)
    std::memset(base_ + first, 0, last - first);
  std::memset(base_ + last, 0, end - last);
}

}  // namespace memkv::io
