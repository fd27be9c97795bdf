#include "store/superblock.h"

#include <algorithm>
#include <cstring>

#include "common/bytes.h"
#include "common/checksum.h"
#include "store/error.h"

namespace memkv::store {
namespace {

constexpr uint64_t kSuperMagic = 0x314253564B4D454Dull;  // "MEMKVSB1" on disk
constexpr uint64_t kSuperSeed = 0x5355504552;          // checksum domain of superblocks
constexpr size_t kChecksumOffset = kPageSize - 8;

using Reader = ByteReader<errc>;

uint64_t RoundDown(uint64_t v, uint64_t unit) { return v / unit * unit; }
uint64_t RoundUp(uint64_t v, uint64_t unit) { return (v + unit - 1) / unit * unit; }

}  // namespace

Result<Layout> ComputeLayout(uint64_t device_size, uint64_t stripe_unit) {
  if (stripe_unit == 0 || stripe_unit % kPageSize != 0) return errc::bad_geometry;
  Layout l;
  l.size = RoundDown(device_size, kPageSize);
  if (l.size < kMinDriveSize) return errc::drive_too_small;
  l.journal_offset = kPageSize;
  l.journal_size = std::clamp<uint64_t>(RoundDown(l.size / 64, kPageSize), 1ull << 20, 1ull << 30);
  l.slot_size = std::clamp<uint64_t>(RoundDown(l.size / 32, kPageSize), 1ull << 20, 8ull << 30);
  l.slot_offset[0] = l.journal_offset + l.journal_size;
  l.slot_offset[1] = l.slot_offset[0] + l.slot_size;
  l.data_offset = RoundUp(l.slot_offset[1] + l.slot_size, std::min<uint64_t>(stripe_unit, 1ull << 20));
  const uint64_t end = l.mirror_offset();
  if (l.data_offset + stripe_unit > end) return errc::drive_too_small;
  l.data_size = RoundDown(end - l.data_offset, kPageSize);
  return l;
}

Page EncodeSuperblock(const Superblock& sb) {
  Buffer b;
  b.reserve(kPageSize);
  Writer w(b);
  w.U64(kSuperMagic);
  w.U32(sb.format_version);
  w.U32(0);  // reserved
  w.U64(sb.generation);
  w.Raw(sb.set_id.data(), sb.set_id.size());
  w.Raw(sb.device_id.data(), sb.device_id.size());
  w.U32(sb.set_size);
  w.U32(sb.drive_index);
  w.U64(sb.drive_generation);
  w.U64(sb.format_epoch);
  w.U64(sb.stripe_unit);
  w.U64(sb.created_unix);
  w.U64(sb.reset_unix);
  const Layout& l = sb.layout;
  w.U64(l.size);
  w.U64(l.journal_offset);
  w.U64(l.journal_size);
  w.U64(l.slot_offset[0]);
  w.U64(l.slot_offset[1]);
  w.U64(l.slot_size);
  w.U64(l.data_offset);
  w.U64(l.data_size);
  w.U32(sb.active_slot);
  w.U32(0);  // reserved
  w.U64(sb.checkpoint_seq);
  w.U64(sb.checkpoint_bytes);
  w.U64(sb.checkpoint_checksum);
  w.U64(sb.journal_head);
  Page page{};
  std::memcpy(page.data(), b.data(), b.size());
  const uint64_t sum = Xxh3(page.data(), kChecksumOffset, kSuperSeed);
  std::memcpy(page.data() + kChecksumOffset, &sum, sizeof sum);
  return page;
}

Result<Superblock> DecodeSuperblock(std::span<const std::byte> page) {
  if (page.size() < kPageSize) return errc::truncated;
  Reader r(page.first(kPageSize));
  if (r.U64() != kSuperMagic) return errc::bad_magic;
  uint64_t stored;
  std::memcpy(&stored, page.data() + kChecksumOffset, sizeof stored);
  if (Xxh3(page.data(), kChecksumOffset, kSuperSeed) != stored) return errc::bad_checksum;
  Superblock sb;
  sb.format_version = r.U32();
  // Checked after the checksum: a valid record from a newer build is refused
  // as such, not reported as corruption.
  if (sb.format_version > kFormatVersion) return errc::newer_format;
  if (sb.format_version == 0) return errc::bad_record;
  r.U32();
  sb.generation = r.U64();
  std::memcpy(sb.set_id.data(), r.Raw(16).data(), 16);
  std::memcpy(sb.device_id.data(), r.Raw(16).data(), 16);
  sb.set_size = r.U32();
  sb.drive_index = r.U32();
  sb.drive_generation = r.U64();
  sb.format_epoch = r.U64();
  sb.stripe_unit = r.U64();
  sb.created_unix = r.U64();
  sb.reset_unix = r.U64();
  Layout& l = sb.layout;
  l.size = r.U64();
  l.journal_offset = r.U64();
  l.journal_size = r.U64();
  l.slot_offset[0] = r.U64();
  l.slot_offset[1] = r.U64();
  l.slot_size = r.U64();
  l.data_offset = r.U64();
  l.data_size = r.U64();
  sb.active_slot = r.U32();
  r.U32();
  sb.checkpoint_seq = r.U64();
  sb.checkpoint_bytes = r.U64();
  sb.checkpoint_checksum = r.U64();
  sb.journal_head = r.U64();
  if (!r.ok()) return r.error();
  // A record that passes its checksum but describes an impossible drive.
  const bool sane = sb.set_size > 0 && sb.drive_index < sb.set_size && sb.active_slot <= 1 &&
                    l.size >= kMinDriveSize && l.size % kPageSize == 0 &&
                    l.journal_size % kPageSize == 0 && l.data_size % kPageSize == 0 &&
                    l.journal_offset >= kPageSize &&
                    l.data_offset + l.data_size <= l.mirror_offset() &&
                    sb.checkpoint_bytes <= l.slot_size && sb.journal_head < l.journal_size &&
                    sb.journal_head % kPageSize == 0;
  if (!sane) return errc::bad_record;
  return sb;
}

Result<ChosenSuperblock> ChooseSuperblock(Result<Superblock> primary, Result<Superblock> mirror) {
  ChosenSuperblock c;
  if (!primary) c.primary_error = primary.error();
  if (primary && (!mirror || primary->generation >= mirror->generation)) {
    c.sb = *primary;
    return c;
  }
  if (mirror) {
    c.sb = *mirror;
    c.from_mirror = true;
    return c;
  }
  // Neither is valid. A newer format is worth saying as such.
  if (primary.error() == errc::newer_format || mirror.error() == errc::newer_format)
    return errc::newer_format;
  if (primary.error() == errc::bad_magic && mirror.error() == errc::bad_magic)
    return errc::bad_magic;
  return errc::no_superblock;
}

}  // namespace memkv::store
