#pragma once
// io::MemoryDevice: a block device in DRAM, for storage.mode memory and for
// tests (the stable medium under the fault-injecting devices).
//
// Owner: whoever creates it. Memory comes from one anonymous mapping that
// costs nothing until written; Discard and ZeroFill give pages back.
// Operations complete without suspending and take no lock (see BlockDevice
// for overlapping ranges). Flush has nothing to do.

#include <memory>
#include <span>
#include <string>

#include "io/block_device.h"

namespace memkv::io {

class MemoryDevice final : public BlockDevice {
 public:
  // `size` is a multiple of `block_size`, a power of two from 512 to 64 KiB
  // (errc::bad_option otherwise).
  static Result<std::unique_ptr<MemoryDevice>> Create(std::string name, uint64_t size,
                                                      uint32_t block_size = 4096);
  ~MemoryDevice() override;
  MemoryDevice(const MemoryDevice&) = delete;
  MemoryDevice& operator=(const MemoryDevice&) = delete;

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  uint32_t block_size() const override { return block_size_; }

  Awaitable<Result<size_t>> Read(uint64_t offset, std::span<std::byte> out) override;
  Awaitable<Status> Write(uint64_t offset, std::span<const std::byte> data) override;
  Awaitable<Status> Flush() override;
  Awaitable<Status> Discard(uint64_t offset, uint64_t len) override;
  Awaitable<Status> ZeroFill(uint64_t offset, uint64_t len) override;

  // The medium itself, for tests that look under the interface.
  std::span<const std::byte> contents() const { return {base_, size_}; }

 private:
  MemoryDevice(std::string name, std::byte* base, uint64_t mapped, uint64_t size,
               uint32_t block_size);
  void Zero(uint64_t offset, uint64_t len);

  // Constant after construction.
  const std::string name_;
  std::byte* const base_;
  const uint64_t mapped_;
  const uint64_t size_;
  const uint32_t block_size_;
};

}  // namespace memkv::io
