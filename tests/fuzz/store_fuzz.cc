// libFuzzer target for the on-disk records a drive is opened from: the
// superblock, journal records (header and payload) and checkpoint images.
// Input: a selector byte, then the record's bytes. Every decoder must
// answer (a value or an error) without reading outside its input, and a
// checkpoint that verifies holds only entries the writer can write.
//
// Only the pure decode entry points are called, by their public
// signatures, so the store's format can change under this target without
// touching it. Checksums make most mutations fail early; ForEachOp and
// LookupInCheckpoint read structure that no checksum guards here, and the
// seeds (tests/fuzz/seeds/store, whole valid records) get past the
// checksums.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "store/checkpoint.h"
#include "store/journal_format.h"
#include "store/superblock.h"

namespace memkv::store {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void Superblocks(std::span<const std::byte> in) { (void)DecodeSuperblock(in); }

// Touches every byte an op points at, so ASan sees a view outside the input.
void Touch(const JournalOp& op) {
  unsigned sum = 0;
  for (char c : op.key) sum += static_cast<unsigned char>(c);
  for (const Extent& e : op.extents) sum += static_cast<unsigned>(sizeof e);
  for (uint64_t c : op.page_checksums) sum += static_cast<unsigned>(c);
  volatile unsigned sink = sum;
  (void)sink;
}

void Journal(std::span<const std::byte> in) {
  // A whole record: header, checksum, then its payload's ops (as replay
  // reads a ring of records from its start).
  (void)DecodeRecordHeader(in);
  (void)Replay(in, 0, 1, 1, Touch);
  // The payload parser on its own, with no checksum in front of it.
  (void)ForEachOp(in, Touch);
}

void Checkpoints(std::span<const std::byte> in) {
  Bytes bitmap;
  CheckpointInfo info;
  (void)ReadCheckpoint(
      in,
      [&](const CheckpointEntry& e) {
        Check(e.value_size > 0 && !e.key.empty() && !e.extents.empty());
      },
      &bitmap, &info);
  // The tree walk that no checksum guards.
  for (std::string_view key : {"a", "key-1", "\xff\xff"}) (void)LookupInCheckpoint(in, key);
}

}  // namespace
}  // namespace memkv::store

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memkv::store;
  if (size == 0) return 0;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      Superblocks(in);
      break;
    case 1:
      Journal(in);
      break;
    default:
      Checkpoints(in);
      break;
  }
  return 0;
}
