#pragma once
// store::Store: the storage engine. Keys map to values kept in DRAM
// (`memory` mode) or on a set of drives (`file`, `direct`) with a DRAM cache
// of clean copies in front.
//
// Durability (drive modes): Put returns only after the value's pages and its
// journal record are on stable storage: data written, every drive that took
// data flushed, the record written to the key's home drive, that drive
// flushed. Puts that wait at the same time share one record and its flushes
// (group commit); a data flush is skipped where a flush begun after the data
// was written has already succeeded. A value's pages are never written in place; an overwritten,
// deleted or evicted value's pages are reused only after the record that
// freed them is durable and no reader holds the value (and those of a put
// whose record write or flush failed, not before a restart). Every 4 KiB page is
// checksummed and verified on every read from a drive; a mismatch is an
// error for that key only, counted, and the entry dropped.
//
// Threads: one Store serves every loop. Any member may be called from any
// loop (coroutines run on the caller's executor; device I/O goes to the
// caller's io::Ring). The index is sharded with short locks; each drive's
// journal serializes its records under a mutex never held across an await
// (a leader coroutine writes each record). Owned by the server (or a test).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "io/asio_fwd.h"
#include "io/block_device.h"
#include "store/superblock.h"

namespace memkv::store {

enum class Mode { kMemory, kFile, kDirect };

struct StoreOptions {
  Mode mode = Mode::kFile;
  uint64_t memory_max_size = 256ull << 20;  // memory.max_size: the store, or cache + staging
  uint64_t staging_chunk = 2ull << 20;      // memory.block_size: the most one I/O stages
  uint64_t max_value_size = 1ull << 30;     // limits.max_value_size
  double high_watermark = 0.90;             // start evicting above this fill
  double low_watermark = 0.80;              // evict down to this fill
};

struct ValueInfo {
  uint64_t size = 0;
  uint64_t version = 0;
};

struct DriveStats {
  std::string name;
  bool online = false;
  uint64_t generation = 0;
  uint64_t raw_bytes = 0;     // the device
  uint64_t usable_bytes = 0;  // its data region
  uint64_t used_bytes = 0;    // pages holding values
};

struct StoreStats {
  uint64_t keys = 0;
  uint64_t puts = 0, gets = 0, deletes = 0, misses = 0;
  uint64_t cache_hits = 0;
  uint64_t evictions = 0;
  uint64_t checksum_errors = 0;
  uint64_t journal_records = 0, checkpoints = 0;
  uint64_t memory_used = 0, memory_capacity = 0;
  std::vector<DriveStats> drives;
};

struct FormatOptions {
  uint64_t stripe_unit = 4ull << 20;  // storage.block_size
};

// Formats `drives` as one set: fresh superblocks (primary and mirror) with a
// new set id, device ids and epochs. Whatever the drives held is gone.
io::Awaitable<Status> FormatSet(std::span<io::BlockDevice* const> drives,
                                const FormatOptions& options = {});

// Reads a drive's superblock, from the mirror when the primary is damaged.
io::Awaitable<Result<ChosenSuperblock>> ReadSuperblock(io::BlockDevice& drive);

// Offline reset of one drive (`memkv drive reset`): metadata zeroed, a fresh
// superblock keeping the device id, set and index, with the drive generation
// and epoch bumped; the data region discarded, or zero-filled when `secure`.
// `progress(done, total)` is called while zero-filling.
io::Awaitable<Status> ResetDrive(io::BlockDevice& drive, bool secure,
                                 const std::function<void(uint64_t, uint64_t)>& progress = {});

class Store {
 public:
  // Opens a store. Memory mode takes no drives. Drive modes take the drives
  // of one formatted set (in any order) and recover: superblocks, each
  // drive's checkpoint, journal replay, allocation rebuilt.
  static io::Awaitable<Result<std::unique_ptr<Store>>> Open(
      std::vector<std::unique_ptr<io::BlockDevice>> drives, const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Stores `value` under `key`, replacing any earlier value, durably.
  io::Awaitable<Status> Put(std::string_view key, Bytes value);
  // The same, checked against the sender's piece sums (the XXH3 of each
  // 4 KiB of `value`, the last piece shorter) as it is stored: a mismatch is
  // checksum_mismatch and nothing is stored.
  io::Awaitable<Status> Put(std::string_view key, Bytes value, std::span<const uint64_t> piece_sums);
  // The size and version of a key's value, or not_found. No I/O.
  Result<ValueInfo> Stat(std::string_view key) const;
  // Reads out.size() bytes of the value from `offset`; returns the count.
  io::Awaitable<Result<size_t>> Get(std::string_view key, uint64_t offset,
                                    std::span<std::byte> out);
  // Removes a key durably; not_found if there was none.
  io::Awaitable<Status> Delete(std::string_view key);

  // Renames a key: the value of `from` (its stored bytes, not a copy)
  // becomes the value of `to`, replacing any value `to` had, then `from` is
  // removed. not_found if `from` has no value. A reader that pinned `from`
  // keeps its version. Drive modes: durable like a put, and atomic across a
  // crash (one journal record holds the put of `to` and the delete of
  // `from`): after a restart the value is under one key, never both.
  io::Awaitable<Status> Rename(std::string_view from, std::string_view to);

  // Keys by prefix, in key order: up to `limit` of those after `cursor`
  // (exclusive; empty: from the first). `more` is set when keys past the
  // last one returned may follow. Served from each index shard's ordered
  // keys, never a scan of every key. No I/O.
  struct KeyInfo {
    std::string key;
    uint64_t size = 0;
    uint64_t version = 0;
  };
  struct Listing {
    std::vector<KeyInfo> keys;
    bool more = false;
  };
  Listing List(std::string_view prefix, std::string_view cursor, size_t limit) const;

  // A value written in pieces into its own allocation (a value streamed in
  // chunks): BeginPut allocates all of it, Append writes the next bytes in
  // order, Commit makes it visible (durably) once every byte is in. A
  // PendingPut dropped before Commit releases its space, and the key never
  // sees it. Used by one coroutine at a time; may outlive nothing but the
  // store.
  //
  // BeginOpenPut starts one whose size is not known: its storage grows as
  // bytes are appended (memory mode: a reservation of max_value_size
  // address space, counted against memory_max_size as it fills; drive
  // modes: one stripe unit of pages at a time, the last one trimmed at
  // Commit), Append past max_value_size is too_large, and Commit makes
  // what was written the value (empty_value if nothing was).
  class PendingPut {
   public:
    class State;
    explicit PendingPut(std::unique_ptr<State> state);
    ~PendingPut();
    PendingPut(const PendingPut&) = delete;
    PendingPut& operator=(const PendingPut&) = delete;

    uint64_t size() const;  // an open put: 0 until Commit
    uint64_t written() const;
    // Writes the next bytes of the value (no more than size() - written()).
    io::Awaitable<Status> Append(Bytes bytes);
    // Publishes the value; fails unless every byte was written.
    io::Awaitable<Status> Commit();

    // Memory mode: the value's own storage, for a caller that receives the
    // bytes straight into it (then CommitPlaced); empty in drive modes.
    std::span<std::byte> Place();
    // Publishes a value whose every byte was placed through Place(), with
    // its piece sums (the caller checked the bytes against them).
    io::Awaitable<Status> CommitPlaced(std::span<const uint64_t> piece_sums);

   private:
    std::unique_ptr<State> state_;
  };
  io::Awaitable<Result<std::unique_ptr<PendingPut>>> BeginPut(std::string_view key, uint64_t size);
  Result<std::unique_ptr<PendingPut>> BeginOpenPut(std::string_view key);

  // A value pinned for reading in pieces: every read of it sees the same
  // version, even when the key is overwritten or deleted meanwhile (its
  // storage is kept until the pin is dropped).
  struct Pinned {
    std::shared_ptr<const void> entry;
    uint64_t size = 0;
    uint64_t version = 0;
  };
  Result<Pinned> Pin(std::string_view key) const;
  io::Awaitable<Result<size_t>> Get(const Pinned& value, uint64_t offset, std::span<std::byte> out);

  // Memory mode: the stored bytes of a pinned value and their piece sums
  // (the XXH3 of each 4 KiB, the last piece shorter), valid while `value` is
  // held; counted as a get. The caller sends them untouched and the reader
  // checks them. nullopt in drive modes (read with Get).
  struct View {
    Bytes bytes;
    std::span<const uint64_t> piece_sums;
  };
  std::optional<View> Peek(const Pinned& value) const;

  // Batches: each entry gets its own status, in order; a batch is not
  // atomic. Up to `concurrency` entries are in flight at once, so puts of a
  // batch share journal records and flushes (group commit).
  struct PutItem {
    std::string_view key;
    Bytes value;
    std::span<const uint64_t> piece_sums;  // the sender's, checked; empty: none
  };
  struct GetItem {
    std::string_view key;
    uint64_t offset = 0;
    std::span<std::byte> out;  // out.size() bytes from offset
  };
  io::Awaitable<std::vector<Status>> PutBatch(std::span<const PutItem> items,
                                              size_t concurrency = 64);
  io::Awaitable<std::vector<Result<size_t>>> GetBatch(std::span<const GetItem> items,
                                                      size_t concurrency = 64);
  io::Awaitable<std::vector<Status>> DeleteBatch(std::span<const std::string_view> keys,
                                                 size_t concurrency = 64);

  // Takes a drive out of service, resets it (as ResetDrive) and brings it
  // back, while the other drives serve. Its values become misses.
  io::Awaitable<Status> ResetDriveOnline(size_t drive, bool secure);
  // Takes a drive out of service: its values become misses (unavailable).
  void TakeOffline(size_t drive);

  // Writes a checkpoint on every drive, so the next open replays little.
  io::Awaitable<Status> Checkpoint();
  // Checkpoints and refuses further work.
  io::Awaitable<Status> Close();

  StoreStats stats() const;
  size_t drive_count() const;
  Mode mode() const;

  class Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace memkv::store
