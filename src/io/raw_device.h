#pragma once
// io::RawDevice: a drive that is a block device (storage.mode direct), opened
// O_DIRECT | O_EXCL (the kernel refuses it while mounted or held exclusively)
// and flock'ed, so a drive held by a running process is refused.
//
// Discard (BLKDISCARD) and ZeroFill (BLKZEROOUT) block in the kernel, so they
// run on the BlockingPool given at Open, which must outlive the device.
// Threads and ownership as FdDevice.

#include <memory>
#include <string>

#include "io/fd_device.h"

namespace memkv::io {

class BlockingPool;

class RawDevice final : public FdDevice {
 public:
  // Errors: the kernel's (ENOENT, EACCES, ...), errc::not_block_device,
  // errc::device_in_use (EBUSY from O_EXCL, or the flock). Callers name the
  // path in their message ("<path>: <error>").
  static Result<std::unique_ptr<RawDevice>> Open(const std::string& path, BlockingPool& helpers);

  // A drive without discard support keeps the old bytes (a hint only).
  Awaitable<Status> Discard(uint64_t offset, uint64_t len) override;
  // BLKZEROOUT: the drive writes zeros (or unmaps with guaranteed zeros).
  Awaitable<Status> ZeroFill(uint64_t offset, uint64_t len) override;

 private:
  RawDevice(std::string name, int fd, uint64_t size, uint32_t block_size, BlockingPool& helpers);
  BlockingPool& helpers_;
};

}  // namespace memkv::io
