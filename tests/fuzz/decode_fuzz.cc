// libFuzzer target for the wire decoder. Input: one whole frame. It is
// decoded with and without an auth key; a frame that decodes has its message
// decoded by opcode, and a message that decodes must re-encode to the very
// same bytes (the encoding is canonical), or the fuzzer stops with a crash.

#include <cstdlib>
#include <cstring>

#include "fuzz_common.h"
#include "proto/chunk.h"
#include "proto/messages.h"

namespace memkv::proto {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

template <class M>
void SameBytes(const M& m, Bytes control) {
  Buffer again;
  Encode(m, again);
  Check(again.size() == control.size() &&
        std::memcmp(again.data(), control.data(), control.size()) == 0);
}

void DecodeMessage(fuzz::Kind kind, Bytes control, Bytes data) {
  const DecodeLimits limits{65536};
  switch (kind) {
    case fuzz::Kind::kAttachRequest: {
      AttachRequest m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kAttachReply: {
      AttachReply m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kReadRequest: {
      BatchReadRequest m;
      if (Decode(control, data, m, limits)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kReadReply: {
      BatchReadReply m;
      if (Decode(control, data, m, limits)) {
        SameBytes(m, control);
        uint64_t inline_bytes = 0;
        for (const ReadResult& r : m.results)
          if (r.delivery == Delivery::kInline) inline_bytes += r.length;
        Check(inline_bytes == m.data.size());
      }
      break;
    }
    case fuzz::Kind::kWriteRequest: {
      BatchWriteRequest m;
      if (Decode(control, data, m, limits)) {
        SameBytes(m, control);
        uint64_t inline_bytes = 0;
        for (const WriteEntry& e : m.entries)
          if (e.src.kind == LocationKind::kInline) inline_bytes += e.value_len;
        Check(inline_bytes == m.data.size());
      }
      break;
    }
    case fuzz::Kind::kStatusReply: {
      StatusReply m;
      if (Decode(control, m, limits)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kKeysRequest: {
      KeysRequest m;
      if (Decode(control, m, limits)) {
        SameBytes(m, control);
        for (auto k : m.keys) Check(CheckKey(k).has_value());
      }
      break;
    }
    case fuzz::Kind::kExistsReply: {
      ExistsReply m;
      if (Decode(control, m, limits)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kReplyHead: {
      ReplyHead m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kPing: {
      Ping m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kChunk: {
      ChunkHeader m;
      if (Decode(control, data, m)) {
        SameBytes(m, control);
        // Feed it to a sequencer of a value it might belong to.
        ChunkSequencer s(m.offset + data.size());
        (void)s.Accept(m, data.size());
      }
      break;
    }
    case fuzz::Kind::kRegister: {
      RegisterRegion m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kRelease: {
      ReleaseRegion m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kHello: {
      Hello m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kHelloReply: {
      HelloReply m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kListRequest: {
      ListRequest m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kListReply: {
      ListReply m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kCapacityReply: {
      CapacityReply m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kRenameRequest: {
      RenameRequest m;
      if (Decode(control, m, limits)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kPlacedStep: {
      PlacedStep m;
      if (Decode(control, m)) SameBytes(m, control);
      break;
    }
    case fuzz::Kind::kCount: break;
  }
}

}  // namespace
}  // namespace memkv::proto

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memkv::proto;
  static const AuthKey key =
      AuthKey::FromHex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff").value();
  const Bytes in(reinterpret_cast<const std::byte*>(data), size);
  for (const AuthKey* k : {static_cast<const AuthKey*>(nullptr), &key}) {
    auto frame = DecodeFrame(in, k);
    if (!frame) continue;
    DecodeMessage(fuzz::KindOf(frame->header.opcode, frame->header.is_response()),
                  frame->control, frame->data);
  }
  // Bodies straight from the input too, so the message decoders get bytes
  // that no valid header guards.
  if (size > 0) {
    const auto kind = static_cast<fuzz::Kind>(data[0] % static_cast<uint8_t>(fuzz::Kind::kCount));
    const Bytes rest = in.subspan(1);
    const size_t split = rest.size() / 2;
    DecodeMessage(kind, rest.first(split), rest.subspan(split));
    DecodeMessage(kind, rest, {});
  }
  return 0;
}
