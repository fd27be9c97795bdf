#include "rdma/verbs_endpoint.h"

#include <fmt/format.h>

#include "rdma/verbs_error.h"

namespace memkv::rdma {
namespace {

constexpr uint8_t kFlagGid = 1u << 0;
constexpr uint8_t kFlagDcKey = 1u << 1;
constexpr uint8_t kKnownFlags = kFlagGid | kFlagDcKey;
constexpr size_t kFixedSize = 18;
constexpr uint32_t kMax24 = 0xFFFFFF;

error_code Fail(std::string* why, verbs_errc code, std::string text) {
  if (why) *why = "verbs endpoint: " + std::move(text);
  return code;
}

// The field checks shared by encode and decode; empty when `ep` is valid.
std::optional<std::string> BadField(const VerbsEndpoint& ep) {
  if (ep.transport != VerbsTransport::kRc && ep.transport != VerbsTransport::kDc)
    return fmt::format("field 'transport' is {} (1 RC or 2 DC)", static_cast<int>(ep.transport));
  if (ep.link_layer != LinkLayer::kInfiniband && ep.link_layer != LinkLayer::kEthernet)
    return fmt::format("field 'link_layer' is {} (1 InfiniBand or 2 Ethernet)",
                       static_cast<int>(ep.link_layer));
  if (ep.port == 0) return std::string("field 'port' is 0 (ports count from 1)");
  if (ep.mtu < 1 || ep.mtu > 5)
    return fmt::format("field 'mtu' is {} (1 = 256 bytes .. 5 = 4096 bytes)", ep.mtu);
  if (ep.rd_atomic == 0) return std::string("field 'rd_atomic' is 0 (at least 1)");
  if (ep.link_layer == LinkLayer::kInfiniband && (ep.lid == 0 || ep.lid >= 0xC000))
    return fmt::format("field 'lid' is {:#x} (InfiniBand needs a unicast LID, 0x1..0xbfff)",
                       ep.lid);
  if (ep.qpn > kMax24 || ep.qpn == 0)
    return fmt::format("field 'qpn' is {:#x} (24 bits, not 0)", ep.qpn);
  if (ep.psn > kMax24) return fmt::format("field 'psn' is {:#x} (24 bits)", ep.psn);
  if (ep.link_layer == LinkLayer::kEthernet && !ep.gid)
    return std::string("field 'gid' is missing (RoCE addresses by GID)");
  if ((ep.transport == VerbsTransport::kDc) != ep.dc_key.has_value())
    return std::string(ep.dc_key ? "field 'dc_key' is set on an RC endpoint"
                                 : "field 'dc_key' is missing (a DC endpoint needs it)");
  return std::nullopt;
}

// Reads fixed-size little-endian fields, naming each one it cannot read.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}

  template <class T>
  bool Read(const char* field, T* out, std::string* why, error_code* ec) {
    uint64_t v = 0;
    if (!Need(field, sizeof(T), why, ec)) return false;
    for (size_t i = 0; i < sizeof(T); ++i)
      v |= static_cast<uint64_t>(std::to_integer<uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += sizeof(T);
    *out = static_cast<T>(v);
    return true;
  }
  bool ReadBytes(const char* field, uint8_t* out, size_t n, std::string* why, error_code* ec) {
    if (!Need(field, n, why, ec)) return false;
    for (size_t i = 0; i < n; ++i) out[i] = std::to_integer<uint8_t>(in_[pos_ + i]);
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  bool Need(const char* field, size_t n, std::string* why, error_code* ec) {
    if (in_.size() - pos_ >= n) return true;
    *ec = Fail(why, verbs_errc::endpoint_truncated,
               fmt::format("field '{}' truncated: needs {} bytes at offset {}, {} left", field, n,
                           pos_, in_.size() - pos_));
    return false;
  }

  std::span<const std::byte> in_;
  size_t pos_ = 0;
};

template <class T>
void Put(std::vector<std::byte>& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<std::byte>((static_cast<uint64_t>(v) >> (8 * i)) & 0xFF));
}

}  // namespace

Result<std::vector<std::byte>> EncodeEndpoint(const VerbsEndpoint& ep, std::string* why) {
  if (auto bad = BadField(ep)) return Fail(why, verbs_errc::endpoint_bad_field, *bad);
  std::vector<std::byte> out;
  out.reserve(kFixedSize + 16 + 8);
  const uint8_t flags = (ep.gid ? kFlagGid : 0) | (ep.dc_key ? kFlagDcKey : 0);
  Put<uint8_t>(out, kEndpointVersion);
  Put<uint8_t>(out, 0);  // the length, set below
  Put<uint8_t>(out, static_cast<uint8_t>(ep.transport));
  Put<uint8_t>(out, static_cast<uint8_t>(ep.link_layer));
  Put<uint8_t>(out, ep.port);
  Put<uint8_t>(out, ep.mtu);
  Put<uint8_t>(out, ep.rd_atomic);
  Put<uint8_t>(out, flags);
  Put<uint16_t>(out, ep.lid);
  Put<uint32_t>(out, ep.qpn);
  Put<uint32_t>(out, ep.psn);
  if (ep.gid)
    for (uint8_t b : *ep.gid) Put<uint8_t>(out, b);
  if (ep.dc_key) Put<uint64_t>(out, *ep.dc_key);
  static_assert(kFixedSize + 16 + 8 <= kMaxEndpointBlob);
  out[1] = static_cast<std::byte>(out.size());
  return out;
}

Result<VerbsEndpoint> DecodeEndpoint(std::span<const std::byte> blob, std::string* why) {
  if (blob.size() > kMaxEndpointBlob)
    return Fail(why, verbs_errc::endpoint_too_large,
                fmt::format("{} bytes, at most {}", blob.size(), kMaxEndpointBlob));
  error_code ec;
  Reader r(blob);
  uint8_t version = 0, length = 0;
  if (!r.Read("version", &version, why, &ec)) return ec;
  if (version != kEndpointVersion)
    return Fail(why, verbs_errc::endpoint_bad_version,
                fmt::format("field 'version' is {}, this build reads version {} (upgrade the "
                            "older side)",
                            version, kEndpointVersion));
  if (!r.Read("length", &length, why, &ec)) return ec;
  if (length > blob.size())
    return Fail(why, verbs_errc::endpoint_truncated,
                fmt::format("field 'length' says {} bytes, the blob has {}", length, blob.size()));
  if (length < blob.size())
    return Fail(why, verbs_errc::endpoint_trailing_bytes,
                fmt::format("field 'length' says {} bytes, the blob has {}", length, blob.size()));

  VerbsEndpoint ep;
  uint8_t transport = 0, link = 0, flags = 0;
  if (!r.Read("transport", &transport, why, &ec) || !r.Read("link_layer", &link, why, &ec) ||
      !r.Read("port", &ep.port, why, &ec) || !r.Read("mtu", &ep.mtu, why, &ec) ||
      !r.Read("rd_atomic", &ep.rd_atomic, why, &ec) || !r.Read("flags", &flags, why, &ec) ||
      !r.Read("lid", &ep.lid, why, &ec) || !r.Read("qpn", &ep.qpn, why, &ec) ||
      !r.Read("psn", &ep.psn, why, &ec))
    return ec;
  ep.transport = static_cast<VerbsTransport>(transport);
  ep.link_layer = static_cast<LinkLayer>(link);
  if (flags & ~kKnownFlags)
    return Fail(why, verbs_errc::endpoint_bad_field,
                fmt::format("field 'flags' has unknown bits {:#04x}", flags & ~kKnownFlags));
  if (flags & kFlagGid) {
    std::array<uint8_t, 16> gid{};
    if (!r.ReadBytes("gid", gid.data(), gid.size(), why, &ec)) return ec;
    ep.gid = gid;
  }
  if (flags & kFlagDcKey) {
    uint64_t key = 0;
    if (!r.Read("dc_key", &key, why, &ec)) return ec;
    ep.dc_key = key;
  }
  if (r.pos() != blob.size())
    return Fail(
        why, verbs_errc::endpoint_trailing_bytes,
        fmt::format("{} bytes after the last field (offset {})", blob.size() - r.pos(), r.pos()));
  if (auto bad = BadField(ep)) return Fail(why, verbs_errc::endpoint_bad_field, *bad);
  return ep;
}

std::string DescribeEndpoint(const VerbsEndpoint& ep) {
  std::string s = fmt::format("{} {} port {} lid {:#x} {} {:#x} psn {:#x} mtu {}",
                              ep.transport == VerbsTransport::kDc ? "DC" : "RC",
                              ep.link_layer == LinkLayer::kEthernet ? "RoCE" : "IB", ep.port,
                              ep.lid, ep.transport == VerbsTransport::kDc ? "dct" : "qpn", ep.qpn,
                              ep.psn, 128 << ep.mtu);
  if (ep.gid) {
    s += " gid ";
    for (size_t i = 0; i < 16; i += 2)
      s += fmt::format("{}{:02x}{:02x}", i ? ":" : "", (*ep.gid)[i], (*ep.gid)[i + 1]);
  }
  return s;
}

}  // namespace memkv::rdma
