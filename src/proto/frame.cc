#include "proto/frame.h"

#include <cstring>

namespace memkv::proto {

const char* OpcodeName(Opcode op) {
  switch (op) {
    case Opcode::kAttach: return "Attach";
    case Opcode::kDetach: return "Detach";
    case Opcode::kBatchRead: return "BatchRead";
    case Opcode::kBatchWrite: return "BatchWrite";
    case Opcode::kExists: return "Exists";
    case Opcode::kDelete: return "Delete";
    case Opcode::kPing: return "Ping";
    case Opcode::kWriteChunk: return "WriteChunk";
    case Opcode::kReadChunk: return "ReadChunk";
    case Opcode::kRegisterRegion: return "RegisterRegion";
    case Opcode::kReleaseRegion: return "ReleaseRegion";
    case Opcode::kHello: return "Hello";
    case Opcode::kList: return "List";
    case Opcode::kCapacity: return "Capacity";
    case Opcode::kRename: return "Rename";
    case Opcode::kReadPlaced: return "ReadPlaced";
  }
  return "Unknown";
}

Result<FrameHeader> DecodeHeader(Bytes bytes, uint16_t max_version) {
  if (bytes.size() < kHeaderSize) return errc::truncated;
  Reader r(bytes.first(kHeaderSize));
  if (r.U32() != kMagic) return errc::bad_magic;
  FrameHeader h;
  h.version = r.U16();
  if (h.version == 0) return errc::bad_version;
  if (h.version > max_version) return errc::unsupported_version;
  const uint8_t op = r.U8();
  if (op == 0 || op > kMaxOpcode) return errc::unknown_opcode;
  h.opcode = static_cast<Opcode>(op);
  h.flags = r.U8();
  if (h.flags & ~kKnownFlags) return errc::bad_flags;
  h.request_id = r.U64();
  h.control_len = r.U32();
  h.data_len = r.U32();
  h.seq = r.U64();
  if (h.version == 1 && h.seq != 0) return errc::bad_reserved;
  if (h.payload_len() > kMaxPayload) return errc::frame_too_large;
  std::memcpy(h.tag.data(), r.Raw(h.tag.size()).data(), h.tag.size());
  return h;
}

HeaderBytes EncodeHeader(FrameHeader h, Bytes control, const AuthKey* key) {
  h.flags = key ? (h.flags | kFlagAuth) : (h.flags & ~kFlagAuth);
  Buffer buf;
  buf.reserve(kHeaderSize);
  Writer w(buf);
  w.U32(kMagic);
  w.U16(h.version);
  w.U8(static_cast<uint8_t>(h.opcode));
  w.U8(h.flags);
  w.U64(h.request_id);
  w.U32(h.control_len);
  w.U32(h.data_len);
  w.U64(h.version == 1 ? 0 : h.seq);
  HeaderBytes out{};
  std::memcpy(out.data(), buf.data(), kTaggedPrefix);
  if (key) {
    const Tag tag = key->Hmac(Bytes(out.data(), kTaggedPrefix), control);
    std::memcpy(out.data() + kTaggedPrefix, tag.data(), tag.size());
  }
  return out;
}

void SealHeader(HeaderBytes& raw, uint64_t seq, Bytes control, const AuthKey* key) {
  for (size_t i = 0; i < 8; ++i) raw[24 + i] = static_cast<std::byte>(seq >> (8 * i));
  const uint8_t flags = std::to_integer<uint8_t>(raw[7]);
  raw[7] = static_cast<std::byte>(key ? (flags | kFlagAuth) : (flags & ~kFlagAuth));
  Tag tag{};
  if (key) tag = key->Hmac(Bytes(raw.data(), kTaggedPrefix), control);
  std::memcpy(raw.data() + kTaggedPrefix, tag.data(), tag.size());
}

Status VerifyTag(const HeaderBytes& raw, const FrameHeader& h, Bytes control,
                 const AuthKey* key) {
  const bool tagged = h.flags & kFlagAuth;
  if (!key) {
    if (tagged) return errc::unexpected_tag;
    return {};
  }
  if (!tagged) return errc::missing_tag;
  if (control.size() != h.control_len) return errc::length_mismatch;
  const Tag expect = key->Hmac(Bytes(raw.data(), kTaggedPrefix), control);
  if (!TagsEqual(expect, h.tag)) return errc::bad_tag;
  return {};
}

Result<FrameView> DecodeFrame(Bytes frame, const AuthKey* key, uint16_t max_version) {
  auto header = DecodeHeader(frame, max_version);
  MEMKV_TRY(header);
  const size_t total = kHeaderSize + header->payload_len();
  if (frame.size() < total) return errc::truncated;
  if (frame.size() > total) return errc::trailing_bytes;
  HeaderBytes raw;
  std::memcpy(raw.data(), frame.data(), kHeaderSize);
  FrameView v{*header, frame.subspan(kHeaderSize, header->control_len),
              frame.subspan(kHeaderSize + header->control_len, header->data_len)};
  MEMKV_TRY(VerifyTag(raw, v.header, v.control, key));
  return v;
}

void AppendFrame(Buffer& out, FrameHeader h, Bytes control, Bytes data, const AuthKey* key) {
  h.control_len = static_cast<uint32_t>(control.size());
  h.data_len = static_cast<uint32_t>(data.size());
  const HeaderBytes raw = EncodeHeader(h, control, key);
  out.insert(out.end(), raw.begin(), raw.end());
  out.insert(out.end(), control.begin(), control.end());
  out.insert(out.end(), data.begin(), data.end());
}

}  // namespace memkv::proto
