#include "store/drives.h"

#include <sys/stat.h>

#include "io/error.h"
#include "io/file_device.h"
#include "io/raw_device.h"
#include "store/superblock.h"

namespace memkv::store {

Result<std::unique_ptr<io::BlockDevice>> OpenDrive(const std::string& path, Mode mode,
                                                   io::BlockingPool& helpers) {
  if (mode == Mode::kDirect) {
    auto d = io::RawDevice::Open(path, helpers);
    if (!d) return d.error();
    return std::unique_ptr<io::BlockDevice>(std::move(*d));
  }
  auto d = io::FileDevice::Open(path);
  if (!d) return d.error();
  return std::unique_ptr<io::BlockDevice>(std::move(*d));
}

Mode ModeOfPath(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) return Mode::kDirect;
  return Mode::kFile;
}

Status CreateDriveFile(const std::string& path, uint64_t size) {
  return io::FileDevice::CreateSparse(path, size / kPageSize * kPageSize);
}

bool DriveInUse(const error_code& ec) { return ec == io::errc::device_in_use; }

}  // namespace memkv::store
