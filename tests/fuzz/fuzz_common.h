#pragma once
// What the decode fuzzer and its seed writer share: how an input's first
// byte chooses the message a control payload is decoded as.

#include <cstdint>

#include "proto/frame.h"

namespace memkv::proto::fuzz {

// The message a frame carries, from its opcode and direction.
enum class Kind : uint8_t {
  kAttachRequest, kAttachReply, kReadRequest, kReadReply, kWriteRequest, kStatusReply,
  kKeysRequest, kExistsReply, kReplyHead, kPing, kChunk, kRegister, kRelease,
  kHello, kHelloReply, kListRequest, kListReply, kCapacityReply, kRenameRequest, kPlacedStep,
  kCount
};

inline Kind KindOf(Opcode op, bool response) {
  switch (op) {
    case Opcode::kAttach: return response ? Kind::kAttachReply : Kind::kAttachRequest;
    case Opcode::kDetach: return response ? Kind::kReplyHead : Kind::kPing;
    case Opcode::kBatchRead: return response ? Kind::kReadReply : Kind::kReadRequest;
    case Opcode::kBatchWrite: return response ? Kind::kStatusReply : Kind::kWriteRequest;
    case Opcode::kExists: return response ? Kind::kExistsReply : Kind::kKeysRequest;
    case Opcode::kDelete: return response ? Kind::kStatusReply : Kind::kKeysRequest;
    case Opcode::kPing: return Kind::kPing;
    case Opcode::kWriteChunk:
    case Opcode::kReadChunk: return Kind::kChunk;
    case Opcode::kRegisterRegion: return response ? Kind::kReplyHead : Kind::kRegister;
    case Opcode::kReleaseRegion: return response ? Kind::kReplyHead : Kind::kRelease;
    case Opcode::kHello: return response ? Kind::kHelloReply : Kind::kHello;
    case Opcode::kList: return response ? Kind::kListReply : Kind::kListRequest;
    case Opcode::kCapacity: return response ? Kind::kCapacityReply : Kind::kPing;
    case Opcode::kRename: return response ? Kind::kStatusReply : Kind::kRenameRequest;
    case Opcode::kReadPlaced: return Kind::kPlacedStep;
  }
  return Kind::kPing;
}

}  // namespace memkv::proto::fuzz
