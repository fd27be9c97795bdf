#include "client/shared_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "client/error.h"

namespace memkv::client {

namespace {
std::atomic<uint32_t> g_next_region_id{1};

error_code SysError(int err) { return {err, boost::system::system_category()}; }
}  // namespace

Result<std::shared_ptr<SharedRegion>> SharedRegion::Create(uint64_t size, const std::string& name) {
  if (size == 0) return errc::bad_argument;
  const int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return SysError(errno);
  auto fail = [fd](int err) -> error_code {
    ::close(fd);
    return SysError(err);
  };
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return fail(errno);
  // The server maps this region: a shrink under it would turn its copies
  // into SIGBUS, so the server accepts only regions sealed against it.
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0) return fail(errno);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail(errno);
  return std::shared_ptr<SharedRegion>(
      new SharedRegion(g_next_region_id.fetch_add(1), fd, size, static_cast<std::byte*>(p)));
}

SharedRegion::~SharedRegion() {
  ::munmap(data_, size_);
  ::close(fd_);
}

}  // namespace memkv::client
