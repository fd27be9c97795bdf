#pragma once
// Helpers for building frames in tests.

#include <string>
#include <string_view>

#include "proto/frame.h"
#include "proto/messages.h"

namespace memkv::proto::testing {

inline Bytes AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string AsString(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A whole frame of `op` carrying `control` and `data`.
inline Buffer MakeFrame(Opcode op, const Buffer& control, Bytes data = {},
                        const AuthKey* key = nullptr, uint64_t request_id = 42,
                        uint8_t flags = 0) {
  Buffer out;
  FrameHeader h;
  h.opcode = op;
  h.request_id = request_id;
  h.flags = flags;
  AppendFrame(out, h, control, data, key);
  return out;
}

inline AuthKey TestKey() {
  return AuthKey::FromHex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
      .value();
}

}  // namespace memkv::proto::testing
