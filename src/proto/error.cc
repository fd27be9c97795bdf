#include "proto/error.h"

namespace memkv::proto {

const char* Describe(errc e) {
  switch (e) {
    case errc::ok: return "success";
    case errc::truncated: return "frame truncated";
    case errc::frame_too_large: return "frame payload over 16 MiB";
    case errc::bad_magic: return "bad magic: not a memkv frame";
    case errc::bad_version: return "bad protocol version 0";
    case errc::unsupported_version: return "protocol version newer than this build supports";
    case errc::unknown_opcode: return "unknown opcode";
    case errc::bad_flags: return "unknown or misplaced frame flags";
    case errc::bad_reserved: return "reserved header bytes are not zero";
    case errc::length_mismatch: return "lengths in the frame disagree";
    case errc::trailing_bytes: return "trailing bytes after the message";
    case errc::empty_key: return "empty key (keys are 1 to 1024 bytes)";
    case errc::key_too_long: return "key over 1024 bytes";
    case errc::string_too_long: return "string field too long";
    case errc::too_many_entries: return "too many entries in the batch";
    case errc::bad_batch_range: return "batch slice outside its batch";
    case errc::bad_location: return "bad data location";
    case errc::bad_status: return "unknown status value";
    case errc::zero_length_value: return "value of 0 bytes (values are 1 byte and up)";
    case errc::value_too_large: return "value over the size limit";
    case errc::chunk_out_of_order: return "chunk out of order";
    case errc::chunk_overrun: return "chunk past the end of its value";
    case errc::chunk_incomplete: return "last chunk before the value was complete";
    case errc::missing_tag: return "frame has no auth tag but a key is set";
    case errc::bad_tag: return "auth tag does not match";
    case errc::unexpected_tag: return "frame has an auth tag but no key is configured";
    case errc::bad_auth_key: return "auth key must be 64 hex characters";
    case errc::bad_sequence: return "frame out of sequence (replayed or reordered)";
  }
  return "unknown proto error";
}

const boost::system::error_category& category() {
  static const EnumCategory cat("memkv.proto",
                                [](int ev) { return Describe(static_cast<errc>(ev)); });
  return cat;
}

}  // namespace memkv::proto
