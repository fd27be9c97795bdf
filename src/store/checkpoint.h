#pragma once
// The checkpoint a drive writes into one of its two checkpoint slots: the
// allocation bitmap and every index entry whose home is that drive, as a
// bulk-loaded B+tree. Recovery reads the checkpoint the superblock names and
// replays the journal from the checkpoint's sequence number on top of it.
// Pure code: entries in, image bytes out, and back.
//
// Image layout (every offset from the image's start, a multiple of 4 KiB):
//   [0, 4K)       header: magic "MKVC" u32, version u16, reserved u16,
//                 epoch u64, seq u64 (last journal record covered), entries
//                 u64, bitmap offset u64, bitmap length u64, tree offset u64,
//                 tree length u64, leaf level length u64, root offset u64,
//                 height u32, reserved u32; zeros; in the last 8 bytes the
//                 checksum: XXH3 of the header page's first 4088 bytes and of
//                 the whole image after the header, so every byte but the
//                 checksum itself is covered
//   bitmap        the allocation bitmap, zero-padded to 4 KiB
//   tree          the leaves, left to right, then each inner level bottom-up,
//                 the root last
//
// A node is one or more whole pages: kind u8 (1 leaf, 2 inner), level u8
// (0 for leaves), reserved u16, pages u32, count u32, payload length u32,
// then the payload, zero-padded. A node holds as many items as fit in one
// page; an item that does not fit in a page alone gets a node of its own, of
// as many pages as it needs. Leaf items are entries in bytewise key order:
// key (u16 length, bytes), version u64, value size u64, extents (u16 count,
// 32 bytes each), inline page checksums (u16 count, u64 each), home u16; the
// fields up to the checksums are laid out as in a journal put op. From
// version 2 an item may be a tombstone: value size 0, no extents, no
// checksums (a key deleted at that version; see Index::Remove). Inner
// items are (first key of the child: u16 length, bytes; child offset u64).

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "store/journal_format.h"

namespace memkv::store {

// 2: tombstones. Version 1 images are still read.
inline constexpr uint16_t kCheckpointVersion = 2;
inline constexpr size_t kCheckpointHeaderSize = kPageSize;

// What a checkpoint's header says about it.
struct CheckpointInfo {
  uint64_t seq = 0;    // the last journal sequence number it covers
  uint64_t epoch = 0;  // the drive's format epoch when it was written
  uint64_t entries = 0;
  uint64_t bytes = 0;     // the image's length (goes into Superblock::checkpoint_bytes)
  uint64_t checksum = 0;  // the header's checksum (Superblock::checkpoint_checksum)
};

// One index entry as the checkpoint holds it. Read back, `key` points into
// the image, which must outlive the entry.
struct CheckpointEntry {
  std::string_view key;
  uint64_t value_size = 0;
  uint64_t version = 0;
  uint16_t home = 0;
  std::vector<Extent> extents;
  std::vector<uint64_t> page_checksums;
  // A deleted key (version 2 on): no value, no extents.
  bool tombstone() const { return value_size == 0 && extents.empty(); }
};

// Collects entries in any order and builds the image. Not thread-safe:
// owned by the one coroutine that writes a checkpoint.
class CheckpointWriter {
 public:
  // Copies the entry. As in the journal: keys of 1 to 1,024 bytes, values
  // of 1 byte and up, 1 to 65,535 extents, at most 65,535 inline checksums
  // (the caller's limits; the reader refuses anything else), or a tombstone:
  // value size 0 and no extents nor checksums. A key added
  // twice keeps the entry with the higher version (the later on a tie).
  void Add(std::string_view key, uint64_t value_size, uint64_t version, uint16_t home,
           std::span<const Extent> extents, std::span<const uint64_t> page_checksums);
  void Add(const CheckpointEntry& e) {
    Add(e.key, e.value_size, e.version, e.home, e.extents, e.page_checksums);
  }
  size_t entries() const { return items_.size(); }

  // The whole image, a multiple of 4 KiB, for the journal up to `seq` in
  // `epoch` with `bitmap` as the allocation state; `info` (if given) gets
  // what its header says. The writer is empty afterwards.
  Buffer Finish(uint64_t epoch, uint64_t seq, Bytes bitmap, CheckpointInfo* info = nullptr);

 private:
  struct Item {
    size_t offset;  // of the encoded entry in encoded_
    uint32_t size;
    uint16_t key_size;
    uint64_t version;
  };
  Buffer encoded_;  // entries, encoded, in the order added
  std::vector<Item> items_;
};

// Verifies `image` (a slot's bytes; may run past the checkpoint's end) and
// calls `fn` for every entry in key order, walking the leaves. The entry's
// spans and key are valid during the call only. Checks, in order: header
// (truncated, bad_magic, newer_format for a newer version), checksum
// (bad_checksum), then that the tree is exactly the one the writer builds
// (bad_record). Nothing is passed to `fn` unless the whole image is valid.
// `bitmap_out` (a view into the image) and `info_out` may be null.
Status ReadCheckpoint(Bytes image, const std::function<void(const CheckpointEntry&)>& fn,
                      Bytes* bitmap_out = nullptr, CheckpointInfo* info_out = nullptr);

// The entry of `key`, found from the root down through the inner nodes, or
// nullopt. Checks the header and every node it visits but not the checksum
// (ReadCheckpoint does): a malformed image gives nullopt, never an over-read.
std::optional<CheckpointEntry> LookupInCheckpoint(Bytes image, std::string_view key);

}  // namespace memkv::store
