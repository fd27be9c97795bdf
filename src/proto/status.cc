#include "proto/status.h"

namespace memkv::proto {

const char* StatusName(StatusCode s) {
  switch (s) {
    case StatusCode::kOk: return "Ok";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kTooLarge: return "TooLarge";
    case StatusCode::kTooManyEntries: return "TooManyEntries";
    case StatusCode::kTooManyInflight: return "TooManyInflight";
    case StatusCode::kBufferLimit: return "BufferLimit";
    case StatusCode::kTooManySessions: return "TooManySessions";
    case StatusCode::kTooManyRegions: return "TooManyRegions";
    case StatusCode::kNoSpace: return "NoSpace";
    case StatusCode::kBusy: return "Busy";
    case StatusCode::kUnsupportedVersion: return "UnsupportedVersion";
    case StatusCode::kUnauthorized: return "Unauthorized";
    case StatusCode::kChecksumMismatch: return "ChecksumMismatch";
    case StatusCode::kBadRegion: return "BadRegion";
    case StatusCode::kRangeOutOfBounds: return "RangeOutOfBounds";
    case StatusCode::kBufferTooSmall: return "BufferTooSmall";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kInternal: return "Internal";
    case StatusCode::kNotAttached: return "NotAttached";
    case StatusCode::kProtocolError: return "ProtocolError";
    case StatusCode::kChunkOutOfOrder: return "ChunkOutOfOrder";
    case StatusCode::kStreamTimeout: return "StreamTimeout";
    case StatusCode::kUnsupported: return "Unsupported";
    case StatusCode::kVersionChanged: return "VersionChanged";
  }
  return "Unknown";
}

}  // namespace memkv::proto
