#pragma once
// io::PowerCutDevice: a test device that models a drive's volatile write
// cache over a stable medium (another BlockDevice, usually a MemoryDevice).
// Writes land in the volatile layer and reads see them; a completed Flush
// moves every write completed before it began to the medium; CutPower()
// drops every write not followed by a completed flush, as a power cut does.
// Discard keeps the old data (as a drive may), so code that needs zeros has
// to write them (ZeroFill writes zeros through the volatile layer).
//
// A real cache also writes blocks back on its own, in any order, before any
// flush asks it to. KeepAtCut(p) models that: at a cut, each unflushed block
// survives with probability p, so a write can land without an earlier one,
// or in part (torn); LandSurvivors() puts the survivors on the medium.
//
// Flushes take turns (a later one waits, suspended, for the one in progress),
// so an older flush never lands stale blocks over a newer one's. A flush in
// progress when the power is cut may have moved part of its writes to the
// medium, as on real hardware; it returns errc::power_cut.
//
// Owner: the test, sharing the stable device (which it may reopen a store on
// after a cut). Thread-safe: the layers are guarded by mu_, never held
// across an await.

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "io/block_device.h"

namespace memkv::io::detail {
template <class... Args>
class PostedHandler;
}  // namespace memkv::io::detail

namespace memkv::io {

class PowerCutDevice final : public BlockDevice {
 public:
  explicit PowerCutDevice(std::shared_ptr<BlockDevice> stable);
  ~PowerCutDevice() override;

  // Drops every write not covered by a completed flush (but the blocks
  // KeepAtCut keeps).
  void CutPower();
  // From now on, each unflushed block survives a cut with `probability`,
  // drawn from a generator seeded with `seed`. 0 (the default): none does.
  void KeepAtCut(double probability, uint64_t seed);
  // Writes the blocks that survived the cuts so far to the medium, after
  // the work in flight at the cut has ended.
  Awaitable<Status> LandSurvivors();
  // Bytes written (or zero-filled) since they were last flushed.
  uint64_t unflushed_bytes() const;
  uint64_t cuts() const;

  const std::string& name() const override { return stable_->name(); }
  uint64_t size() const override { return stable_->size(); }
  uint32_t block_size() const override { return stable_->block_size(); }
  Awaitable<Result<size_t>> Read(uint64_t offset, std::span<std::byte> out) override;
  Awaitable<Status> Write(uint64_t offset, std::span<const std::byte> data) override;
  Awaitable<Status> Flush() override;
  // Checks its arguments and keeps every byte.
  Awaitable<Status> Discard(uint64_t offset, uint64_t len) override;
  Awaitable<Status> ZeroFill(uint64_t offset, uint64_t len) override;

 private:
  // Block index -> the block's bytes; a null pointer stands for zeros.
  using Layer = std::map<uint64_t, std::shared_ptr<const std::byte[]>>;
  class FlushTurn;

  Awaitable<void> WaitFlushTurn();
  void EndFlushTurn();

  // Constant after construction.
  const std::shared_ptr<BlockDevice> stable_;

  // Guarded by mu_.
  mutable std::mutex mu_;
  Layer pending_;                    // written, no flush begun since
  std::shared_ptr<Layer> flushing_;  // taken by the flush in progress
  bool flush_busy_ = false;          // a flush has the turn
  // Flushes waiting for the turn, FIFO (a list: its element type is only
  // declared here).
  std::list<detail::PostedHandler<>> flush_waiters_;
  uint64_t epoch_ = 0;  // bumped by each cut
  uint64_t cuts_ = 0;
  double keep_ = 0;         // KeepAtCut's probability
  std::mt19937_64 keep_rng_;
  Layer survivors_;         // kept by cuts, for LandSurvivors
};

}  // namespace memkv::io
