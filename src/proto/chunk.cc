#include "proto/chunk.h"

namespace memkv::proto {

Status ChunkSequencer::Accept(const ChunkHeader& c, uint64_t len) {
  if (failed_ || complete_) return errc::chunk_out_of_order;
  failed_ = true;  // until proven otherwise
  if (c.seq != next_seq_ || c.offset != received_) return errc::chunk_out_of_order;
  if (len == 0 || len > value_size_ - received_) return errc::chunk_overrun;
  const uint64_t end = received_ + len;
  if (!open_ && c.last && end != value_size_) return errc::chunk_incomplete;
  if (!open_ && !c.last && end == value_size_) return errc::length_mismatch;
  failed_ = false;
  received_ = end;
  ++next_seq_;
  complete_ = c.last;
  return {};
}

std::vector<ChunkHeader> PlanChunks(uint32_t entry, uint64_t value_size, uint64_t max_chunk) {
  std::vector<ChunkHeader> chunks;
  uint64_t offset = 0;
  uint32_t seq = 0;
  while (offset < value_size) {
    const uint64_t len = std::min(max_chunk, value_size - offset);
    chunks.push_back({entry, seq++, offset, offset + len == value_size});
    offset += len;
  }
  return chunks;
}

}  // namespace memkv::proto
