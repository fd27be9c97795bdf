#pragma once
// io::FaultyDevice: a test device that wraps another and fails chosen
// operations on purpose (LevelDB's fault-injecting Env, for drives): the Nth
// write fails, or tears (only a prefix reaches the medium), the Nth read
// fails or comes back short, the Nth flush fails. Lives in src/io so that the
// store's tests can put it under a drive set.
//
// Owner: the test, sharing the inner device. Thread-safe: the counters and
// armed faults are guarded by mu_, never held across an await. Each kind of
// operation is counted from construction; a fault armed with n = 1 hits the
// next operation of that kind, n = 2 the one after, and fires once.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "io/block_device.h"

namespace memkv::io {

class FaultyDevice final : public BlockDevice {
 public:
  explicit FaultyDevice(std::shared_ptr<BlockDevice> inner);

  // The nth write from now fails with errc::injected_fault and writes nothing.
  void FailNthWrite(uint64_t n);
  // The nth write from now writes only its first `prefix` bytes (rounded down
  // to the block size), then fails with errc::injected_fault, or, with
  // report_success, claims success (a drive that lies).
  void TearNthWrite(uint64_t n, uint64_t prefix, bool report_success = false);
  // The nth read from now fails with errc::injected_fault.
  void FailNthRead(uint64_t n);
  // The nth read from now reads only its first `bytes` (rounded down to the
  // block size) and returns that count; the rest of the buffer is untouched.
  void ShortNthRead(uint64_t n, uint64_t bytes);
  // The nth flush from now fails with errc::injected_fault (nothing flushed).
  void FailNthFlush(uint64_t n);
  // Disarms every fault not yet fired.
  void Clear();

  uint64_t reads() const;
  uint64_t writes() const;
  uint64_t flushes() const;
  uint64_t faults_injected() const;

  const std::string& name() const override { return inner_->name(); }
  uint64_t size() const override { return inner_->size(); }
  uint32_t block_size() const override { return inner_->block_size(); }
  Awaitable<Result<size_t>> Read(uint64_t offset, std::span<std::byte> out) override;
  Awaitable<Status> Write(uint64_t offset, std::span<const std::byte> data) override;
  Awaitable<Status> Flush() override;
  Awaitable<Status> Discard(uint64_t offset, uint64_t len) override;
  Awaitable<Status> ZeroFill(uint64_t offset, uint64_t len) override;

 private:
  enum class Kind { kFailWrite, kTearWrite, kFailRead, kShortRead, kFailFlush };
  struct Fault {
    Kind kind;
    uint64_t at;     // the operation count (of its kind) it fires on
    uint64_t bytes;  // prefix of a torn write, count of a short read
    bool report_success;
  };
  // Counts one operation of the kinds given and takes the fault armed for
  // it, if any.
  std::optional<Fault> Next(uint64_t& counter, Kind a, Kind b);
  void Arm(Kind kind, uint64_t& counter, uint64_t n, uint64_t bytes, bool report_success);

  // Constant after construction.
  const std::shared_ptr<BlockDevice> inner_;

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::vector<Fault> armed_;
  uint64_t reads_ = 0;
  uint64_t writes_ = 0;
  uint64_t flushes_ = 0;
  uint64_t injected_ = 0;
};

}  // namespace memkv::io
