#include "io/raw_device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <boost/asio/awaitable.hpp>

#include "io/blocking_pool.h"
#include "io/error.h"

namespace memkv::io {

namespace {

error_code Errno() { return {errno, boost::system::system_category()}; }

// BLKDISCARD / BLKZEROOUT over [offset, offset + len), on a helper thread.
std::function<Status()> RangeIoctl(int fd, unsigned long request, uint64_t offset, uint64_t len) {
  return [fd, request, offset, len]() -> Status {
    uint64_t range[2] = {offset, len};
    if (::ioctl(fd, request, range) == 0) return {};
    return Errno();
  };
}

}  // namespace

RawDevice::RawDevice(std::string name, int fd, uint64_t size, uint32_t block_size,
                     BlockingPool& helpers)
    : FdDevice(std::move(name), fd, size, block_size, /*direct=*/true), helpers_(helpers) {}

Result<std::unique_ptr<RawDevice>> RawDevice::Open(const std::string& path, BlockingPool& helpers) {
  const int fd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_EXCL | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EBUSY) return errc::device_in_use;
    return Errno();
  }
  auto fail = [fd](error_code ec) {
    ::close(fd);
    return ec;
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(Errno());
  if (!S_ISBLK(st.st_mode)) return fail(errc::not_block_device);
  if (auto locked = LockExclusive(fd); !locked) return fail(locked.error());
  uint64_t size = 0;
  if (::ioctl(fd, BLKGETSIZE64, &size) != 0) return fail(Errno());
  int logical = 0;
  if (::ioctl(fd, BLKSSZGET, &logical) != 0) return fail(Errno());
  // 4 KiB satisfies O_DIRECT on 512-byte and 4 KiB drives alike.
  const uint32_t block_size = std::max<uint32_t>(4096, static_cast<uint32_t>(logical));
  size = size / block_size * block_size;
  return std::unique_ptr<RawDevice>(new RawDevice(path, fd, size, block_size, helpers));
}

Awaitable<Status> RawDevice::Discard(uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, len));
  auto st = co_await helpers_.Run(RangeIoctl(fd(), BLKDISCARD, offset, len));
  if (!st && (st.error() == boost::system::errc::operation_not_supported ||
              st.error() == boost::system::errc::not_supported))
    co_return Status{};
  co_return st;
}

Awaitable<Status> RawDevice::ZeroFill(uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, len));
  auto st = co_await helpers_.Run(RangeIoctl(fd(), BLKZEROOUT, offset, len));
  co_return st;
}

}  // namespace memkv::io
