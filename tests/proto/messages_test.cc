// Round trip of every message of the control plane.

#include "proto/messages.h"

#include <gtest/gtest.h>

#include <string>

#include "common/checksum.h"
#include "proto/chunk.h"
#include "test_frames.h"

namespace memkv::proto {
namespace {

using testing::AsBytes;
using testing::AsString;

TEST(Messages, AttachRequestRoundTrips) {
  const AuthKey key = testing::TestKey();
  Nonce client{}, server{};
  client[0] = std::byte{1};
  server[0] = std::byte{2};
  const AuthKey session = key.Session(client, server);
  AttachRequest m;
  for (size_t i = 0; i < m.client_id.size(); ++i) m.client_id[i] = std::byte(i * 7);
  m.rails = kRailTcp | kRailShm;
  m.host_id = "gpu-node-17";
  m.rdma_endpoint = "fi_addr:127.0.0.1:7000";
  m.proof = AttachProof(session, m.client_id);
  Buffer b;
  Encode(m, b);
  AttachRequest d;
  ASSERT_TRUE(Decode(b, d));
  EXPECT_EQ(d.client_id, m.client_id);
  EXPECT_EQ(d.rails, m.rails);
  EXPECT_EQ(d.host_id, "gpu-node-17");
  EXPECT_EQ(d.rdma_endpoint, "fi_addr:127.0.0.1:7000");
  EXPECT_TRUE(TagsEqual(d.proof, AttachProof(session, d.client_id)));
  // The proof is bound to this connection's nonces: another Hello's session
  // key (a replay on a new connection) does not verify it.
  server[0] = std::byte{3};
  EXPECT_FALSE(TagsEqual(d.proof, AttachProof(key.Session(client, server), d.client_id)));
  EXPECT_FALSE(TagsEqual(d.proof, AttachProof(key, d.client_id)));
}

TEST(Messages, HelloRoundTrips) {
  Hello h;
  h.nonce[5] = std::byte{42};
  Buffer b;
  Encode(h, b);
  Hello d;
  ASSERT_TRUE(Decode(b, d));
  EXPECT_EQ(d.max_version, kProtocolVersion);
  EXPECT_EQ(d.nonce, h.nonce);
  HelloReply r;
  r.nonce[31] = std::byte{7};
  b.clear();
  Encode(r, b);
  HelloReply dr;
  ASSERT_TRUE(Decode(b, dr));
  EXPECT_EQ(dr.version, kProtocolVersion);
  EXPECT_EQ(dr.nonce, r.nonce);
  b.pop_back();
  EXPECT_EQ(Decode(b, dr).error(), errc::truncated);
}

TEST(Messages, ListCapacityAndRenameRoundTrip) {
  ListRequest lr{"layer/3/", "layer/3/k9", 100};
  Buffer b;
  Encode(lr, b);
  ListRequest dl;
  ASSERT_TRUE(Decode(b, dl));
  EXPECT_EQ(dl.prefix, "layer/3/");
  EXPECT_EQ(dl.cursor, "layer/3/k9");
  EXPECT_EQ(dl.limit, 100u);
  ListReply rep;
  rep.entries = {{"layer/3/a", 10, 1}, {"layer/3/b", 20, 2}};
  rep.cursor = "layer/3/b";
  b.clear();
  Encode(rep, b);
  ListReply drep;
  ASSERT_TRUE(Decode(b, drep));
  ASSERT_EQ(drep.entries.size(), 2u);
  EXPECT_EQ(drep.entries[1].key, "layer/3/b");
  EXPECT_EQ(drep.entries[1].value_size, 20u);
  EXPECT_EQ(drep.entries[1].version, 2u);
  EXPECT_EQ(drep.cursor, "layer/3/b");

  CapacityReply cap;
  cap.total_bytes = 1000;
  cap.used_bytes = 10;
  cap.keys = 3;
  cap.max_value_size = 1 << 30;
  b.clear();
  Encode(cap, b);
  CapacityReply dcap;
  ASSERT_TRUE(Decode(b, dcap));
  EXPECT_EQ(dcap.total_bytes, 1000u);
  EXPECT_EQ(dcap.used_bytes, 10u);
  EXPECT_EQ(dcap.keys, 3u);

  RenameRequest rn;
  rn.batch = {1, 0, 1};
  rn.entries = {{"tmp/x", "x"}};
  b.clear();
  Encode(rn, b);
  RenameRequest drn;
  ASSERT_TRUE(Decode(b, drn));
  ASSERT_EQ(drn.entries.size(), 1u);
  EXPECT_EQ(drn.entries[0].from, "tmp/x");
  EXPECT_EQ(drn.entries[0].to, "x");
  rn.entries = {{"", "x"}};
  b.clear();
  Encode(rn, b);
  EXPECT_EQ(Decode(b, drn).error(), errc::empty_key);
}

TEST(Messages, ReadRepliesCarryPerPageChecksumsThatCatchAFlippedByte) {
  std::string value(10000, 'v');
  const Bytes bytes = AsBytes(value);
  Buffer sums;
  Writer w(sums);
  for (size_t at = 0; at < value.size(); at += kPageSize)
    w.U64(Xxh3(value.data() + at, std::min(kPageSize, value.size() - at)));
  BatchReadReply m;
  m.batch = {1, 0, 1};
  ReadResult r;
  r.delivery = Delivery::kInline;
  r.value_size = r.length = value.size();
  r.version = 9;
  r.page_sums = sums;
  m.results = {r};
  Buffer b;
  Encode(m, b);
  BatchReadReply d;
  ASSERT_TRUE(Decode(b, bytes, d));
  ASSERT_EQ(d.results[0].pages(), 3u);
  EXPECT_EQ(d.results[0].version, 9u);
  EXPECT_TRUE(ChecksumsMatch(d.results[0], bytes));
  value[8191] = 'x';  // the last byte of the second page
  EXPECT_FALSE(ChecksumsMatch(d.results[0], AsBytes(value)));
  // A page count that does not cover the delivered bytes is refused.
  b.clear();
  m.results[0].length = 4096;
  Encode(m, b);
  EXPECT_EQ(Decode(b, bytes.first(4096), d).error(), errc::length_mismatch);
  // An entry placed in steps is checked against its page sums step by
  // step: it must have them.
  m.results[0] = r;
  m.results[0].delivery = Delivery::kPlacedInSteps;
  b.clear();
  Encode(m, b);
  ASSERT_TRUE(Decode(b, {}, d));
  EXPECT_EQ(d.results[0].delivery, Delivery::kPlacedInSteps);
  m.results[0].page_sums = {};
  b.clear();
  Encode(m, b);
  EXPECT_EQ(Decode(b, {}, d).error(), errc::length_mismatch);
}

TEST(Messages, OpenStreamWritesCarryNoLengthUntilTheirLastChunk) {
  BatchWriteRequest m;
  m.batch = {1, 0, 1};
  m.entries = {{"file", 0, 0, {LocationKind::kOpenStream}}};
  Buffer b;
  Encode(m, b);
  BatchWriteRequest d;
  ASSERT_TRUE(Decode(b, {}, d));
  EXPECT_EQ(d.entries[0].src.kind, LocationKind::kOpenStream);
  m.entries[0].value_len = 5;  // a length given up front: that is kStream's job
  b.clear();
  Encode(m, b);
  EXPECT_EQ(Decode(b, {}, d).error(), errc::length_mismatch);
}

TEST(Messages, AttachReplyRoundTrips) {
  AttachReply m;
  m.session_id = 12345;
  m.rails = kRailTcp | kRailShm;
  m.host_id = "storage-3";
  m.unix_socket = "/run/memkv/memkv.sock";
  m.max_value_size = 1ull << 30;
  m.max_batch_entries = 65536;
  m.max_inflight = 1024;
  Buffer b;
  Encode(m, b);
  AttachReply d;
  ASSERT_TRUE(Decode(b, d));
  EXPECT_EQ(d.head.status, StatusCode::kOk);
  EXPECT_EQ(d.version, kProtocolVersion);
  EXPECT_EQ(d.session_id, 12345u);
  EXPECT_EQ(d.rails, m.rails);
  EXPECT_EQ(d.host_id, "storage-3");
  EXPECT_EQ(d.unix_socket, "/run/memkv/memkv.sock");
  EXPECT_EQ(d.max_value_size, 1ull << 30);
  EXPECT_EQ(d.max_batch_entries, 65536u);
  EXPECT_EQ(d.max_inflight, 1024u);
}

TEST(Messages, AnErrorReplyCarriesItsStatusAndMessageOnly) {
  AttachReply m;
  m.head = {StatusCode::kUnsupportedVersion, "client speaks version 2, server up to 1"};
  Buffer b;
  Encode(m, b);
  AttachReply d;
  ASSERT_TRUE(Decode(b, d));
  EXPECT_EQ(d.head.status, StatusCode::kUnsupportedVersion);
  EXPECT_EQ(d.head.message, "client speaks version 2, server up to 1");
}

TEST(Messages, BatchReadRequestRoundTripsEveryLocationKind) {
  BatchReadRequest m;
  m.batch = {10, 4, 3};
  m.entries.push_back({"a", 0, 0, {}});
  m.entries.push_back({"block/2", 4096, 8192, {LocationKind::kShm, 3, 1 << 20, 8192}});
  m.entries.push_back({std::string_view("k\0y", 3), 1, 2, {LocationKind::kRdma, 0xabcd, 0x7f0000001000, 2}});
  Buffer b;
  Encode(m, b);
  EXPECT_EQ(b.size(), 12 + EncodedSize(m.entries[0]) + EncodedSize(m.entries[1]) +
                          EncodedSize(m.entries[2]));
  BatchReadRequest d;
  ASSERT_TRUE(Decode(b, {}, d));
  EXPECT_EQ(d.batch.total, 10u);
  EXPECT_EQ(d.batch.first, 4u);
  ASSERT_EQ(d.entries.size(), 3u);
  EXPECT_EQ(d.entries[0].key, "a");
  EXPECT_EQ(d.entries[0].dest.kind, LocationKind::kInline);
  EXPECT_EQ(d.entries[1].key, "block/2");
  EXPECT_EQ(d.entries[1].offset, 4096u);
  EXPECT_EQ(d.entries[1].length, 8192u);
  EXPECT_EQ(d.entries[1].dest.kind, LocationKind::kShm);
  EXPECT_EQ(d.entries[1].dest.region, 3u);
  EXPECT_EQ(d.entries[1].dest.address, 1u << 20);
  EXPECT_EQ(d.entries[1].dest.capacity, 8192u);
  EXPECT_EQ(d.entries[2].key, std::string_view("k\0y", 3));
  EXPECT_EQ(d.entries[2].dest.kind, LocationKind::kRdma);
  EXPECT_EQ(d.entries[2].dest.region, 0xabcdu);
  EXPECT_EQ(d.entries[2].dest.address, 0x7f0000001000u);
}

TEST(Messages, BatchReadReplyRoundTripsWithInlineBytes) {
  const std::string v1 = "hello", v3 = "world!!";
  BatchReadReply m;
  m.batch = {3, 0, 3};
  m.results.push_back({StatusCode::kOk, Delivery::kInline, 5, 5, Xxh3(v1)});
  m.results.push_back({StatusCode::kNotFound, Delivery::kNone, 0, 0, 0});
  m.results.push_back({StatusCode::kOk, Delivery::kInline, 100, 7, Xxh3(v3)});
  const std::string data = v1 + v3;
  Buffer b;
  Encode(m, b);
  BatchReadReply d;
  ASSERT_TRUE(Decode(b, AsBytes(data), d));
  ASSERT_EQ(d.results.size(), 3u);
  EXPECT_EQ(d.results[1].status, StatusCode::kNotFound);
  EXPECT_EQ(d.results[2].value_size, 100u);
  EXPECT_EQ(d.results[2].length, 7u);
  EXPECT_EQ(AsString(d.data), data);
  EXPECT_EQ(d.results[2].checksum, Xxh3(AsString(d.data).substr(5)));
}

TEST(Messages, BatchWriteRequestRoundTripsWithChecksums) {
  const std::string v1(100, 'x'), v2(4096, 'y');
  BatchWriteRequest m;
  m.batch = {4, 0, 4};
  m.entries.push_back({"k1", v1.size(), Xxh3(v1), {}});
  m.entries.push_back({"k2", v2.size(), Xxh3(v2), {}});
  m.entries.push_back({"k3", 1 << 20, 77, {LocationKind::kShm, 1, 0, 1 << 20}});
  m.entries.push_back({"k4", 1ull << 30, 78, {LocationKind::kStream}});
  const std::string data = v1 + v2;
  Buffer b;
  Encode(m, b);
  BatchWriteRequest d;
  ASSERT_TRUE(Decode(b, AsBytes(data), d));
  ASSERT_EQ(d.entries.size(), 4u);
  EXPECT_EQ(d.entries[0].checksum, Xxh3(AsString(d.data).substr(0, 100)));
  EXPECT_EQ(d.entries[1].checksum, Xxh3(AsString(d.data).substr(100)));
  EXPECT_EQ(d.entries[2].src.kind, LocationKind::kShm);
  EXPECT_EQ(d.entries[3].src.kind, LocationKind::kStream);
  EXPECT_EQ(d.entries[3].value_len, 1ull << 30);
}

TEST(Messages, StatusReplyRoundTrips) {
  StatusReply m;
  m.batch = {3, 0, 3};
  m.statuses = {StatusCode::kOk, StatusCode::kTooLarge, StatusCode::kNoSpace};
  Buffer b;
  Encode(m, b);
  StatusReply d;
  ASSERT_TRUE(Decode(b, d));
  EXPECT_EQ(d.statuses, m.statuses);
}

TEST(Messages, KeysRequestAndExistsReplyRoundTrip) {
  KeysRequest m;
  m.batch = {2, 0, 2};
  const std::string long_key(1024, 'k');
  m.keys = {"alpha", long_key};
  Buffer b;
  Encode(m, b);
  KeysRequest d;
  ASSERT_TRUE(Decode(b, d));
  ASSERT_EQ(d.keys.size(), 2u);
  EXPECT_EQ(d.keys[0], "alpha");
  EXPECT_EQ(d.keys[1], long_key);

  ExistsReply r;
  r.batch = {2, 0, 2};
  r.results = {{StatusCode::kOk, 4096}, {StatusCode::kNotFound, 0}};
  Buffer rb;
  Encode(r, rb);
  ExistsReply rd;
  ASSERT_TRUE(Decode(rb, rd));
  ASSERT_EQ(rd.results.size(), 2u);
  EXPECT_EQ(rd.results[0].value_size, 4096u);
  EXPECT_EQ(rd.results[1].status, StatusCode::kNotFound);
}

TEST(Messages, SmallMessagesRoundTrip) {
  Buffer b;
  Encode(Ping{0xfeedface}, b);
  Ping p;
  ASSERT_TRUE(Decode(b, p));
  EXPECT_EQ(p.token, 0xfeedfaceu);

  b.clear();
  Encode(ChunkHeader{3, 9, 9 << 20, true}, b);
  ChunkHeader c;
  const std::string bytes = "chunk";
  ASSERT_TRUE(Decode(b, AsBytes(bytes), c));
  EXPECT_EQ(c.entry, 3u);
  EXPECT_EQ(c.seq, 9u);
  EXPECT_EQ(c.offset, 9u << 20);
  EXPECT_TRUE(c.last);
  EXPECT_FALSE(c.checksum);

  // The last chunk may carry the streamed bytes' checksum.
  b.clear();
  Encode(ChunkHeader{1, 2, 16 << 20, true, 0x1234567890abcdefull}, b);
  EXPECT_EQ(b.size(), 25u);
  ASSERT_TRUE(Decode(b, AsBytes(bytes), c));
  EXPECT_EQ(c.entry, 1u);
  EXPECT_EQ(c.seq, 2u);
  EXPECT_TRUE(c.last);
  ASSERT_TRUE(c.checksum);
  EXPECT_EQ(*c.checksum, 0x1234567890abcdefull);
  // Decoding into a used message clears a checksum the frame does not have.
  b.clear();
  Encode(ChunkHeader{1, 3, 0, true}, b);
  ASSERT_TRUE(Decode(b, AsBytes(bytes), c));
  EXPECT_FALSE(c.checksum);

  b.clear();
  Encode(PlacedStep{2, 4, 4 << 20, (1 << 20) - 7, true}, b);
  PlacedStep ps;
  ASSERT_TRUE(Decode(b, ps));
  EXPECT_EQ(ps.entry, 2u);
  EXPECT_EQ(ps.seq, 4u);
  EXPECT_EQ(ps.offset, 4u << 20);
  EXPECT_EQ(ps.length, (1u << 20) - 7);
  EXPECT_TRUE(ps.last);

  b.clear();
  Encode(RegisterRegion{5, 1 << 30}, b);
  RegisterRegion rr;
  ASSERT_TRUE(Decode(b, rr));
  EXPECT_EQ(rr.region_id, 5u);
  EXPECT_EQ(rr.size, 1u << 30);

  b.clear();
  Encode(ReleaseRegion{5}, b);
  ReleaseRegion rel;
  ASSERT_TRUE(Decode(b, rel));
  EXPECT_EQ(rel.region_id, 5u);

  b.clear();
  Encode(ReplyHead{StatusCode::kOk, ""}, b);
  ReplyHead h;
  ASSERT_TRUE(Decode(b, h));
  EXPECT_EQ(h.status, StatusCode::kOk);
}

TEST(Messages, ABatchOf7500EntriesRoundTripsThroughOneFrame) {
  std::vector<std::string> keys;
  BatchReadRequest m;
  for (int i = 0; i < 7500; ++i) keys.push_back("model/layer" + std::to_string(i % 80) + "/" + std::to_string(i));
  m.batch = {7500, 0, 7500};
  for (const auto& k : keys) m.entries.push_back({k, 0, 4096, {LocationKind::kShm, 1, 0, 4096}});
  Buffer control;
  Encode(m, control);
  const Buffer frame = testing::MakeFrame(Opcode::kBatchRead, control);
  auto v = DecodeFrame(frame, nullptr);
  ASSERT_TRUE(v);
  BatchReadRequest d;
  ASSERT_TRUE(Decode(v->control, v->data, d));
  ASSERT_EQ(d.entries.size(), 7500u);
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(d.entries[i].key, keys[i]);
}

TEST(Messages, StatusNamesCoverEveryValue) {
  for (int s = 0; s <= kMaxStatus; ++s)
    EXPECT_STRNE(StatusName(static_cast<StatusCode>(s)), "Unknown") << s;
  for (int op = 1; op <= kMaxOpcode; ++op)
    EXPECT_STRNE(OpcodeName(static_cast<Opcode>(op)), "Unknown") << op;
}

TEST(PlanSlices, FillsFramesInOrderAndGivesHugeEntriesTheirOwn) {
  const std::vector<uint64_t> cost = {6, 6, 6, 30, 1, 1};
  const auto s = PlanSlices(cost, /*overhead=*/2, /*max_payload=*/16);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].first, 0u);
  EXPECT_EQ(s[0].count, 2u);  // 2 + 6 + 6 = 14; a third would be 20
  EXPECT_EQ(s[1].first, 2u);
  EXPECT_EQ(s[1].count, 1u);
  EXPECT_EQ(s[2].first, 3u);  // 30 alone: streamed
  EXPECT_EQ(s[2].count, 1u);
  EXPECT_EQ(s[3].first, 4u);
  EXPECT_EQ(s[3].count, 2u);
  EXPECT_TRUE(PlanSlices({}, 2, 16).empty());
}

TEST(PlanSlices, A7500EntryBatchOf16KiBValuesSpansFramesUnder16MiB) {
  std::vector<uint64_t> cost(7500, 16 * 1024 + 40);
  const auto s = PlanSlices(cost, 64 + 12);
  uint32_t next = 0;
  for (const Slice& sl : s) {
    EXPECT_EQ(sl.first, next);
    EXPECT_LE(76 + uint64_t{sl.count} * (16 * 1024 + 40), kMaxPayload);
    next += sl.count;
  }
  EXPECT_EQ(next, 7500u);
  EXPECT_EQ(s.size(), 8u);
}

}  // namespace
}  // namespace memkv::proto
