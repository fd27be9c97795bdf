#pragma once
// The superblock of a drive and the layout it describes. Two copies: the
// primary in the first 4 KiB of the drive, the mirror in the last 4 KiB.
// Each copy carries a generation, bumped on every write of the superblock;
// open uses the valid copy with the highest generation, so a write torn in
// either copy leaves the other. Pure code: pages in, structs out.
//
// Layout of a drive of S bytes (all offsets multiples of 4 KiB):
//   [0, 4K)                 primary superblock
//   [4K, 4K + J)            journal, a ring of 4 KiB pages
//   next C bytes, twice     checkpoint slots A and B (index and allocation)
//   [data_offset, S - 4K)   data region, pages of 4 KiB
//   [S - 4K, S)             mirror superblock

#include <array>
#include <cstdint>
#include <span>

#include "common/result.h"

namespace memkv::store {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint64_t kMinDriveSize = 16ull << 20;

using Uuid = std::array<std::byte, 16>;
using Page = std::array<std::byte, kPageSize>;

struct Layout {
  uint64_t size = 0;            // usable bytes of the drive (a multiple of 4 KiB)
  uint64_t journal_offset = 0;
  uint64_t journal_size = 0;
  uint64_t slot_offset[2] = {0, 0};
  uint64_t slot_size = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;       // a multiple of 4 KiB
  uint64_t mirror_offset() const { return size - kPageSize; }
  uint64_t data_pages() const { return data_size / kPageSize; }
};

// The layout memkv gives a drive of `device_size` bytes: journal 1/64 of it
// (1 MiB to 1 GiB), each checkpoint slot 1/32 (1 MiB to 8 GiB), the data
// region starting on a `stripe_unit` boundary.
Result<Layout> ComputeLayout(uint64_t device_size, uint64_t stripe_unit);

struct Superblock {
  uint32_t format_version = kFormatVersion;
  uint64_t generation = 0;        // bumped on every superblock write
  Uuid set_id{};                  // the drive set this drive belongs to
  Uuid device_id{};               // this drive; kept across resets
  uint32_t set_size = 1;          // drives in the set
  uint32_t drive_index = 0;       // this drive's place in the set
  uint64_t drive_generation = 1;  // bumped by reset: extents of other generations are misses
  uint64_t format_epoch = 1;      // journal records of another epoch never replay
  uint64_t stripe_unit = 4ull << 20;
  uint64_t created_unix = 0;
  uint64_t reset_unix = 0;
  Layout layout;
  // The checkpoint the journal replays on top of.
  uint32_t active_slot = 0;       // 0 or 1
  uint64_t checkpoint_seq = 0;    // last journal sequence number the checkpoint holds
  uint64_t checkpoint_bytes = 0;  // 0: no checkpoint yet (empty index)
  uint64_t checkpoint_checksum = 0;
  uint64_t journal_head = 0;      // offset in the journal of the record after checkpoint_seq
};

// One 4 KiB page: the fields, then XXH3 of everything before the checksum.
Page EncodeSuperblock(const Superblock& sb);
// bad_magic, bad_checksum, newer_format or bad_record, or the superblock.
Result<Superblock> DecodeSuperblock(std::span<const std::byte> page);

// The copy to open with: the valid one with the highest generation.
// `from_mirror` says which was taken. no_superblock when neither is valid
// (the primary's error when only the primary is a memkv superblock but
// unreadable and the mirror is not one either).
struct ChosenSuperblock {
  Superblock sb;
  bool from_mirror = false;
  error_code primary_error;  // why the primary was not taken, if it was not
};
Result<ChosenSuperblock> ChooseSuperblock(Result<Superblock> primary, Result<Superblock> mirror);

}  // namespace memkv::store
