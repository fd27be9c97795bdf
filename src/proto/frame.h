#pragma once
// The frame of the control plane: a fixed 64-byte header, then a control
// payload (the message), then a data section (inline value bytes).
//
//   offset size field
//        0    4 magic "MKVF"
//        4    2 version (1 = this build)
//        6    1 opcode
//        7    1 flags (kFlagResponse | kFlagAuth | kFlagMore)
//        8    8 request id (a reply carries its request's id)
//       16    4 control length
//       20    4 data length; control + data <= kMaxPayload (16 MiB)
//       24    8 reserved, zero
//       32   32 HMAC-SHA256 tag over bytes 0..31 and the control payload
//              (zero when kFlagAuth is clear)
//
// All integers are little-endian. Inline data is bound to the tag through
// the per-entry checksums that the control payload carries.

#include <array>
#include <cstdint>
#include <optional>

#include "proto/auth.h"
#include "proto/wire.h"

namespace memkv::proto {

inline constexpr uint32_t kMagic = 0x46564B4D;  // "MKVF" in little-endian byte order
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kHeaderSize = 64;
inline constexpr size_t kTaggedPrefix = 32;  // header bytes the tag covers
inline constexpr uint32_t kMaxPayload = 16u << 20;
inline constexpr size_t kMaxKeySize = 1024;

enum class Opcode : uint8_t {
  kAttach = 1,
  kDetach = 2,
  kBatchRead = 3,
  kBatchWrite = 4,
  kExists = 5,
  kDelete = 6,
  kPing = 7,
  kWriteChunk = 8,      // client -> server: the next piece of a streamed value
  kReadChunk = 9,       // server -> client: the next piece of a streamed value
  kRegisterRegion = 10, // shm rail: a memfd region, its descriptor in SCM_RIGHTS
  kReleaseRegion = 11,
};
inline constexpr uint8_t kMaxOpcode = 11;
const char* OpcodeName(Opcode op);

inline constexpr uint8_t kFlagResponse = 1;  // a reply
inline constexpr uint8_t kFlagAuth = 2;      // the tag is set
inline constexpr uint8_t kFlagMore = 4;      // more frames of the same request or reply follow
inline constexpr uint8_t kKnownFlags = kFlagResponse | kFlagAuth | kFlagMore;

struct FrameHeader {
  uint16_t version = kProtocolVersion;
  Opcode opcode = Opcode::kPing;
  uint8_t flags = 0;
  uint64_t request_id = 0;
  uint32_t control_len = 0;
  uint32_t data_len = 0;
  Tag tag{};

  bool is_response() const { return flags & kFlagResponse; }
  bool has_more() const { return flags & kFlagMore; }
  size_t payload_len() const { return size_t{control_len} + data_len; }
};

using HeaderBytes = std::array<std::byte, kHeaderSize>;

// Decodes and checks a header: magic, version (<= max_version, refused with
// unsupported_version when newer), opcode, flags, reserved bytes, and the
// payload cap. The tag is checked separately, once the control payload is in.
Result<FrameHeader> DecodeHeader(Bytes bytes, uint16_t max_version = kProtocolVersion);

// Writes the header. With a key, sets kFlagAuth and the tag over the header
// and `control`; without one, clears both. control.size() must equal
// header.control_len.
HeaderBytes EncodeHeader(FrameHeader header, Bytes control, const AuthKey* key);

// Checks the tag of a decoded frame against the receiver's key (nullptr when
// none is configured): missing_tag, bad_tag or unexpected_tag on failure.
Status VerifyTag(const HeaderBytes& raw, const FrameHeader& header, Bytes control,
                 const AuthKey* key);

// A whole frame in one buffer (tests, the fuzzer, small messages): header
// decoded, tag verified, payload split.
struct FrameView {
  FrameHeader header;
  Bytes control;
  Bytes data;
};
Result<FrameView> DecodeFrame(Bytes frame, const AuthKey* key,
                              uint16_t max_version = kProtocolVersion);

// Appends a whole frame (header, control, data) to `out`.
void AppendFrame(Buffer& out, FrameHeader header, Bytes control, Bytes data, const AuthKey* key);

}  // namespace memkv::proto
