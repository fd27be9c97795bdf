#pragma once
// The receiving side of a value streamed in numbered chunks: checks that
// chunks arrive in order, contiguous and within the value, and says when the
// value is complete. A value cut off before its last chunk never completes,
// so the receiver never makes it visible. Plain state, no I/O; owned by
// whatever receives the stream (a connection's loop).

#include <cstdint>

#include "proto/messages.h"

namespace memkv::proto {

class ChunkSequencer {
 public:
  explicit ChunkSequencer(uint64_t value_size) : value_size_(value_size) {}
  // A value of a length not known at the start (kOpenStream): it ends with
  // the chunk marked last, wherever that is.
  static ChunkSequencer Open() {
    ChunkSequencer s(UINT64_MAX);
    s.open_ = true;
    return s;
  }

  // Accepts the next chunk of `len` bytes (len > 0), or says what is wrong
  // with it; after an error the stream is dead and every chunk is refused.
  Status Accept(const ChunkHeader& chunk, uint64_t len);

  bool complete() const { return complete_; }
  uint64_t received() const { return received_; }
  uint64_t value_size() const { return value_size_; }

 private:
  uint64_t value_size_;
  uint64_t received_ = 0;
  uint32_t next_seq_ = 0;
  bool complete_ = false;
  bool failed_ = false;
  bool open_ = false;
};

// Splits a value of `value_size` bytes into chunks of at most `max_chunk`
// bytes: the headers a sender writes, in order.
std::vector<ChunkHeader> PlanChunks(uint32_t entry, uint64_t value_size, uint64_t max_chunk);

}  // namespace memkv::proto
