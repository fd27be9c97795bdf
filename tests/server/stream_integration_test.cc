// Values larger than a frame over the tcp rail: streamed in numbered chunks
// into their allocation on a put, and back in chunks on a get, through a
// real server in memory mode and in file mode.

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "../io/test_util.h"
#include "client/connection.h"
#include "common/checksum.h"
#include "proto/chunk.h"
#include "server_process.h"

namespace memkv::testing {
namespace {

using proto::Opcode;
using proto::StatusCode;
constexpr uint64_t kMiB = 1 << 20;

std::shared_ptr<std::vector<std::byte>> Value(uint64_t n, uint64_t seed) {
  auto v = std::make_shared<std::vector<std::byte>>(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t k = 0; k < n; k += 8) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::memcpy(v->data() + k, &x, std::min<uint64_t>(8, n - k));
  }
  return v;
}

class StreamTest : public ::testing::Test {
 protected:
  // A server in memory mode, or in file mode on two drives.
  void StartServer(bool file_mode, std::vector<std::string> extra = {},
                   const std::string& memory = "512MiB") {
    std::vector<std::string> args;
    if (file_mode) {
      const std::string d0 = dir_.File("d0.img"), d1 = dir_.File("d1.img");
      for (const auto& d : {d0, d1})
        ASSERT_EQ(std::system((std::string(MEMKV_BINARY) + " drive init " + d +
                               " --size 256MiB 2>/dev/null")
                                  .c_str()),
                  0);
      const std::string cfg = dir_.File("config.yaml");
      ASSERT_EQ(std::system((std::string(MEMKV_BINARY) + " setup --drives " + d0 + " " + d1 +
                             " > " + cfg + " 2>/dev/null")
                                .c_str()),
                0);
      args = {"--config", cfg, "--set", "network.auth_key=", "--set",
              "network.allow_unauthenticated=true"};
    } else {
      args = {"--mode", "memory", "--memory", memory};
    }
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(dir_.path().string(), args);
    ASSERT_TRUE(server_->ready()) << "the server did not start";
  }
  client::Connection Connect() {
    client::ConnectionOptions o;
    o.address = "127.0.0.1:" + std::to_string(server_->port());
    o.request_timeout = std::chrono::milliseconds(120000);
    auto c = client::Connection::Connect(o);
    EXPECT_TRUE(c) << c.error().message();
    return std::move(*c);
  }

  // Puts 40 MiB and 100 MiB values, gets them back whole and byte-exact,
  // and reads a range that crosses chunk boundaries.
  void PutGetLargeValues() {
    client::Connection conn = Connect();
    auto v40 = Value(40 * kMiB, 40), v100 = Value(100 * kMiB + 123, 100);
    auto put = conn.Put({{{"v40", *v40}}, v40});
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_EQ((*put)[0], StatusCode::kOk);
    put = conn.Put({{{"v100", *v100}}, v100});
    ASSERT_TRUE(put) << put.error().message();
    EXPECT_EQ((*put)[0], StatusCode::kOk);

    std::vector<std::byte> got40(v40->size()), got100(v100->size());
    auto got = conn.Get({{"v40", 0, 0, got40}, {"v100", 0, 0, got100}});
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ((*got)[0].status, StatusCode::kOk);
    EXPECT_EQ((*got)[0].length, v40->size());
    EXPECT_TRUE(got40 == *v40);
    EXPECT_EQ((*got)[1].status, StatusCode::kOk);
    EXPECT_EQ((*got)[1].value_size, v100->size());
    EXPECT_EQ((*got)[1].length, v100->size());
    EXPECT_TRUE(got100 == *v100);

    // 30 MiB from 5 MiB + 7 in: crosses several chunk boundaries.
    const uint64_t off = 5 * kMiB + 7, len = 30 * kMiB;
    std::vector<std::byte> range(len);
    got = conn.Get({{"v100", off, len, range}});
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ((*got)[0].status, StatusCode::kOk);
    EXPECT_EQ((*got)[0].length, len);
    EXPECT_TRUE(std::memcmp(range.data(), v100->data() + off, len) == 0);
    EXPECT_TRUE(conn.Ping());
  }

  io::testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(StreamTest, LargeValuesRoundTripInMemoryMode) {
  StartServer(false);
  PutGetLargeValues();
}

TEST_F(StreamTest, LargeValuesRoundTripInFileMode) {
  StartServer(true);
  PutGetLargeValues();
}

TEST_F(StreamTest, ValueOverMaxValueSizeIsRefusedTooLarge) {
  StartServer(false, {"--set", "limits.max_value_size=33554432"});
  client::Connection conn = Connect();
  auto v = Value(40 * kMiB, 1);
  auto put = conn.Put({{{"big", *v}}, v});
  ASSERT_TRUE(put) << put.error().message();
  EXPECT_EQ((*put)[0], StatusCode::kTooLarge);
  auto exists = conn.Exists({"big"});
  ASSERT_TRUE(exists);
  EXPECT_EQ((*exists)[0].status, StatusCode::kNotFound);
  // The connection goes on: its refused chunks were read and dropped.
  auto small = Value(1000, 2);
  put = conn.Put({{{"small", *small}}, small});
  ASSERT_TRUE(put);
  EXPECT_EQ((*put)[0], StatusCode::kOk);
}

// Raw frames: a BatchWrite announcing a streamed value, then its chunks.
void SendStreamHead(RawClient& c, const std::string& key, uint64_t size, uint64_t checksum,
                    uint64_t id) {
  proto::BatchWriteRequest req;
  req.batch = {1, 0, 1};
  req.entries.push_back({key, size, checksum, {proto::LocationKind::kStream}});
  proto::Buffer control;
  proto::Encode(req, control);
  ASSERT_TRUE(c.Send(Opcode::kBatchWrite, control, {}, id));
}
void SendChunk(RawClient& c, proto::ChunkHeader h, proto::Bytes bytes, uint64_t id) {
  proto::Buffer control;
  proto::Encode(h, control);
  ASSERT_TRUE(c.Send(Opcode::kWriteChunk, control, bytes, id));
}

TEST_F(StreamTest, PutCutOffMidStreamNeverBecomesVisible) {
  // One session at a time: a client attaches once the cut one is gone.
  StartServer(false, {"--set", "limits.max_sessions=1"}, "128MiB");
  auto v = Value(40 * kMiB, 3);
  {
    auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
    ASSERT_TRUE(raw->Attach());
    SendStreamHead(*raw, "cut", v->size(), Xxh3(*v), 5);
    // Two of five chunks, then the connection is killed.
    for (const auto& c : proto::PlanChunks(0, v->size(), 8 * kMiB)) {
      if (c.seq == 2) break;
      SendChunk(*raw, c, proto::Bytes(v->data() + c.offset, 8 * kMiB), 5);
    }
  }
  std::optional<client::Connection> conn;
  for (int i = 0; i < 200 && !conn; ++i) {
    client::ConnectionOptions o;
    o.address = "127.0.0.1:" + std::to_string(server_->port());
    o.request_timeout = std::chrono::milliseconds(120000);
    if (auto c = client::Connection::Connect(o)) {
      conn.emplace(std::move(*c));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ASSERT_TRUE(conn) << "the cut connection's session was never released";
  auto exists = conn->Exists({"cut"});
  ASSERT_TRUE(exists);
  EXPECT_EQ((*exists)[0].status, StatusCode::kNotFound);
  // The server serves others, and the cut value's space came back: two
  // 40 MiB values fit the 128 MiB pool together only if the 40 MiB
  // reserved for "cut" is free (else the first would be evicted).
  for (int i = 0; i < 2; ++i) {
    auto put = conn->Put({{{"k" + std::to_string(i), *v}}, v});
    ASSERT_TRUE(put);
    EXPECT_EQ((*put)[0], StatusCode::kOk);
  }
  exists = conn->Exists({"cut", "k0", "k1"});
  ASSERT_TRUE(exists);
  EXPECT_EQ((*exists)[0].status, StatusCode::kNotFound);
  EXPECT_EQ((*exists)[1].status, StatusCode::kOk);
  EXPECT_EQ((*exists)[2].status, StatusCode::kOk);
}

TEST_F(StreamTest, AStreamThatStopsSendingChunksTimesOutAndFreesItsSpace) {
  // A 128 MiB pool, and a client that announces 72 MiB and sends one chunk:
  // after limits.stream_idle_seconds the entry fails with StreamTimeout on
  // the same connection, and the 72 MiB reserved are free again.
  StartServer(false, {"--set", "limits.stream_idle_seconds=1"}, "128MiB");
  auto v = Value(72 * kMiB, 9);
  auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
  ASSERT_TRUE(raw->Attach());
  SendStreamHead(*raw, "stalled", v->size(), Xxh3(*v), 11);
  const auto chunks = proto::PlanChunks(0, v->size(), 8 * kMiB);
  SendChunk(*raw, chunks[0], proto::Bytes(v->data(), 8 * kMiB), 11);
  const auto sent = std::chrono::steady_clock::now();
  auto f = raw->Recv();
  ASSERT_TRUE(f) << "no reply to the stalled stream";
  EXPECT_GE(std::chrono::steady_clock::now() - sent, std::chrono::milliseconds(900));
  EXPECT_EQ(f->header.request_id, 11u);
  proto::StatusReply rep;
  ASSERT_TRUE(proto::Decode(f->control, rep));
  ASSERT_EQ(rep.statuses.size(), 1u);
  EXPECT_EQ(rep.statuses[0], StatusCode::kStreamTimeout);
  // A chunk that comes late is refused, and the connection goes on.
  SendChunk(*raw, chunks[1], proto::Bytes(v->data() + chunks[1].offset, 8 * kMiB), 11);
  f = raw->Recv();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->header.opcode, Opcode::kWriteChunk);
  proto::ReplyHead head;
  ASSERT_TRUE(proto::Decode(f->control, head));
  EXPECT_EQ(head.status, StatusCode::kChunkOutOfOrder);

  // The same 72 MiB again fits the pool only if the stalled stream's 72 MiB
  // reservation was released (reservations are never evicted).
  client::Connection conn = Connect();
  auto put = conn.Put({{{"a", *v}}, v});
  ASSERT_TRUE(put);
  EXPECT_EQ((*put)[0], StatusCode::kOk);
  auto exists = conn.Exists({"stalled", "a"});
  ASSERT_TRUE(exists);
  EXPECT_EQ((*exists)[0].status, StatusCode::kNotFound);
  EXPECT_EQ((*exists)[1].status, StatusCode::kOk);
}

TEST_F(StreamTest, ChunkOutOfSequenceFailsThePutWithItsOwnStatus) {
  StartServer(false);
  auto v = Value(20 * kMiB, 4);
  auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
  ASSERT_TRUE(raw->Attach());
  SendStreamHead(*raw, "gap", v->size(), Xxh3(*v), 6);
  const auto chunks = proto::PlanChunks(0, v->size(), 8 * kMiB);
  ASSERT_EQ(chunks.size(), 3u);
  // Chunk 1 is skipped.
  SendChunk(*raw, chunks[0], proto::Bytes(v->data(), 8 * kMiB), 6);
  SendChunk(*raw, chunks[2], proto::Bytes(v->data() + chunks[2].offset, v->size() - chunks[2].offset), 6);
  auto f = raw->Recv();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->header.request_id, 6u);
  proto::StatusReply rep;
  ASSERT_TRUE(proto::Decode(f->control, rep));
  ASSERT_EQ(rep.statuses.size(), 1u);
  EXPECT_EQ(rep.statuses[0], StatusCode::kChunkOutOfOrder);

  // A wrong checksum: the value is refused, and not visible either.
  SendStreamHead(*raw, "sum", v->size(), Xxh3(*v) + 1, 7);
  for (const auto& c : chunks)
    SendChunk(*raw, c,
              proto::Bytes(v->data() + c.offset, std::min<uint64_t>(8 * kMiB, v->size() - c.offset)), 7);
  f = raw->Recv();
  ASSERT_TRUE(f);
  ASSERT_TRUE(proto::Decode(f->control, rep));
  EXPECT_EQ(rep.statuses[0], StatusCode::kChecksumMismatch);

  // A chunk for no stream is answered with the status too.
  SendChunk(*raw, chunks[0], proto::Bytes(v->data(), 8 * kMiB), 8);
  f = raw->Recv();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->header.opcode, Opcode::kWriteChunk);
  proto::ReplyHead head;
  ASSERT_TRUE(proto::Decode(f->control, head));
  EXPECT_EQ(head.status, StatusCode::kChunkOutOfOrder);

  client::Connection conn = Connect();
  auto exists = conn.Exists({"gap", "sum"});
  ASSERT_TRUE(exists);
  EXPECT_EQ((*exists)[0].status, StatusCode::kNotFound);
  EXPECT_EQ((*exists)[1].status, StatusCode::kNotFound);
}

// ---- open streams: values whose length is known only at their last chunk ----

void SendOpenHead(RawClient& c, const std::string& key, uint64_t id) {
  proto::BatchWriteRequest req;
  req.batch = {1, 0, 1};
  req.entries.push_back({key, 0, 0, {proto::LocationKind::kOpenStream}});
  proto::Buffer control;
  proto::Encode(req, control);
  ASSERT_TRUE(c.Send(Opcode::kBatchWrite, control, {}, id));
}

// Sends `v` as an open stream's chunks of `chunk` bytes, the last one with
// `checksum`; stops after `stop_after` chunks if given.
void SendOpenChunks(RawClient& c, const std::vector<std::byte>& v, uint64_t chunk,
                    std::optional<uint64_t> checksum, uint64_t id,
                    std::optional<uint32_t> stop_after = std::nullopt) {
  uint32_t seq = 0;
  for (uint64_t off = 0; off < v.size(); off += chunk, ++seq) {
    if (stop_after && seq == *stop_after) return;
    const uint64_t n = std::min(chunk, v.size() - off);
    proto::ChunkHeader h{0, seq, off, off + n == v.size()};
    if (h.last) h.checksum = checksum;
    SendChunk(c, h, proto::Bytes(v.data() + off, n), id);
  }
}

StatusCode WriteStatus(RawClient& c, uint64_t id) {
  auto f = c.Recv();
  EXPECT_TRUE(f) << "no reply";
  if (!f) return StatusCode::kInternal;
  EXPECT_EQ(f->header.request_id, id);
  proto::StatusReply rep;
  EXPECT_TRUE(proto::Decode(f->control, rep));
  if (rep.head.status != StatusCode::kOk) return rep.head.status;
  EXPECT_EQ(rep.statuses.size(), 1u);
  return rep.statuses.empty() ? StatusCode::kInternal : rep.statuses[0];
}

uint64_t UsedBytes(RawClient& c, uint64_t id) {
  EXPECT_TRUE(c.Send(Opcode::kCapacity, {}, {}, id));
  auto f = c.Recv();
  EXPECT_TRUE(f);
  if (!f) return UINT64_MAX;
  proto::CapacityReply cap;
  EXPECT_TRUE(proto::Decode(f->control, cap));
  return cap.used_bytes;
}

class OpenStreamTest : public StreamTest {
 protected:
  // Open streams of several sizes (one chunk, several, a short last one),
  // read back whole and in a range through the client library.
  void RoundTrip() {
    auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
    auto a = raw->Attach();
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->features & proto::kFeatureOpenStream);
    std::vector<std::pair<std::string, std::shared_ptr<std::vector<std::byte>>>> values = {
        {"one-byte", Value(1, 1)}, {"small", Value(5000, 2)}, {"multi", Value(20 * kMiB + 123, 3)}};
    uint64_t id = 30;
    for (auto& [k, v] : values) {
      SendOpenHead(*raw, k, id);
      SendOpenChunks(*raw, *v, 3 * kMiB, Xxh3(*v), id);
      EXPECT_EQ(WriteStatus(*raw, id), StatusCode::kOk) << k;
      ++id;
    }
    client::Connection conn = Connect();
    for (auto& [k, v] : values) {
      std::vector<std::byte> got(v->size());
      auto r = conn.Get({{k, 0, 0, got}});
      ASSERT_TRUE(r) << r.error().message();
      EXPECT_EQ((*r)[0].status, StatusCode::kOk) << k;
      EXPECT_EQ((*r)[0].value_size, v->size()) << k;
      EXPECT_TRUE(got == *v) << k;
    }
    const auto& multi = *values[2].second;
    const uint64_t off = 3 * kMiB - 11, len = 7 * kMiB;
    std::vector<std::byte> range(len);
    auto r = conn.Get({{"multi", off, len, range}});
    ASSERT_TRUE(r);
    EXPECT_EQ((*r)[0].status, StatusCode::kOk);
    EXPECT_TRUE(std::memcmp(range.data(), multi.data() + off, len) == 0);
  }
};

TEST_F(OpenStreamTest, RoundTripsInMemoryMode) {
  StartServer(false);
  RoundTrip();
}

TEST_F(OpenStreamTest, RoundTripsInFileMode) {
  StartServer(true);
  RoundTrip();
}

TEST_F(OpenStreamTest, AWrongOrMissingChecksumPublishesNothingAndFreesItsSpace) {
  StartServer(false, {}, "128MiB");
  auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
  ASSERT_TRUE(raw->Attach());
  auto v = Value(10 * kMiB + 5, 4);
  SendOpenHead(*raw, "wrong", 40);
  SendOpenChunks(*raw, *v, 4 * kMiB, Xxh3(*v) ^ 1, 40);
  EXPECT_EQ(WriteStatus(*raw, 40), StatusCode::kChecksumMismatch);
  SendOpenHead(*raw, "missing", 41);
  SendOpenChunks(*raw, *v, 4 * kMiB, std::nullopt, 41);
  EXPECT_EQ(WriteStatus(*raw, 41), StatusCode::kChecksumMismatch);
  EXPECT_EQ(UsedBytes(*raw, 42), 0u);
  client::Connection conn = Connect();
  auto exists = conn.Exists({"wrong", "missing"});
  ASSERT_TRUE(exists);
  EXPECT_EQ((*exists)[0].status, StatusCode::kNotFound);
  EXPECT_EQ((*exists)[1].status, StatusCode::kNotFound);
}

TEST_F(OpenStreamTest, AValuePastMaxValueSizeIsTooLargeAndTheConnectionGoesOn) {
  StartServer(false, {"--set", "limits.max_value_size=16777216"}, "128MiB");
  auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
  ASSERT_TRUE(raw->Attach());
  auto v = Value(24 * kMiB, 5);
  SendOpenHead(*raw, "big", 50);
  SendOpenChunks(*raw, *v, 4 * kMiB, Xxh3(*v), 50);
  EXPECT_EQ(WriteStatus(*raw, 50), StatusCode::kTooLarge);
  EXPECT_EQ(UsedBytes(*raw, 51), 0u);
  // Exactly the limit is fine.
  auto fits = Value(16 * kMiB, 6);
  SendOpenHead(*raw, "fits", 52);
  SendOpenChunks(*raw, *fits, 4 * kMiB, Xxh3(*fits), 52);
  EXPECT_EQ(WriteStatus(*raw, 52), StatusCode::kOk);
  EXPECT_EQ(UsedBytes(*raw, 53), 16 * kMiB);
  client::Connection conn = Connect();
  auto exists = conn.Exists({"big", "fits"});
  ASSERT_TRUE(exists);
  EXPECT_EQ((*exists)[0].status, StatusCode::kNotFound);
  EXPECT_EQ((*exists)[1].status, StatusCode::kOk);
}

TEST_F(OpenStreamTest, ACutMidStreamLeavesNothing) {
  for (bool file_mode : {false, true}) {
    SCOPED_TRACE(file_mode ? "file mode" : "memory mode");
    server_.reset();
    StartServer(file_mode, {}, "128MiB");
    auto v = Value(40 * kMiB, 7);
    uint64_t used_before = 0;
    {
      auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
      ASSERT_TRUE(raw->Attach());
      used_before = UsedBytes(*raw, 60);
      SendOpenHead(*raw, "cut", 61);
      SendOpenChunks(*raw, *v, 8 * kMiB, Xxh3(*v), 61, 3);  // 3 of 5 chunks
      // In: the server has taken what came (a Ping answered after them).
      proto::Buffer b;
      proto::Encode(proto::Ping{7}, b);
      ASSERT_TRUE(raw->Send(Opcode::kPing, b, {}, 62));
      ASSERT_TRUE(raw->Recv());
      EXPECT_GE(UsedBytes(*raw, 63), used_before + 24 * kMiB);
    }
    // The cut session is released, and with it everything the stream took.
    auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
    ASSERT_TRUE(raw->Attach());
    uint64_t used = UsedBytes(*raw, 64);
    for (int i = 0; i < 200 && used != used_before; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      used = UsedBytes(*raw, 65 + i);
    }
    EXPECT_EQ(used, used_before);
    client::Connection conn = Connect();
    auto exists = conn.Exists({"cut"});
    ASSERT_TRUE(exists);
    EXPECT_EQ((*exists)[0].status, StatusCode::kNotFound);
  }
}

TEST_F(OpenStreamTest, OpenStreamsPerSessionAreLimited) {
  StartServer(false, {"--set", "limits.max_open_streams_per_session=1"});
  auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
  ASSERT_TRUE(raw->Attach());
  auto v = Value(2 * kMiB, 8);
  SendOpenHead(*raw, "first", 70);
  SendOpenChunks(*raw, *v, kMiB, Xxh3(*v), 70, 1);  // half of it
  SendOpenHead(*raw, "second", 71);
  EXPECT_EQ(WriteStatus(*raw, 71), StatusCode::kBusy);
  // The first goes on; the second's chunks are read and dropped.
  SendChunk(*raw, {0, 1, kMiB, true, Xxh3(*v)}, proto::Bytes(v->data() + kMiB, kMiB), 70);
  EXPECT_EQ(WriteStatus(*raw, 70), StatusCode::kOk);
  SendChunk(*raw, {0, 0, 0, true, Xxh3(*v)}, proto::Bytes(v->data(), v->size()), 71);
  // Decided, it no longer counts: another one is taken.
  SendOpenHead(*raw, "third", 72);
  SendOpenChunks(*raw, *v, kMiB, Xxh3(*v), 72);
  EXPECT_EQ(WriteStatus(*raw, 72), StatusCode::kOk);
  client::Connection conn = Connect();
  auto exists = conn.Exists({"first", "second", "third"});
  ASSERT_TRUE(exists);
  EXPECT_EQ((*exists)[0].status, StatusCode::kOk);
  EXPECT_EQ((*exists)[1].status, StatusCode::kNotFound);
  EXPECT_EQ((*exists)[2].status, StatusCode::kOk);
}

TEST_F(OpenStreamTest, AValueOfThreeHundredMiBStreamsThrough) {
  StartServer(false, {}, "512MiB");
  auto v = Value(300 * kMiB + 4097, 9);
  {
    auto raw = std::make_unique<RawClient>(ConnectTcp(server_->port()));
    ASSERT_TRUE(raw->Attach());
    SendOpenHead(*raw, "huge", 80);
    SendOpenChunks(*raw, *v, proto::kStreamChunkSize, Xxh3(*v), 80);
    ASSERT_EQ(WriteStatus(*raw, 80), StatusCode::kOk);
    // Counted as its size, not as the reservation it grew in.
    EXPECT_EQ(UsedBytes(*raw, 81), v->size());
  }
  client::Connection conn = Connect();
  std::vector<std::byte> got(v->size());
  auto r = conn.Get({{"huge", 0, 0, got}});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)[0].status, StatusCode::kOk);
  EXPECT_TRUE(got == *v);
}

}  // namespace
}  // namespace memkv::testing
