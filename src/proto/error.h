#pragma once
// Decoding errors of the wire protocol. Each malformed input maps to its own
// code so a peer (and a log line) says exactly what was wrong.

#include "common/error.h"

namespace memkv::proto {

enum class errc {
  ok = 0,
  truncated,            // fewer bytes than the header or a field says
  frame_too_large,      // payload over kMaxPayload (16 MiB)
  bad_magic,            // not a memkv frame
  bad_version,          // version 0
  unsupported_version,  // newer than this build speaks
  unknown_opcode,
  bad_flags,            // unknown flag bits, or a flag that cannot go with the opcode
  bad_reserved,         // reserved header bytes not zero
  length_mismatch,      // lengths that disagree with each other or with the frame
  trailing_bytes,       // bytes left after the message
  empty_key,
  key_too_long,         // over kMaxKeySize (1,024 bytes)
  string_too_long,      // a name field over its limit
  too_many_entries,     // a batch over the receiver's max_batch_entries
  bad_batch_range,      // first + count beyond the batch total
  bad_location,         // unknown location kind, or one the message cannot use
  bad_status,           // a status value this build does not know
  zero_length_value,    // a write of 0 bytes (values are 1 byte and up)
  value_too_large,      // a value over the receiver's max_value_size
  chunk_out_of_order,   // a chunk whose sequence or offset is not the next one
  chunk_overrun,        // a chunk past the end of its value
  chunk_incomplete,     // the last chunk came before the value was complete
  missing_tag,          // a key is set and the frame carries no tag
  bad_tag,              // the HMAC tag does not match
  unexpected_tag,       // a tag, but no key is configured here
  bad_auth_key,         // an auth key that is not 64 hex characters
  bad_sequence,         // a frame whose sequence number is not the next one (replayed or reordered)
};

const char* Describe(errc e);
const boost::system::error_category& category();
inline error_code make_error_code(errc e) { return {static_cast<int>(e), category()}; }

}  // namespace memkv::proto

template <>
struct boost::system::is_error_code_enum<memkv::proto::errc> : std::true_type {};
