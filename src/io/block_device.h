#pragma once
// io::BlockDevice: the one interface the store sees a drive through. Real
// implementations: RawDevice (a block device, O_DIRECT), FileDevice (a
// regular file), MemoryDevice (DRAM). Test implementations: FaultyDevice and
// PowerCutDevice wrap another device.
//
// Every offset, length and buffer address is a multiple of block_size()
// (what O_DIRECT needs; the DRAM and test devices check it too, so that code
// tested on them runs on real drives). A range past size() is
// errc::out_of_range. Operations are awaited on a loop: devices that do I/O
// through io_uring use the ring of the loop that calls them (Ring::Of), so
// one device serves every loop.
//
// Ownership and threads: the device is owned by whoever opened it (the drive
// set, a test) and may be called from several loops at once. A device holds
// no lock across an await; concurrent operations on overlapping ranges race
// as they do on a real drive (the store never issues them).
//
// Durability: a completed Write is durable only after a later Flush has
// completed. Discard is a hint: the range may read back as zeros or as the
// old bytes. ZeroFill makes the range read back as zeros (durably after a
// Flush).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/result.h"
#include "io/asio_fwd.h"

namespace memkv::io {

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  // The path or label that messages name the device by.
  virtual const std::string& name() const = 0;
  virtual uint64_t size() const = 0;
  virtual uint32_t block_size() const = 0;

  // Reads into `out`; the count is short only when the medium returned less
  // (the end of a truncated file, an injected fault). ReadFull turns a short
  // count into errc::short_read.
  virtual Awaitable<Result<size_t>> Read(uint64_t offset, std::span<std::byte> out) = 0;
  // Writes all of `data` or fails.
  virtual Awaitable<Status> Write(uint64_t offset, std::span<const std::byte> data) = 0;
  // Makes every write completed before the call durable (fdatasync: the
  // drive's cache is flushed too).
  virtual Awaitable<Status> Flush() = 0;
  virtual Awaitable<Status> Discard(uint64_t offset, uint64_t len) = 0;
  virtual Awaitable<Status> ZeroFill(uint64_t offset, uint64_t len) = 0;
};

// Reads exactly out.size() bytes or fails (errc::short_read for a short count).
Awaitable<Status> ReadFull(BlockDevice& device, uint64_t offset, std::span<std::byte> out);

// The argument checks every device applies: alignment of offset, length and
// (when given) the buffer address to block_size, and the range within size.
Status CheckAccess(const BlockDevice& device, uint64_t offset, uint64_t len,
                   const void* buffer = nullptr);

}  // namespace memkv::io
