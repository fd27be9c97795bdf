// The verbs endpoint blob: round trips, its layout, and every malformed
// input refused with an error that names the field.

#include "rdma/verbs_endpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rdma/verbs_error.h"

namespace memkv::rdma {
namespace {

using ::testing::HasSubstr;

VerbsEndpoint Ib() {
  VerbsEndpoint e;
  e.lid = 0x1234;
  e.qpn = 0xABCDEF;
  e.psn = 0x00FFFE;
  e.mtu = 4;
  e.rd_atomic = 16;
  return e;
}

VerbsEndpoint RoceDc() {
  VerbsEndpoint e;
  e.transport = VerbsTransport::kDc;
  e.link_layer = LinkLayer::kEthernet;
  e.port = 2;
  e.gid = std::array<uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7};
  e.qpn = 0x42;
  e.dc_key = 0x0123456789ABCDEFull;
  return e;
}

std::vector<std::byte> Encode(const VerbsEndpoint& e) {
  auto b = EncodeEndpoint(e);
  EXPECT_TRUE(b);
  return b ? *b : std::vector<std::byte>{};
}

// Decodes `blob`, expecting `code` and a message containing `text`.
void ExpectRefused(const std::vector<std::byte>& blob, verbs_errc code, const std::string& text) {
  std::string why;
  auto r = DecodeEndpoint(blob, &why);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), code) << why;
  EXPECT_THAT(why, HasSubstr(text));
}

TEST(VerbsEndpointBlob, RoundTripsEveryShape) {
  for (const VerbsEndpoint& e : {Ib(), RoceDc()}) {
    auto blob = Encode(e);
    EXPECT_LE(blob.size(), kMaxEndpointBlob);
    auto back = DecodeEndpoint(blob);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, e);
  }
  VerbsEndpoint routed_ib = Ib();
  routed_ib.gid = RoceDc().gid;
  auto back = DecodeEndpoint(Encode(routed_ib));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, routed_ib);
}

TEST(VerbsEndpointBlob, LayoutIsCompactAndLittleEndian) {
  auto b = Encode(Ib());
  ASSERT_EQ(b.size(), 18u);
  auto at = [&](size_t i) { return std::to_integer<int>(b[i]); };
  EXPECT_EQ(at(0), 1);   // version
  EXPECT_EQ(at(1), 18);  // length
  EXPECT_EQ(at(2), 1);   // RC
  EXPECT_EQ(at(3), 1);   // InfiniBand
  EXPECT_EQ(at(4), 1);   // port
  EXPECT_EQ(at(5), 4);   // MTU 2048
  EXPECT_EQ(at(6), 16);  // rd_atomic
  EXPECT_EQ(at(7), 0);   // no GID, no key
  EXPECT_EQ(at(8), 0x34);
  EXPECT_EQ(at(9), 0x12);
  EXPECT_EQ(at(10), 0xEF);
  EXPECT_EQ(at(11), 0xCD);
  EXPECT_EQ(at(12), 0xAB);
  EXPECT_EQ(at(13), 0x00);
  EXPECT_EQ(Encode(RoceDc()).size(), 18u + 16u + 8u);
}

TEST(VerbsEndpointBlob, EveryTruncationNamesTheFieldItCutsThrough) {
  const auto full = Encode(RoceDc());
  const char* field_at[42] = {};
  const std::pair<const char*, std::pair<size_t, size_t>> fields[] = {
      {"version", {0, 1}}, {"length", {1, 2}}, {"transport", {2, 3}}, {"link_layer", {3, 4}},
      {"port", {4, 5}},    {"mtu", {5, 6}},    {"rd_atomic", {6, 7}}, {"flags", {7, 8}},
      {"lid", {8, 10}},    {"qpn", {10, 14}},  {"psn", {14, 18}},     {"gid", {18, 34}},
      {"dc_key", {34, 42}}};
  for (const auto& [name, range] : fields)
    for (size_t i = range.first; i < range.second; ++i) field_at[i] = name;
  ASSERT_EQ(full.size(), 42u);
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    std::vector<std::byte> cut(full.begin(), full.begin() + n);
    if (n >= 2) cut[1] = static_cast<std::byte>(n);  // a consistent length: the fields run out
    ExpectRefused(cut, verbs_errc::endpoint_truncated,
                  std::string("field '") + field_at[n] + "' truncated");
  }
}

TEST(VerbsEndpointBlob, LengthThatDisagreesWithTheBlob) {
  auto b = Encode(Ib());
  auto longer = b;
  longer.push_back(std::byte{0});
  ExpectRefused(longer, verbs_errc::endpoint_trailing_bytes,
                "field 'length' says 18 bytes, the blob has 19");
  auto shorter = b;
  shorter.pop_back();
  ExpectRefused(shorter, verbs_errc::endpoint_truncated,
                "field 'length' says 18 bytes, the blob has 17");
  // Length and blob agree, but there is more than the fields.
  auto padded = b;
  padded.push_back(std::byte{0});
  padded[1] = std::byte{19};
  ExpectRefused(padded, verbs_errc::endpoint_trailing_bytes, "1 bytes after the last field");
}

TEST(VerbsEndpointBlob, NewerVersionsAndOversizedBlobsAreRefused) {
  auto b = Encode(Ib());
  b[0] = std::byte{2};
  ExpectRefused(b, verbs_errc::endpoint_bad_version,
                "field 'version' is 2, this build reads version 1");
  ExpectRefused(std::vector<std::byte>(256), verbs_errc::endpoint_too_large,
                "256 bytes, at most 255");
}

TEST(VerbsEndpointBlob, ValuesOutOfRangeNameTheirField) {
  struct Case {
    size_t offset;
    uint8_t value;
    const char* text;
  } cases[] = {
      {2, 3, "field 'transport' is 3"},
      {3, 0, "field 'link_layer' is 0"},
      {4, 0, "field 'port' is 0"},
      {5, 6, "field 'mtu' is 6"},
      {5, 0, "field 'mtu' is 0"},
      {6, 0, "field 'rd_atomic' is 0"},
      {7, 0x80, "field 'flags' has unknown bits 0x80"},
      {13, 0x01, "field 'qpn' is 0x1abcdef"},
      {17, 0x01, "field 'psn' is 0x100fffe"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto b = Encode(Ib());
    b[c.offset] = static_cast<std::byte>(c.value);
    ExpectRefused(b, verbs_errc::endpoint_bad_field, c.text);
  }
  auto zero_lid = Encode(Ib());
  zero_lid[8] = zero_lid[9] = std::byte{0};
  ExpectRefused(zero_lid, verbs_errc::endpoint_bad_field, "field 'lid' is 0x0");
  // RoCE without its GID; DC without its key; RC with one.
  auto roce = Encode(Ib());
  roce[3] = std::byte{2};
  ExpectRefused(roce, verbs_errc::endpoint_bad_field, "field 'gid' is missing");
  auto dc = Encode(Ib());
  dc[2] = std::byte{2};
  ExpectRefused(dc, verbs_errc::endpoint_bad_field, "field 'dc_key' is missing");
  VerbsEndpoint rc_with_key = Ib();
  rc_with_key.dc_key = 1;
  std::string why;
  auto enc = EncodeEndpoint(rc_with_key, &why);
  ASSERT_FALSE(enc);
  EXPECT_EQ(enc.error(), verbs_errc::endpoint_bad_field);
  EXPECT_THAT(why, HasSubstr("field 'dc_key' is set on an RC endpoint"));
}

TEST(VerbsEndpointBlob, RandomBytesNeverCrashTheDecoder) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::vector<std::byte> b((x >> 8) % 64);
    for (auto& byte : b) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      byte = static_cast<std::byte>(x);
    }
    if (!b.empty()) b[0] = std::byte{1};
    if (b.size() > 1) b[1] = static_cast<std::byte>(b.size());
    std::string why;
    auto r = DecodeEndpoint(b, &why);
    if (r) {
      auto again = EncodeEndpoint(*r);
      ASSERT_TRUE(again);
      EXPECT_EQ(*again, b) << "what decodes re-encodes to the same bytes";
    } else {
      EXPECT_THAT(why, HasSubstr("verbs endpoint: "));
    }
  }
}

TEST(VerbsEndpointBlob, DescribesItselfForLogs) {
  EXPECT_EQ(DescribeEndpoint(Ib()), "RC IB port 1 lid 0x1234 qpn 0xabcdef psn 0xfffe mtu 2048");
  EXPECT_THAT(DescribeEndpoint(RoceDc()), HasSubstr("DC RoCE port 2 lid 0x0 dct 0x42"));
  EXPECT_THAT(DescribeEndpoint(RoceDc()), HasSubstr("gid 0000:0000:0000:0000:0000:ffff:0a00:0007"));
}

}  // namespace
}  // namespace memkv::rdma
