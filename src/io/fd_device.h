#pragma once
// io::FdDevice: what FileDevice and RawDevice share: an fd this object owns
// (closing it releases the exclusive lock), its Read, Write and Flush
// through the io::Ring of the calling loop, continuing after short
// transfers. Constant after construction; callable from any loop that has a
// ring (errc::no_ring otherwise).

#include <memory>
#include <string>

#include "io/block_device.h"

namespace memkv::io {

class FdDevice : public BlockDevice {
 public:
  ~FdDevice() override;
  FdDevice(const FdDevice&) = delete;
  FdDevice& operator=(const FdDevice&) = delete;

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  uint32_t block_size() const override { return block_size_; }
  // Whether the fd bypasses the page cache (O_DIRECT).
  bool direct() const { return direct_; }

  Awaitable<Result<size_t>> Read(uint64_t offset, std::span<std::byte> out) override;
  Awaitable<Status> Write(uint64_t offset, std::span<const std::byte> data) override;
  // fdatasync: the data, the metadata needed to read it (a sparse file's new
  // extents), and the drive's write cache.
  Awaitable<Status> Flush() override;

 protected:
  FdDevice(std::string name, int fd, uint64_t size, uint32_t block_size, bool direct);
  int fd() const { return fd_; }

 private:
  const std::string name_;
  const int fd_;
  const uint64_t size_;
  const uint32_t block_size_;
  const bool direct_;
};

// flock(LOCK_EX | LOCK_NB): errc::device_in_use when another process (or
// another open of the same file) holds the lock.
Status LockExclusive(int fd);

// Writes zeros over [offset, offset + len) through the calling loop's ring,
// from one shared, aligned block of zeros (O_DIRECT-safe).
Awaitable<Status> WriteZeros(BlockDevice& device, uint64_t offset, uint64_t len);

}  // namespace memkv::io
