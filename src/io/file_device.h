#pragma once
// io::FileDevice: a drive that is a regular file (storage.mode file; the
// embedded default's sparse files). O_DIRECT where the file system allows
// it; where it does not, buffered I/O with one logged note (Flush's
// fdatasync still makes writes durable). Holds the file's exclusive flock
// while open, so a second memkv on the same file is refused.
//
// Discard punches a hole (the file stays sparse); ZeroFill uses
// FALLOC_FL_ZERO_RANGE, or writes zeros where the file system lacks it.
// Threads and ownership as FdDevice.

#include <memory>
#include <string>

#include "io/fd_device.h"

namespace memkv::io {

struct FileDeviceOptions {
  bool direct = true;  // try O_DIRECT first
};

class FileDevice final : public FdDevice {
 public:
  // Opens an existing regular file read-write. Errors: the kernel's (ENOENT,
  // EACCES, ...), errc::not_regular_file, errc::device_in_use. Callers name
  // the path in their message ("<path>: <error>").
  static Result<std::unique_ptr<FileDevice>> Open(const std::string& path,
                                                  const FileDeviceOptions& options = {});
  // Creates `path` as a sparse file of `size` bytes (a multiple of 4 KiB);
  // EEXIST if it exists.
  static Status CreateSparse(const std::string& path, uint64_t size);

  Awaitable<Status> Discard(uint64_t offset, uint64_t len) override;
  Awaitable<Status> ZeroFill(uint64_t offset, uint64_t len) override;

 private:
  using FdDevice::FdDevice;
};

}  // namespace memkv::io
