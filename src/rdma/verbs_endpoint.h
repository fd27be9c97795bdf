#pragma once
// VerbsEndpoint: what one side of a verbs connection tells the other at
// Attach so that its queue pair can be brought to RTR/RTS (RC) or its DCT
// reached (DC): port addressing (LID, GID), QP/DCT number, first PSN, path
// MTU and responder resources. It travels as a compact versioned blob of at
// most kMaxEndpointBlob bytes; decoding is bounds-checked and each failure
// names its field. Pure: bytes in, value out.
//
// Blob version 1, little-endian:
//   0  u8  version (1)          1  u8  length of the whole blob
//   2  u8  transport (1 RC, 2 DC)
//   3  u8  link layer (1 InfiniBand, 2 Ethernet/RoCE; ibv_port_attr values)
//   4  u8  port                 5  u8  MTU (enum ibv_mtu: 1 = 256 .. 5 = 4096)
//   6  u8  rd_atomic (responder resources the sender offers, 1..255)
//   7  u8  flags (bit 0: GID follows, bit 1: DC key follows; others 0)
//   8  u16 LID                  10 u32 QPN (RC) or DCT number (DC), 24 bits
//   14 u32 PSN, 24 bits         18 [16 bytes GID] [u64 DC access key]

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace memkv::rdma {

inline constexpr uint8_t kEndpointVersion = 1;
inline constexpr size_t kMaxEndpointBlob = 255;

enum class VerbsTransport : uint8_t { kRc = 1, kDc = 2 };
// The values of ibv_port_attr::link_layer.
enum class LinkLayer : uint8_t { kInfiniband = 1, kEthernet = 2 };

struct VerbsEndpoint {
  VerbsTransport transport = VerbsTransport::kRc;
  LinkLayer link_layer = LinkLayer::kInfiniband;
  uint8_t port = 1;
  uint8_t mtu = 5;                             // enum ibv_mtu (IBV_MTU_4096)
  uint8_t rd_atomic = 1;                       // the sender's max_dest_rd_atomic
  uint16_t lid = 0;                            // InfiniBand; 0 on RoCE
  uint32_t qpn = 0;                            // RC: QP number; DC: DCT number
  uint32_t psn = 0;                            // RC: the first PSN the sender's QP sends
  std::optional<std::array<uint8_t, 16>> gid;  // RoCE (required) or a routed IB fabric
  std::optional<uint64_t> dc_key;              // DC: the DCT's access key

  bool operator==(const VerbsEndpoint&) const = default;
};

// The blob of `ep`, or endpoint_bad_field (with `why` naming the field) for a
// value the decoder would refuse.
Result<std::vector<std::byte>> EncodeEndpoint(const VerbsEndpoint& ep, std::string* why = nullptr);

// The endpoint in `blob`; on failure `why` says which field and why
// ("verbs endpoint: field 'gid' truncated: needs 16 bytes at offset 18, 3 left").
Result<VerbsEndpoint> DecodeEndpoint(std::span<const std::byte> blob, std::string* why = nullptr);

// "IB lid 0x1 qpn 0x123 psn 0x456 mtu 4096" and the like, for logs.
std::string DescribeEndpoint(const VerbsEndpoint& ep);

}  // namespace memkv::rdma
