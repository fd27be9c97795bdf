#include "io/fd_device.h"

#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include "io/error.h"
#include "io/ring.h"

namespace memkv::io {

namespace asio = boost::asio;

namespace {

Awaitable<Result<Ring*>> CallerRing() {
  Ring* ring = Ring::Of(co_await asio::this_coro::executor);
  if (ring == nullptr) co_return errc::no_ring;
  co_return ring;
}

constexpr size_t kZeroChunk = 1 << 20;

// 1 MiB of zeros, aligned for O_DIRECT; made once, read-only, never freed.
const std::byte* ZeroChunk() {
  static const std::byte* zeros = [] {
    auto* p = static_cast<std::byte*>(std::aligned_alloc(64 * 1024, kZeroChunk));
    std::memset(p, 0, kZeroChunk);
    return p;
  }();
  return zeros;
}

}  // namespace

FdDevice::FdDevice(std::string name, int fd, uint64_t size, uint32_t block_size, bool direct)
    : name_(std::move(name)), fd_(fd), size_(size), block_size_(block_size), direct_(direct) {}

FdDevice::~FdDevice() { ::close(fd_); }

Awaitable<Result<size_t>> FdDevice::Read(uint64_t offset, std::span<std::byte> out) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, out.size(), out.data()));
  auto ring = co_await CallerRing();
  MEMKV_CO_TRY(ring);
  size_t done = 0;
  while (done < out.size()) {
    auto n = co_await (*ring)->Read(fd_, out.data() + done, out.size() - done, offset + done);
    MEMKV_CO_TRY(n);
    if (*n == 0) break;  // end of file: the caller sees the short count
    done += *n;
  }
  co_return done;
}

Awaitable<Status> FdDevice::Write(uint64_t offset, std::span<const std::byte> data) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, data.size(), data.data()));
  auto ring = co_await CallerRing();
  MEMKV_CO_TRY(ring);
  size_t done = 0;
  while (done < data.size()) {
    auto n = co_await (*ring)->Write(fd_, data.data() + done, data.size() - done, offset + done);
    MEMKV_CO_TRY(n);
    if (*n == 0) co_return errc::short_write;
    done += *n;
  }
  co_return Status{};
}

Awaitable<Status> FdDevice::Flush() {
  auto ring = co_await CallerRing();
  MEMKV_CO_TRY(ring);
  auto st = co_await (*ring)->Fsync(fd_, SyncKind::kData);
  co_return st;
}

Status LockExclusive(int fd) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return {};
  if (errno == EWOULDBLOCK) return errc::device_in_use;
  return error_code(errno, boost::system::system_category());
}

Awaitable<Status> WriteZeros(BlockDevice& device, uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(device, offset, len));
  const std::byte* zeros = ZeroChunk();
  while (len > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(len, kZeroChunk));
    auto st = co_await device.Write(offset, {zeros, n});
    MEMKV_CO_TRY(st);
    offset += n;
    len -= n;
  }
  co_return Status{};
}

}  // namespace memkv::io
