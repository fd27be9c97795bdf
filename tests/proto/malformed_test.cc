// Every malformed input decodes to its own error: never a crash, never an
// over-read (this binary runs under ASan in the test command).

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>

#include "common/checksum.h"
#include "proto/chunk.h"
#include "proto/messages.h"
#include "test_frames.h"

namespace memkv::proto {
namespace {

using testing::AsBytes;
using testing::MakeFrame;

Buffer PingFrame() {
  Buffer control;
  Encode(Ping{1}, control);
  return MakeFrame(Opcode::kPing, control);
}

void PutU32(Buffer& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
void PutU16(Buffer& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

struct FrameCase {
  const char* name;
  std::function<Buffer()> make;
  errc want;
};

void PrintTo(const FrameCase& c, std::ostream* os) { *os << c.name; }

class MalformedFrame : public ::testing::TestWithParam<FrameCase> {};

TEST_P(MalformedFrame, DecodesToItsOwnError) {
  const Buffer frame = GetParam().make();
  auto r = DecodeFrame(frame, nullptr);
  ASSERT_FALSE(r) << GetParam().name << " decoded";
  EXPECT_EQ(r.error(), GetParam().want)
      << GetParam().name << ": got '" << r.error().message() << "'";
}

INSTANTIATE_TEST_SUITE_P(
    Frames, MalformedFrame,
    ::testing::Values(
        FrameCase{"empty", [] { return Buffer{}; }, errc::truncated},
        FrameCase{"header cut short",
                  [] { auto f = PingFrame(); f.resize(40); return f; }, errc::truncated},
        FrameCase{"payload cut short",
                  [] { auto f = PingFrame(); f.pop_back(); return f; }, errc::truncated},
        FrameCase{"bytes after the payload",
                  [] { auto f = PingFrame(); f.push_back(std::byte{0}); return f; },
                  errc::trailing_bytes},
        FrameCase{"bad magic",
                  [] { auto f = PingFrame(); f[0] = std::byte{'X'}; return f; }, errc::bad_magic},
        FrameCase{"HTTP instead of memkv",
                  [] { std::string s = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(40, ' ');
                       auto b = AsBytes(s); return Buffer(b.begin(), b.end()); },
                  errc::bad_magic},
        FrameCase{"newer version",
                  [] { auto f = PingFrame(); PutU16(f, 4, kProtocolVersion + 1); return f; },
                  errc::unsupported_version},
        FrameCase{"version zero",
                  [] { auto f = PingFrame(); PutU16(f, 4, 0); return f; }, errc::bad_version},
        FrameCase{"opcode zero",
                  [] { auto f = PingFrame(); f[6] = std::byte{0}; return f; }, errc::unknown_opcode},
        FrameCase{"opcode past the last",
                  [] { auto f = PingFrame(); f[6] = std::byte{kMaxOpcode + 1}; return f; },
                  errc::unknown_opcode},
        FrameCase{"opcode 255",
                  [] { auto f = PingFrame(); f[6] = std::byte{255}; return f; }, errc::unknown_opcode},
        FrameCase{"unknown flag",
                  [] { auto f = PingFrame(); f[7] = std::byte{0x80}; return f; }, errc::bad_flags},
        FrameCase{"reserved bytes set in version 1",
                  [] { auto f = PingFrame(); PutU16(f, 4, 1); f[27] = std::byte{1}; return f; },
                  errc::bad_reserved},
        FrameCase{"control over 16 MiB",
                  [] { auto f = PingFrame(); PutU32(f, 16, kMaxPayload + 1); return f; },
                  errc::frame_too_large},
        FrameCase{"control + data over 16 MiB",
                  [] { auto f = PingFrame(); PutU32(f, 16, kMaxPayload); PutU32(f, 20, 1); return f; },
                  errc::frame_too_large},
        FrameCase{"lengths sum overflows 32 bits",
                  [] { auto f = PingFrame(); PutU32(f, 16, 0xffffffff); PutU32(f, 20, 0xffffffff); return f; },
                  errc::frame_too_large},
        FrameCase{"header says more control than there is",
                  [] { auto f = PingFrame(); PutU32(f, 16, 9); return f; }, errc::truncated}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (char& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

TEST(MalformedFrame, TagCases) {
  const AuthKey key = testing::TestKey();
  Buffer control;
  Encode(Ping{1}, control);
  EXPECT_EQ(DecodeFrame(MakeFrame(Opcode::kPing, control), &key).error(), errc::missing_tag);
  Buffer tagged = MakeFrame(Opcode::kPing, control, {}, &key);
  tagged[40] ^= std::byte{0xff};
  EXPECT_EQ(DecodeFrame(tagged, &key).error(), errc::bad_tag);
  EXPECT_EQ(DecodeFrame(MakeFrame(Opcode::kPing, control, {}, &key), nullptr).error(),
            errc::unexpected_tag);
}

// ---- message bodies ----

Buffer ReadRequestWithKey(std::string_view key) {
  BatchReadRequest m;
  m.batch = {1, 0, 1};
  m.entries.push_back({key, 0, 0, {}});
  Buffer b;
  Encode(m, b);
  return b;
}

TEST(MalformedMessage, KeyEmptyOrOver1024Bytes) {
  BatchReadRequest d;
  EXPECT_EQ(Decode(ReadRequestWithKey(""), {}, d).error(), errc::empty_key);
  const std::string big(1025, 'k');
  EXPECT_EQ(Decode(ReadRequestWithKey(big), {}, d).error(), errc::key_too_long);
  const std::string max(1024, 'k');
  EXPECT_TRUE(Decode(ReadRequestWithKey(max), {}, d));
  KeysRequest k;
  Buffer b;
  Encode(KeysRequest{{1, 0, 1}, {""}}, b);
  EXPECT_EQ(Decode(b, k).error(), errc::empty_key);
  EXPECT_EQ(CheckKey(big).error(), errc::key_too_long);
  EXPECT_EQ(CheckKey("").error(), errc::empty_key);
}

TEST(MalformedMessage, CountLargerThanThePayloadIsRefusedBeforeReserving) {
  Buffer b = ReadRequestWithKey("abc");
  PutU32(b, 0, 0xffffffff);  // total
  PutU32(b, 8, 0xffffffff);  // count
  BatchReadRequest d;
  EXPECT_EQ(Decode(b, {}, d).error(), errc::truncated);
  EXPECT_LT(d.entries.capacity(), 1000u);
}

TEST(MalformedMessage, BatchOverTheLimitIsTooManyEntries) {
  KeysRequest m{{3, 0, 3}, {"a", "b", "c"}};
  Buffer b;
  Encode(m, b);
  KeysRequest d;
  EXPECT_EQ(Decode(b, d, DecodeLimits{2}).error(), errc::too_many_entries);
  EXPECT_TRUE(Decode(b, d, DecodeLimits{3}));
}

TEST(MalformedMessage, SliceOutsideItsBatch) {
  KeysRequest m{{3, 2, 2}, {"a", "b"}};
  Buffer b;
  Encode(m, b);
  KeysRequest d;
  EXPECT_EQ(Decode(b, d).error(), errc::bad_batch_range);
}

TEST(MalformedMessage, FewerEntriesThanCounted) {
  KeysRequest m{{3, 0, 3}, {"aaaa", "bbbb", "cccc"}};
  Buffer b;
  Encode(m, b);
  b.resize(b.size() - 6);  // the last key is gone
  KeysRequest d;
  EXPECT_EQ(Decode(b, d).error(), errc::truncated);
}

TEST(MalformedMessage, TrailingBytesAfterTheMessage) {
  Buffer b;
  Encode(Ping{1}, b);
  b.push_back(std::byte{0});
  Ping p;
  EXPECT_EQ(Decode(b, p).error(), errc::trailing_bytes);
}

TEST(MalformedMessage, InlineLengthsThatDisagreeWithTheData) {
  const std::string v = "0123456789";
  BatchWriteRequest m;
  m.batch = {1, 0, 1};
  m.entries.push_back({"k", v.size(), Xxh3(v), {}});
  Buffer b;
  Encode(m, b);
  BatchWriteRequest d;
  EXPECT_TRUE(Decode(b, AsBytes(v), d));
  EXPECT_EQ(Decode(b, AsBytes(v.substr(1)), d).error(), errc::length_mismatch);
  EXPECT_EQ(Decode(b, AsBytes(v + "x"), d).error(), errc::length_mismatch);
  // A value length that would wrap the running sum.
  m.entries[0].value_len = ~uint64_t{0};
  b.clear();
  Encode(m, b);
  EXPECT_EQ(Decode(b, AsBytes(v), d).error(), errc::length_mismatch);
}

TEST(MalformedMessage, ZeroLengthValue) {
  BatchWriteRequest m;
  m.batch = {1, 0, 1};
  m.entries.push_back({"k", 0, 0, {}});
  Buffer b;
  Encode(m, b);
  BatchWriteRequest d;
  EXPECT_EQ(Decode(b, {}, d).error(), errc::zero_length_value);
}

TEST(MalformedMessage, UnknownLocationKind) {
  Buffer b = ReadRequestWithKey("k");
  b.back() = std::byte{9};
  BatchReadRequest d;
  EXPECT_EQ(Decode(b, {}, d).error(), errc::bad_location);
}

TEST(MalformedMessage, ReadRequestCannotAskForAStream) {
  BatchReadRequest m;
  m.batch = {1, 0, 1};
  m.entries.push_back({"k", 0, 0, {LocationKind::kStream}});
  Buffer b;
  Encode(m, b);
  BatchReadRequest d;
  EXPECT_EQ(Decode(b, {}, d).error(), errc::bad_location);
}

TEST(MalformedMessage, ShmSourceSmallerThanTheValue) {
  BatchWriteRequest m;
  m.batch = {1, 0, 1};
  m.entries.push_back({"k", 8192, 0, {LocationKind::kShm, 1, 0, 4096}});
  Buffer b;
  Encode(m, b);
  BatchWriteRequest d;
  EXPECT_EQ(Decode(b, {}, d).error(), errc::length_mismatch);
}

TEST(MalformedMessage, UnknownStatusInAReply) {
  StatusReply m;
  m.batch = {1, 0, 1};
  m.statuses = {StatusCode::kOk};
  Buffer b;
  Encode(m, b);
  b.back() = std::byte{kMaxStatus + 1};
  StatusReply d;
  EXPECT_EQ(Decode(b, d).error(), errc::bad_status);
}

TEST(MalformedMessage, ReadReplyClaimingMoreInlineBytesThanItCarries) {
  BatchReadReply m;
  m.batch = {1, 0, 1};
  m.results.push_back({StatusCode::kOk, Delivery::kInline, 10, 10, 0});
  Buffer b;
  Encode(m, b);
  BatchReadReply d;
  EXPECT_EQ(Decode(b, AsBytes("short"), d).error(), errc::length_mismatch);
}

TEST(MalformedMessage, HostIdTooLong) {
  AttachRequest m;
  const std::string host(kMaxNameSize + 1, 'h');
  m.host_id = host;
  Buffer b;
  Encode(m, b);
  AttachRequest d;
  EXPECT_EQ(Decode(b, d).error(), errc::string_too_long);
}

TEST(MalformedMessage, UnknownRailBits) {
  AttachRequest m;
  m.rails = 0x100;
  Buffer b;
  Encode(m, b);
  AttachRequest d;
  EXPECT_EQ(Decode(b, d).error(), errc::bad_flags);
}

TEST(MalformedMessage, ChecksumOnAChunkThatIsNotTheLast) {
  Buffer b;
  Encode(ChunkHeader{0, 0, 0, false, 7}, b);
  ChunkHeader c;
  EXPECT_EQ(Decode(b, AsBytes("x"), c).error(), errc::trailing_bytes);
  // A last chunk with a partial checksum is refused too.
  b.clear();
  Encode(ChunkHeader{0, 0, 0, true, 7}, b);
  b.pop_back();
  EXPECT_EQ(Decode(b, AsBytes("x"), c).error(), errc::trailing_bytes);
}

TEST(MalformedMessage, ChunkWithoutBytes) {
  Buffer b;
  Encode(ChunkHeader{0, 0, 0, false}, b);
  ChunkHeader c;
  EXPECT_EQ(Decode(b, {}, c).error(), errc::length_mismatch);
}

TEST(MalformedMessage, PlacedStepOfNoBytesPastTheEndOrWithABadLastFlag) {
  PlacedStep s;
  Buffer b;
  Encode(PlacedStep{0, 0, 0, 0, false}, b);
  EXPECT_EQ(Decode(b, s).error(), errc::length_mismatch);
  b.clear();
  Encode(PlacedStep{0, 0, UINT64_MAX, 2, false}, b);
  EXPECT_EQ(Decode(b, s).error(), errc::length_mismatch);
  b.clear();
  Encode(PlacedStep{0, 0, 0, 1, true}, b);
  b.back() = std::byte{2};
  EXPECT_EQ(Decode(b, s).error(), errc::bad_flags);
  b.clear();
  Encode(PlacedStep{0, 0, 0, 1, true}, b);
  b.push_back(std::byte{0});
  EXPECT_EQ(Decode(b, s).error(), errc::trailing_bytes);
}

TEST(MalformedMessage, EveryTruncationOfAValidMessageIsAnError) {
  BatchWriteRequest m;
  m.batch = {2, 0, 2};
  m.entries.push_back({"key-one", 3, 1, {}});
  m.entries.push_back({"key-two", 5, 2, {LocationKind::kShm, 1, 0, 5}});
  Buffer b;
  Encode(m, b);
  for (size_t n = 0; n < b.size(); ++n) {
    BatchWriteRequest d;
    const auto r = Decode(Bytes(b.data(), n), AsBytes("abc"), d);
    EXPECT_FALSE(r) << "prefix of " << n << " bytes decoded";
  }
}

}  // namespace
}  // namespace memkv::proto
