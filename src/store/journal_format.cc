#include "store/journal_format.h"

#include <cstring>

#include "common/checksum.h"
#include "store/error.h"

namespace memkv::store {
namespace {

constexpr uint32_t kJournalMagic = 0x4A564B4D;  // "MKVJ" on disk
constexpr uint64_t kJournalSeed = 0x4A4F55524E;
constexpr size_t kChecksummedHeader = 32;       // header bytes before the checksum

using Reader = ByteReader<errc>;

uint64_t PagesFor(size_t bytes) { return (bytes + kPageSize - 1) / kPageSize; }

Buffer Seal(RecordKind kind, uint64_t epoch, uint64_t seq, const Buffer& payload) {
  const size_t pages = PagesFor(kJournalHeaderSize + payload.size());
  Buffer out;
  out.reserve(pages * kPageSize);
  Writer w(out);
  w.U32(kJournalMagic);
  w.U16(kJournalVersion);
  w.U16(static_cast<uint16_t>(kind));
  w.U64(epoch);
  w.U64(seq);
  w.U32(static_cast<uint32_t>(payload.size()));
  w.U32(static_cast<uint32_t>(pages));
  Xxh3Stream sum(kJournalSeed);
  sum.Update(out.data(), kChecksummedHeader);
  sum.Update(payload.data(), payload.size());
  w.U64(sum.Digest());
  w.U64(0);
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize(pages * kPageSize, std::byte{0});
  return out;
}

}  // namespace

void JournalRecordBuilder::Add(const JournalOp& op) {
  Writer w(payload_);
  w.U8(static_cast<uint8_t>(op.kind));
  w.Str16(op.key);
  w.U64(op.version);
  if (op.kind == OpKind::kPut) {
    w.U64(op.value_size);
    w.U16(static_cast<uint16_t>(op.extents.size()));
    for (const Extent& e : op.extents) {
      w.U16(e.drive);
      w.U64(e.drive_generation);
      w.U64(e.page);
      w.U32(e.pages);
      w.U16(e.table_pages);
      w.U64(e.table_checksum);
    }
    w.U16(static_cast<uint16_t>(op.page_checksums.size()));
    for (uint64_t c : op.page_checksums) w.U64(c);
  }
  ++ops_;
}

size_t JournalRecordBuilder::PagesNeeded() const {
  return PagesFor(kJournalHeaderSize + payload_.size());
}

Buffer JournalRecordBuilder::Finish(uint64_t epoch, uint64_t seq) {
  Buffer out = Seal(RecordKind::kOps, epoch, seq, payload_);
  Clear();
  return out;
}

void JournalRecordBuilder::Clear() {
  payload_.clear();
  ops_ = 0;
}

Buffer WrapRecord(uint64_t epoch, uint64_t seq) { return Seal(RecordKind::kWrap, epoch, seq, {}); }

Result<RecordHeader> DecodeRecordHeader(std::span<const std::byte> bytes) {
  if (bytes.size() < kJournalHeaderSize) return errc::truncated;
  Reader r(bytes.first(kJournalHeaderSize));
  if (r.U32() != kJournalMagic) return errc::bad_magic;
  const uint16_t version = r.U16();
  RecordHeader h;
  const uint16_t kind = r.U16();
  h.epoch = r.U64();
  h.seq = r.U64();
  h.payload_len = r.U32();
  h.pages = r.U32();
  const uint64_t stored = r.U64();
  // A newer build may lay records out differently: say so before judging
  // the checksum by this build's rules.
  if (version > kJournalVersion) return errc::newer_format;
  if (h.pages == 0 || h.pages != PagesFor(kJournalHeaderSize + uint64_t{h.payload_len}))
    return errc::bad_record;
  if (bytes.size() < uint64_t{h.pages} * kPageSize) return errc::truncated;
  Xxh3Stream sum(kJournalSeed);
  sum.Update(bytes.data(), kChecksummedHeader);
  sum.Update(bytes.data() + kJournalHeaderSize, h.payload_len);
  if (sum.Digest() != stored) return errc::bad_checksum;
  if (version == 0 || (kind != 1 && kind != 2)) return errc::bad_record;
  h.kind = static_cast<RecordKind>(kind);
  return h;
}

Status ForEachOp(std::span<const std::byte> payload,
                 const std::function<void(const JournalOp&)>& fn) {
  Reader r(payload);
  std::vector<Extent> extents;
  std::vector<uint64_t> checksums;
  while (r.ok() && r.remaining() > 0) {
    JournalOp op;
    const uint8_t kind = r.U8();
    if (kind != 1 && kind != 2) return errc::bad_record;
    op.kind = static_cast<OpKind>(kind);
    op.key = r.Str16();
    op.version = r.U64();
    if (op.kind == OpKind::kPut) {
      op.value_size = r.U64();
      extents.resize(r.U16());
      for (Extent& e : extents) {
        e.drive = r.U16();
        e.drive_generation = r.U64();
        e.page = r.U64();
        e.pages = r.U32();
        e.table_pages = r.U16();
        e.table_checksum = r.U64();
      }
      checksums.resize(r.U16());
      for (uint64_t& c : checksums) c = r.U64();
      op.extents = extents;
      op.page_checksums = checksums;
    }
    if (!r.ok()) break;
    if (op.key.empty()) return errc::bad_record;
    if (op.kind == OpKind::kPut && (op.value_size == 0 || extents.empty())) return errc::bad_record;
    fn(op);
  }
  if (!r.ok()) return errc::bad_record;
  return {};
}

ReplayEnd Replay(std::span<const std::byte> journal, uint64_t offset, uint64_t seq, uint64_t epoch,
                 const std::function<void(const JournalOp&)>& fn) {
  ReplayEnd end{seq, offset, 0, 0};
  const uint64_t size = journal.size();
  // At most one pass around the ring: records are never more than that.
  uint64_t scanned = 0;
  while (scanned < size) {
    if (end.next_offset >= size) end.next_offset = 0;
    auto h = DecodeRecordHeader(journal.subspan(end.next_offset));
    if (!h || h->epoch != epoch || h->seq != end.next_seq) break;
    const uint64_t bytes = uint64_t{h->pages} * kPageSize;
    if (h->kind == RecordKind::kOps) {
      // Ops are applied only when the whole payload decodes: a record is
      // all or nothing.
      const auto payload = journal.subspan(end.next_offset + kJournalHeaderSize, h->payload_len);
      uint64_t ops = 0;
      if (!ForEachOp(payload, [&](const JournalOp&) { ++ops; })) break;
      ForEachOp(payload, fn);
      end.ops += ops;
      end.next_offset += bytes;
    } else {
      end.next_offset = size;  // wrap: go on at the start
    }
    ++end.records;
    ++end.next_seq;
    scanned += bytes;
  }
  if (end.next_offset >= size) end.next_offset = 0;
  return end;
}

}  // namespace memkv::store
