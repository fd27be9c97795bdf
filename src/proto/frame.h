#pragma once
// The frame of the control plane: a fixed 64-byte header, then a control
// payload (the message), then a data section (inline value bytes).
//
//   offset size field
//        0    4 magic "MKVF"
//        4    2 version (2 = this build; 1 is only read, to refuse it)
//        6    1 opcode
//        7    1 flags (kFlagResponse | kFlagAuth | kFlagMore | kFlagSteps)
//        8    8 request id (a reply carries its request's id)
//       16    4 control length
//       20    4 data length; control + data <= kMaxPayload (16 MiB)
//       24    8 sequence number: 0, 1, 2, ... per direction of a connection
//              (version 1: reserved, zero)
//       32   32 HMAC-SHA256 tag over bytes 0..31 and the control payload,
//              under the connection's session key (zero when kFlagAuth is
//              clear)
//
// All integers are little-endian. Inline data is bound to the tag through
// the per-entry checksums that the control payload carries. The tag binds
// the connection (its session key mixes both sides' Hello nonces) and the
// frame's place in it (the sequence number), so a frame captured on one
// connection is refused on another, and one replayed on its own connection
// is out of sequence.

#include <array>
#include <cstdint>
#include <optional>

#include "proto/auth.h"
#include "proto/wire.h"

namespace memkv::proto {

inline constexpr uint32_t kMagic = 0x46564B4D;  // "MKVF" in little-endian byte order
inline constexpr uint16_t kProtocolVersion = 2;
// The oldest version this build speaks. A peer of an older one is answered
// UnsupportedVersion, in its own version's framing so that it can read why.
inline constexpr uint16_t kMinProtocolVersion = 2;
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
  kHello = 12,          // the first frame each way: versions and nonces
  kList = 13,           // keys by prefix, with a cursor and a limit
  kCapacity = 14,       // the store's size, use and limits (statvfs)
  kRename = 15,         // moves values to new keys
  kReadPlaced = 16,     // server -> client: a stretch of an entry placed in steps is in place
};
inline constexpr uint8_t kMaxOpcode = 16;
const char* OpcodeName(Opcode op);

inline constexpr uint8_t kFlagResponse = 1;  // a reply
inline constexpr uint8_t kFlagAuth = 2;      // the tag is set
inline constexpr uint8_t kFlagMore = 4;      // more frames of the same request or reply follow
// BatchRead only: the client takes shm entries placed in steps (delivery
// kPlacedInSteps, then ReadPlaced frames). Set only toward a server that
// offers kFeaturePlacedSteps.
inline constexpr uint8_t kFlagSteps = 8;
inline constexpr uint8_t kKnownFlags = kFlagResponse | kFlagAuth | kFlagMore | kFlagSteps;

struct FrameHeader {
  uint16_t version = kProtocolVersion;
  Opcode opcode = Opcode::kPing;
  uint8_t flags = 0;
  uint64_t request_id = 0;
  uint64_t seq = 0;  // the sender's sequence number (version 2 on)
  uint32_t control_len = 0;
  uint32_t data_len = 0;
  Tag tag{};

  bool is_response() const { return flags & kFlagResponse; }
  bool has_more() const { return flags & kFlagMore; }
  size_t payload_len() const { return size_t{control_len} + data_len; }
};

using HeaderBytes = std::array<std::byte, kHeaderSize>;

// Decodes and checks a header: magic, version (<= max_version, refused with
// unsupported_version when newer), opcode, flags, reserved bytes (version
// 1), and the payload cap. A version older than kMinProtocolVersion decodes,
// so that its sender can be told; the receiver refuses it. The tag and the
// sequence number are checked separately (VerifyTag, SequenceCheck).
Result<FrameHeader> DecodeHeader(Bytes bytes, uint16_t max_version = kProtocolVersion);

// Writes the header. With a key, sets kFlagAuth and the tag over the header
// and `control`; without one, clears both. control.size() must equal
// header.control_len.
HeaderBytes EncodeHeader(FrameHeader header, Bytes control, const AuthKey* key);

// Stamps `seq` into encoded header bytes and tags them anew with `key`
// (nullptr: untagged). Senders encode frames early, on any thread, and seal
// each one as it takes its place on the wire, where its number is known.
void SealHeader(HeaderBytes& raw, uint64_t seq, Bytes control, const AuthKey* key);

// One direction of a connection as its receiver sees it: each frame must
// carry the next sequence number (bad_sequence otherwise).
class SequenceCheck {
 public:
  Status Accept(const FrameHeader& h) {
    if (h.seq != next_) return errc::bad_sequence;
    ++next_;
    return {};
  }
  uint64_t next() const { return next_; }

 private:
  uint64_t next_ = 0;
};

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
