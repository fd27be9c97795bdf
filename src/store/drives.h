#pragma once
// Opening drives by path, for the storage modes that have them: `file` (a
// regular file) and `direct` (a raw block device, O_DIRECT). Each open takes
// the drive's exclusive lock: a drive that a running memkv holds is refused.

#include <memory>
#include <string>

#include "common/result.h"
#include "io/block_device.h"
#include "store/store.h"

namespace memkv::io {
class BlockingPool;
}

namespace memkv::store {

// `helpers` runs the raw device's slow ioctls; it must outlive the device.
Result<std::unique_ptr<io::BlockDevice>> OpenDrive(const std::string& path, Mode mode,
                                                   io::BlockingPool& helpers);

// Whether OpenDrive failed because another process holds the drive's lock.
bool DriveInUse(const error_code& ec);

// The mode a path calls for: direct for a block device, file for anything
// else (which OpenDrive then checks is a regular file).
Mode ModeOfPath(const std::string& path);

// Creates a sparse file of `size` bytes (rounded down to 4 KiB) to serve as a
// drive in file mode; refuses to overwrite an existing path.
Status CreateDriveFile(const std::string& path, uint64_t size);

}  // namespace memkv::store
