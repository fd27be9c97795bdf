#pragma once
// The status a reply carries for a whole request and for each entry of a
// batch. One value per named limit, so a client knows which limit it hit.
// Values are part of the wire format: append, never renumber.

#include <cstdint>

namespace memkv::proto {

enum class StatusCode : uint8_t {
  kOk = 0,
  kNotFound = 1,            // no such key (never written, deleted, evicted, reset)
  kInvalidArgument = 2,     // the request was well-formed but makes no sense
  kTooLarge = 3,            // limits.max_value_size
  kTooManyEntries = 4,      // limits.max_batch_entries
  kTooManyInflight = 5,     // limits.max_inflight_per_connection
  kBufferLimit = 6,         // limits.max_buffered_bytes_per_connection
  kTooManySessions = 7,     // limits.max_sessions
  kTooManyRegions = 8,      // limits.max_regions_per_session
  kNoSpace = 9,             // store full and nothing can be evicted
  kBusy = 10,               // try again later
  kUnsupportedVersion = 11, // a protocol version the server does not speak (the message names both)
  kUnauthorized = 12,       // missing or wrong auth proof or tag
  kChecksumMismatch = 13,   // data does not match its checksum
  kBadRegion = 14,          // unknown shm region, or offset/length outside it
  kRangeOutOfBounds = 15,   // read range past the end of the value
  kBufferTooSmall = 16,     // destination smaller than what must be written
  kUnavailable = 17,        // the drive holding the value is out of service
  kInternal = 18,           // a bug or an I/O error on the server
  kNotAttached = 19,        // a request before Attach
  kProtocolError = 20,      // a malformed frame (the connection is closed after)
  kChunkOutOfOrder = 21,    // a streamed value's chunk out of sequence, at the wrong offset or past its end
  kStreamTimeout = 22,      // limits.stream_idle_seconds passed with no chunk of a streamed value
  kUnsupported = 23,        // a message or feature of this version the server does not offer (yet)
  kVersionChanged = 24,     // a read pinned to a version the key no longer holds
};

inline constexpr uint8_t kMaxStatus = 24;

const char* StatusName(StatusCode s);

}  // namespace memkv::proto
