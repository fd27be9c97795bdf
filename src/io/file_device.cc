#include "io/file_device.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include "io/error.h"
#include "io/ring.h"

namespace memkv::io {

namespace asio = boost::asio;

namespace {

constexpr uint32_t kFileBlockSize = 4096;

error_code Errno() { return {errno, boost::system::system_category()}; }

bool Unsupported(const error_code& ec) {
  return ec == boost::system::errc::operation_not_supported ||
         ec == boost::system::errc::not_supported;
}

}  // namespace

Result<std::unique_ptr<FileDevice>> FileDevice::Open(const std::string& path,
                                                     const FileDeviceOptions& options) {
  // Checked before the open, so that O_DIRECT's EINVAL on a device node is
  // not mistaken for a file system without O_DIRECT.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Errno();
  if (!S_ISREG(st.st_mode)) return errc::not_regular_file;

  const int flags = O_RDWR | O_CLOEXEC;
  bool direct = options.direct;
  int fd = ::open(path.c_str(), flags | (direct ? O_DIRECT : 0));
  if (fd < 0 && direct && errno == EINVAL) {
    direct = false;
    fd = ::open(path.c_str(), flags);
    if (fd >= 0)
      spdlog::info(
          "{}: the file system does not support O_DIRECT; using buffered I/O "
          "(flushes still make writes durable)",
          path);
  }
  if (fd < 0) return Errno();
  if (::fstat(fd, &st) != 0) {
    auto ec = Errno();
    ::close(fd);
    return ec;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return errc::not_regular_file;
  }
  if (auto locked = LockExclusive(fd); !locked) {
    ::close(fd);
    return locked.error();
  }
  // A tail shorter than a block is not addressable through O_DIRECT.
  const uint64_t size = static_cast<uint64_t>(st.st_size) / kFileBlockSize * kFileBlockSize;
  return std::unique_ptr<FileDevice>(new FileDevice(path, fd, size, kFileBlockSize, direct));
}

Status FileDevice::CreateSparse(const std::string& path, uint64_t size) {
  if (size == 0 || size % kFileBlockSize != 0) return errc::misaligned;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Errno();
  Status result;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) result = Errno();
  ::close(fd);
  if (!result) ::unlink(path.c_str());
  return result;
}

Awaitable<Status> FileDevice::Discard(uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, len));
  Ring* ring = Ring::Of(co_await asio::this_coro::executor);
  if (ring == nullptr) co_return errc::no_ring;
  auto st = co_await ring->Fallocate(fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);
  // Discard is a hint: a file system without holes keeps the old bytes.
  if (!st && Unsupported(st.error())) co_return Status{};
  co_return st;
}

Awaitable<Status> FileDevice::ZeroFill(uint64_t offset, uint64_t len) {
  MEMKV_CO_TRY(CheckAccess(*this, offset, len));
  Ring* ring = Ring::Of(co_await asio::this_coro::executor);
  if (ring == nullptr) co_return errc::no_ring;
  auto st = co_await ring->Fallocate(fd(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len);
  if (!st && Unsupported(st.error())) {
    auto written = co_await WriteZeros(*this, offset, len);
    co_return written;
  }
  co_return st;
}

}  // namespace memkv::io
