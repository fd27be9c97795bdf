#pragma once
// The journal's record format. The journal is a ring of 4 KiB pages; each
// record (one group commit: many puts and deletes) fills whole pages:
//
//   header (48 bytes): magic "MKVJ" u32, version u16, kind u16, epoch u64,
//     seq u64, payload length u32, pages u32, checksum u64 (XXH3 of the
//     header's first 32 bytes and the payload), reserved u64
//   payload: operations, each `op u8` and its fields
//   zero padding to the end of the last page
//
// A record never straddles the end of the ring: the writer puts a one-page
// wrap record there (or nothing, when no page is left) and goes on at 0.
// Replay reads records from the checkpoint's position with the next sequence
// number and the drive's epoch, and stops at the first record that is torn
// (bad checksum), stale (another epoch or sequence) or not a record at all.
// Pure code: no I/O.

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "store/superblock.h"

namespace memkv::store {

inline constexpr size_t kJournalHeaderSize = 48;
inline constexpr uint16_t kJournalVersion = 1;

// A run of pages on one drive holding part of a value. Values of more than
// kInlineChecksumPages pages keep their page checksums in `table_pages`
// pages right after the data, themselves covered by `table_checksum`.
struct Extent {
  uint16_t drive = 0;
  uint64_t drive_generation = 0;  // a reset drive's extents are misses
  uint64_t page = 0;              // first page, counted from the data region's start
  uint32_t pages = 0;             // data pages
  uint16_t table_pages = 0;       // checksum table pages after the data (0: inline)
  uint64_t table_checksum = 0;    // XXH3 of the table pages
};

inline constexpr uint32_t kInlineChecksumPages = 16;

enum class OpKind : uint8_t { kPut = 1, kDelete = 2 };

// One operation of a record, as views into the record's bytes (decode) or
// the caller's memory (encode).
struct JournalOp {
  OpKind kind = OpKind::kPut;
  std::string_view key;
  uint64_t version = 0;                       // set-wide commit order; the higher wins
  uint64_t value_size = 0;                    // put
  std::span<const Extent> extents;            // put
  std::span<const uint64_t> page_checksums;   // put, values of <= kInlineChecksumPages pages
};

enum class RecordKind : uint16_t { kOps = 1, kWrap = 2 };

struct RecordHeader {
  RecordKind kind = RecordKind::kOps;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint32_t payload_len = 0;
  uint32_t pages = 0;
};

// Builds records: add operations, then Finish into whole pages.
class JournalRecordBuilder {
 public:
  void Add(const JournalOp& op);
  bool empty() const { return ops_ == 0; }
  size_t ops() const { return ops_; }
  // Bytes the record will take on disk, in whole pages.
  size_t PagesNeeded() const;
  // The record's bytes (a multiple of 4 KiB) for `seq` in `epoch`; the
  // builder is empty afterwards.
  Buffer Finish(uint64_t epoch, uint64_t seq);
  void Clear();

 private:
  Buffer payload_;
  size_t ops_ = 0;
};

// A one-page record that tells replay to go on at the ring's start.
Buffer WrapRecord(uint64_t epoch, uint64_t seq);

// Decodes the header at the start of `bytes` and checks the whole record's
// checksum (bytes must hold all of its pages): bad_magic, truncated,
// bad_checksum, newer_format or bad_record.
Result<RecordHeader> DecodeRecordHeader(std::span<const std::byte> bytes);

// Calls `fn(op)` for each operation of a record's payload; extents and
// checksums are copied into the scratch vectors the op's spans point to, so
// `fn` must use them before returning. bad_record on a malformed payload.
Status ForEachOp(std::span<const std::byte> payload,
                 const std::function<void(const JournalOp&)>& fn);

// Where replay ended, and how far it got.
struct ReplayEnd {
  uint64_t next_seq = 0;     // sequence number the next record must have
  uint64_t next_offset = 0;  // offset in the ring where it goes
  uint64_t records = 0;
  uint64_t ops = 0;
};

// Replays the ring `journal` (the whole journal region, read into memory)
// from `offset` expecting `seq` in `epoch`, calling `fn` for every operation
// of every valid record in order. Never fails: the first bad record ends it.
ReplayEnd Replay(std::span<const std::byte> journal, uint64_t offset, uint64_t seq, uint64_t epoch,
                 const std::function<void(const JournalOp&)>& fn);

}  // namespace memkv::store
