#include "proto/frame.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "test_frames.h"

namespace memkv::proto {
namespace {

using testing::MakeFrame;
using testing::TestKey;

TEST(FrameHeader, RoundTripsEveryField) {
  FrameHeader h;
  h.opcode = Opcode::kBatchWrite;
  h.flags = kFlagResponse | kFlagMore;
  h.request_id = 0x0102030405060708ull;
  h.control_len = 77;
  h.data_len = 1234;
  Buffer control(77, std::byte{5});
  const HeaderBytes raw = EncodeHeader(h, control, nullptr);
  auto d = DecodeHeader(raw);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->version, kProtocolVersion);
  EXPECT_EQ(d->opcode, Opcode::kBatchWrite);
  EXPECT_EQ(d->flags, kFlagResponse | kFlagMore);
  EXPECT_EQ(d->request_id, 0x0102030405060708ull);
  EXPECT_EQ(d->control_len, 77u);
  EXPECT_EQ(d->data_len, 1234u);
  EXPECT_TRUE(d->is_response());
  EXPECT_TRUE(d->has_more());
}

TEST(FrameHeader, LayoutIsTheDocumentedOne) {
  FrameHeader h;
  h.opcode = Opcode::kPing;
  h.request_id = 7;
  const HeaderBytes raw = EncodeHeader(h, {}, nullptr);
  EXPECT_EQ(std::to_integer<char>(raw[0]), 'M');
  EXPECT_EQ(std::to_integer<char>(raw[1]), 'K');
  EXPECT_EQ(std::to_integer<char>(raw[2]), 'V');
  EXPECT_EQ(std::to_integer<char>(raw[3]), 'F');
  EXPECT_EQ(std::to_integer<int>(raw[4]), kProtocolVersion);
  EXPECT_EQ(std::to_integer<int>(raw[6]), static_cast<int>(Opcode::kPing));
  EXPECT_EQ(std::to_integer<int>(raw[8]), 7);
  EXPECT_EQ(raw.size(), 64u);
}

TEST(FrameHeader, AcceptsOlderVersionsUpToItsOwn) {
  FrameHeader h;
  h.version = 1;
  const HeaderBytes raw = EncodeHeader(h, {}, nullptr);
  EXPECT_TRUE(DecodeHeader(raw, /*max_version=*/3));
  h.version = 3;
  EXPECT_TRUE(DecodeHeader(EncodeHeader(h, {}, nullptr), 3));
  h.version = 4;
  EXPECT_EQ(DecodeHeader(EncodeHeader(h, {}, nullptr), 3).error(), errc::unsupported_version);
}

TEST(Frame, WithAKeyTheTagCoversHeaderAndControl) {
  const AuthKey key = TestKey();
  Buffer control{std::byte{1}, std::byte{2}, std::byte{3}};
  const Buffer frame = MakeFrame(Opcode::kPing, control, {}, &key);
  auto v = DecodeFrame(frame, &key);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_TRUE(v->header.flags & kFlagAuth);
  EXPECT_EQ(v->control.size(), 3u);

  // Any change to a covered byte breaks the tag.
  for (size_t at : {size_t{8}, size_t{kHeaderSize + 1}}) {
    Buffer tampered = frame;
    tampered[at] ^= std::byte{1};
    EXPECT_EQ(DecodeFrame(tampered, &key).error(), errc::bad_tag) << "byte " << at;
  }
}

TEST(Frame, ADifferentKeyFails) {
  const AuthKey key = TestKey();
  const AuthKey other = AuthKey::Generate();
  const Buffer frame = MakeFrame(Opcode::kPing, Buffer(8), {}, &key);
  EXPECT_EQ(DecodeFrame(frame, &other).error(), errc::bad_tag);
}

TEST(Frame, UntaggedFrameIsRefusedWhenAKeyIsSet) {
  const AuthKey key = TestKey();
  const Buffer frame = MakeFrame(Opcode::kPing, Buffer(8));
  EXPECT_EQ(DecodeFrame(frame, &key).error(), errc::missing_tag);
}

TEST(Frame, TaggedFrameIsRefusedWhenNoKeyIsSet) {
  const AuthKey key = TestKey();
  const Buffer frame = MakeFrame(Opcode::kPing, Buffer(8), {}, &key);
  EXPECT_EQ(DecodeFrame(frame, nullptr).error(), errc::unexpected_tag);
}

TEST(AuthKey, ParsesHexAndRefusesAnythingElse) {
  const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
  auto k = AuthKey::FromHex(hex);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->ToHex(), "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
  EXPECT_EQ(AuthKey::FromHex(hex.substr(1)).error(), errc::bad_auth_key);
  EXPECT_EQ(AuthKey::FromHex(hex + "0").error(), errc::bad_auth_key);
  EXPECT_EQ(AuthKey::FromHex("zz" + hex.substr(2)).error(), errc::bad_auth_key);
}

TEST(AuthKey, GeneratedKeysDiffer) {
  EXPECT_NE(AuthKey::Generate().ToHex(), AuthKey::Generate().ToHex());
  EXPECT_EQ(AuthKey::Generate().ToHex().size(), 64u);
}

TEST(AuthKey, HmacIsSha256HmacOfTheConcatenation) {
  // Reference: `openssl dgst -sha256 -mac HMAC -macopt hexkey:<TestKey>` of
  // the same message.
  const AuthKey key = TestKey();
  const std::string msg = "what do ya want for nothing?";
  const Bytes all = testing::AsBytes(msg);
  const Tag tag = key.Hmac(all.first(5), all.subspan(5));
  std::string hex;
  for (std::byte b : tag) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", std::to_integer<int>(b));
    hex += two;
  }
  EXPECT_EQ(hex, "f88728429bfc49fe0469e1c1680d4a0296fa44aec2669416a3bd4aede19edcdb");
  EXPECT_EQ(tag, key.Hmac(all, {}));
}

TEST(Frame, SealedHeadersBindTheirSequenceNumberUnderTheSessionKey) {
  const AuthKey key = testing::TestKey();
  Nonce a{}, b{};
  a[0] = std::byte{1};
  const AuthKey session = key.Session(a, b);
  FrameHeader h;
  h.opcode = Opcode::kDelete;
  h.request_id = 7;
  const Buffer control = {std::byte{1}, std::byte{2}};
  h.control_len = 2;
  HeaderBytes raw = EncodeHeader(h, control, nullptr);
  SealHeader(raw, 5, control, &session);
  auto d = DecodeHeader(raw);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->seq, 5u);
  EXPECT_TRUE(d->flags & kFlagAuth);
  EXPECT_TRUE(VerifyTag(raw, *d, control, &session));
  // Under the long-term key, or another connection's session key, it fails.
  EXPECT_EQ(VerifyTag(raw, *d, control, &key).error(), errc::bad_tag);
  b[0] = std::byte{9};
  const AuthKey other = key.Session(a, b);
  EXPECT_EQ(VerifyTag(raw, *d, control, &other).error(), errc::bad_tag);
  // A frame renumbered by someone without the key fails too.
  HeaderBytes moved = raw;
  moved[24] = std::byte{6};
  auto dm = DecodeHeader(moved);
  ASSERT_TRUE(dm);
  EXPECT_EQ(VerifyTag(moved, *dm, control, &session).error(), errc::bad_tag);
}

TEST(Frame, SequenceCheckTakesEachNumberOnceAndInOrder) {
  SequenceCheck seq;
  FrameHeader h;
  for (uint64_t i = 0; i < 3; ++i) {
    h.seq = i;
    EXPECT_TRUE(seq.Accept(h));
  }
  h.seq = 2;  // the same frame again: a replay
  EXPECT_EQ(seq.Accept(h).error(), errc::bad_sequence);
  h.seq = 4;  // one skipped
  EXPECT_EQ(seq.Accept(h).error(), errc::bad_sequence);
  h.seq = 3;
  EXPECT_TRUE(seq.Accept(h));
}

TEST(Frame, AnOldVersionDecodesSoThatItCanBeRefused) {
  FrameHeader h;
  h.version = 1;
  HeaderBytes raw = EncodeHeader(h, {}, nullptr);
  auto d = DecodeHeader(raw);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->version, 1);
  EXPECT_LT(d->version, kMinProtocolVersion);
  raw[24] = std::byte{1};  // version 1 had these bytes reserved
  EXPECT_EQ(DecodeHeader(raw).error(), errc::bad_reserved);
}

}  // namespace
}  // namespace memkv::proto
