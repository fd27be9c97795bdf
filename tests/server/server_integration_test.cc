// `memkv server` as a process on loopback, driven with raw frames: the
// protocol end to end, both rails, bad input, every limit, restarts, signals.

#include <gtest/gtest.h>

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cinttypes>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <tuple>

#include "../io/test_util.h"
#include "common/checksum.h"
#include "server_process.h"

namespace memkv::testing {
namespace {

using proto::Opcode;
using proto::StatusCode;

proto::Bytes B(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Writes `kv` inline; the per-entry statuses.
std::vector<StatusCode> Put(RawClient& c, const std::vector<std::pair<std::string, std::string>>& kv,
                            uint64_t id = 10) {
  proto::BatchWriteRequest req;
  req.batch = {static_cast<uint32_t>(kv.size()), 0, static_cast<uint32_t>(kv.size())};
  std::string data;
  for (auto& [k, v] : kv) {
    req.entries.push_back({k, v.size(), Xxh3(v), {}});
    data += v;
  }
  proto::Buffer control;
  proto::Encode(req, control);
  EXPECT_TRUE(c.Send(Opcode::kBatchWrite, control, B(data), id));
  auto f = c.Recv();
  EXPECT_TRUE(f);
  if (!f) return {};
  EXPECT_EQ(f->header.request_id, id);
  proto::StatusReply rep;
  EXPECT_TRUE(proto::Decode(f->control, rep));
  if (rep.head.status != StatusCode::kOk) return {rep.head.status};
  return rep.statuses;
}

// Reads keys inline; (status, bytes) per key.
std::vector<std::pair<StatusCode, std::string>> Get(RawClient& c, const std::vector<std::string>& keys,
                                                    uint64_t id = 20) {
  proto::BatchReadRequest req;
  req.batch = {static_cast<uint32_t>(keys.size()), 0, static_cast<uint32_t>(keys.size())};
  for (auto& k : keys) req.entries.push_back({k, 0, 0, {}});
  proto::Buffer control;
  proto::Encode(req, control);
  EXPECT_TRUE(c.Send(Opcode::kBatchRead, control, {}, id));
  std::vector<std::pair<StatusCode, std::string>> out;
  for (;;) {
    auto f = c.Recv();
    EXPECT_TRUE(f);
    if (!f) return out;
    proto::BatchReadReply rep;
    EXPECT_TRUE(proto::Decode(f->control, f->data, rep));
    if (rep.head.status != StatusCode::kOk) return {{rep.head.status, ""}};
    size_t at = 0;
    for (auto& r : rep.results) {
      std::string v;
      if (r.delivery == proto::Delivery::kInline) {
        v.assign(reinterpret_cast<const char*>(rep.data.data()) + at, r.length);
        at += r.length;
        // As a client: bytes that fail their checksums are not the value.
        if (!proto::ChecksumsMatch(r, B(v))) {
          out.push_back({StatusCode::kChecksumMismatch, v});
          continue;
        }
      }
      out.push_back({r.status, v});
    }
    if (!f->header.has_more()) break;
  }
  return out;
}

bool Ping(RawClient& c, uint64_t token = 99) {
  proto::Buffer b;
  proto::Encode(proto::Ping{token}, b);
  if (!c.Send(Opcode::kPing, b, {}, token)) return false;
  auto f = c.Recv();
  if (!f) return false;
  proto::Ping p;
  return proto::Decode(f->control, p) && p.token == token;
}

class ServerTest : public ::testing::Test {
 protected:
  std::unique_ptr<ServerProcess> Start(std::vector<std::string> extra = {"--mode", "memory"}) {
    auto s = std::make_unique<ServerProcess>(dir_.path().string(), extra);
    EXPECT_TRUE(s->ready()) << "the server did not start";
    return s;
  }
  std::unique_ptr<RawClient> Tcp(const ServerProcess& s, const proto::AuthKey* key = nullptr) {
    return std::make_unique<RawClient>(ConnectTcp(s.port()), key);
  }
  std::unique_ptr<RawClient> Unix(const ServerProcess& s) {
    return std::make_unique<RawClient>(ConnectUnix(s.socket_path()));
  }
  io::testing::TempDir dir_;
};

TEST_F(ServerTest, PutGetExistsDeleteOverTcp) {
  auto s = Start();
  auto c = Tcp(*s);
  auto a = c->Attach();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->head.status, StatusCode::kOk);
  EXPECT_EQ(a->rails & proto::kRailShm, 0u);  // tcp connection: tcp rail only
  EXPECT_TRUE(Ping(*c));
  const auto put = Put(*c, {{"a", "alpha"}, {"b", std::string(100000, 'b')}, {"a", "again"}});
  ASSERT_EQ(put.size(), 3u);
  for (auto st : put) EXPECT_EQ(st, StatusCode::kOk);
  const auto got = Get(*c, {"a", "b", "nope"});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].second, "again");  // within a batch the last entry wins
  EXPECT_EQ(got[1].second, std::string(100000, 'b'));
  EXPECT_EQ(got[2].first, StatusCode::kNotFound);

  proto::Buffer b;
  proto::Encode(proto::KeysRequest{{2, 0, 2}, {"a", "zzz"}}, b);
  ASSERT_TRUE(c->Send(Opcode::kExists, b, {}, 30));
  auto f = c->Recv();
  ASSERT_TRUE(f);
  proto::ExistsReply ex;
  ASSERT_TRUE(proto::Decode(f->control, ex));
  EXPECT_EQ(ex.results[0].status, StatusCode::kOk);
  EXPECT_EQ(ex.results[0].value_size, 5u);
  EXPECT_EQ(ex.results[1].status, StatusCode::kNotFound);

  ASSERT_TRUE(c->Send(Opcode::kDelete, b, {}, 31));
  f = c->Recv();
  ASSERT_TRUE(f);
  proto::StatusReply del;
  ASSERT_TRUE(proto::Decode(f->control, del));
  EXPECT_EQ(del.statuses[0], StatusCode::kOk);
  EXPECT_EQ(del.statuses[1], StatusCode::kNotFound);
  EXPECT_EQ(Get(*c, {"a"})[0].first, StatusCode::kNotFound);
  EXPECT_EQ(s->Stop(), 0) << "SIGTERM must shut down cleanly";
}

TEST_F(ServerTest, ManyRequestsInFlightAreAnsweredById) {
  auto s = Start();
  auto c = Tcp(*s);
  ASSERT_TRUE(c->Attach());
  // 200 pings sent before reading any reply.
  for (uint64_t id = 1; id <= 200; ++id) {
    proto::Buffer b;
    proto::Encode(proto::Ping{id * 3}, b);
    ASSERT_TRUE(c->Send(Opcode::kPing, b, {}, id));
  }
  std::vector<bool> seen(201);
  for (int i = 0; i < 200; ++i) {
    auto f = c->Recv();
    ASSERT_TRUE(f);
    proto::Ping p;
    ASSERT_TRUE(proto::Decode(f->control, p));
    EXPECT_EQ(p.token, f->header.request_id * 3);
    seen[f->header.request_id] = true;
  }
  for (int id = 1; id <= 200; ++id) EXPECT_TRUE(seen[id]) << id;
}

TEST_F(ServerTest, RequestsBeforeAttachAreRefused) {
  auto s = Start();
  auto c = Tcp(*s);
  proto::Buffer b;
  proto::Encode(proto::Ping{1}, b);
  ASSERT_TRUE(c->Send(Opcode::kPing, b));
  auto f = c->Recv();
  ASSERT_TRUE(f);
  proto::ReplyHead h;
  ASSERT_TRUE(proto::Decode(f->control, h));
  EXPECT_EQ(h.status, StatusCode::kNotAttached);
}

TEST_F(ServerTest, BadInputClosesThatConnectionOnly) {
  auto s = Start();
  auto good = Tcp(*s);
  ASSERT_TRUE(good->Attach());
  std::mt19937_64 rng(1);

  {  // random bytes
    auto c = Tcp(*s);
    std::string junk(4096, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    c->SendBytes(junk.data(), junk.size());
    EXPECT_TRUE(c->Closed());
  }
  {  // an oversize frame: answered ProtocolError, then closed
    auto c = Tcp(*s);
    ASSERT_TRUE(c->Attach());
    proto::FrameHeader h;
    h.opcode = Opcode::kPing;
    h.request_id = 5;
    auto raw = proto::EncodeHeader(h, {}, nullptr);
    const uint32_t huge = proto::kMaxPayload + 1;
    std::memcpy(raw.data() + 16, &huge, 4);
    c->SendBytes(raw.data(), raw.size());
    auto f = c->Recv();
    ASSERT_TRUE(f);
    proto::ReplyHead rh;
    ASSERT_TRUE(proto::Decode(f->control, rh));
    EXPECT_EQ(rh.status, StatusCode::kProtocolError);
    EXPECT_EQ(f->header.request_id, 5u);
    EXPECT_TRUE(c->Closed());
  }
  {  // an unknown opcode
    auto c = Tcp(*s);
    ASSERT_TRUE(c->Attach());
    proto::FrameHeader h;
    auto raw = proto::EncodeHeader(h, {}, nullptr);
    raw[6] = std::byte{200};
    c->SendBytes(raw.data(), raw.size());
    auto f = c->Recv();
    ASSERT_TRUE(f);
    proto::ReplyHead rh;
    ASSERT_TRUE(proto::Decode(f->control, rh));
    EXPECT_EQ(rh.status, StatusCode::kProtocolError);
    EXPECT_TRUE(c->Closed());
  }
  {  // a newer protocol version
    auto c = Tcp(*s);
    proto::AttachRequest a;
    proto::Buffer b;
    proto::Encode(a, b);
    ASSERT_TRUE(c->Send(Opcode::kAttach, b, {}, 3, -1, proto::kProtocolVersion + 1));
    auto f = c->Recv();
    ASSERT_TRUE(f);
    proto::AttachReply r;
    ASSERT_TRUE(proto::Decode(f->control, r));
    EXPECT_EQ(r.head.status, StatusCode::kUnsupportedVersion);
    EXPECT_EQ(f->header.version, proto::kProtocolVersion);
  }
  {  // a truncated frame, then the client goes away
    auto c = Tcp(*s);
    ASSERT_TRUE(c->Attach());
    proto::FrameHeader h;
    h.opcode = Opcode::kPing;
    h.control_len = 8;
    auto raw = proto::EncodeHeader(h, {}, nullptr);
    c->SendBytes(raw.data(), raw.size() - 10);
  }
  {  // a write whose data does not match its checksum
    auto c = Tcp(*s);
    ASSERT_TRUE(c->Attach());
    proto::BatchWriteRequest req;
    req.batch = {1, 0, 1};
    req.entries.push_back({"k", 5, Xxh3("hello"), {}});
    proto::Buffer control;
    proto::Encode(req, control);
    ASSERT_TRUE(c->Send(Opcode::kBatchWrite, control, B("jello")));
    auto f = c->Recv();
    ASSERT_TRUE(f);
    proto::StatusReply rep;
    ASSERT_TRUE(proto::Decode(f->control, rep));
    EXPECT_EQ(rep.statuses[0], StatusCode::kChecksumMismatch);
  }
  // The well-behaved client was served all along.
  EXPECT_TRUE(Ping(*good));
  EXPECT_EQ(Put(*good, {{"still", "here"}})[0], StatusCode::kOk);
}

TEST_F(ServerTest, AuthKeyIsRequiredWhenSet) {
  const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  const proto::AuthKey key = proto::AuthKey::FromHex(hex).value();
  const proto::AuthKey wrong = proto::AuthKey::Generate();
  auto s = Start({"--mode", "memory", "--set", "network.auth_key=" + hex});
  {
    auto c = Tcp(*s);  // no tag at all
    auto a = c->Attach();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->head.status, StatusCode::kUnauthorized);
    EXPECT_TRUE(c->Closed());
  }
  {
    RawClient c(ConnectTcp(s->port()), &wrong);  // the wrong key: replies can't be verified
    ASSERT_TRUE(c.Hello());
    proto::AttachRequest a;
    proto::Buffer b;
    proto::Encode(a, b);
    ASSERT_TRUE(c.Send(Opcode::kAttach, b));
    EXPECT_FALSE(c.Recv()) << "a reply tagged with the wrong key must not verify";
    EXPECT_TRUE(c.Closed());
  }
  {
    auto c = Tcp(*s, &key);
    auto a = c->Attach("h", &wrong);  // tagged right, wrong proof
    ASSERT_TRUE(a);
    EXPECT_EQ(a->head.status, StatusCode::kUnauthorized);
  }
  auto c = Tcp(*s, &key);
  auto a = c->Attach();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->head.status, StatusCode::kOk);
  EXPECT_EQ(Put(*c, {{"k", "v"}})[0], StatusCode::kOk);
  EXPECT_EQ(Get(*c, {"k"})[0].second, "v");
}

// A memfd region, mapped here too.
struct Memfd {
  explicit Memfd(size_t size, bool seal = true) : size(size) {
    fd = ::memfd_create("memkv-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    if (seal) EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    base = static_cast<char*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  }
  ~Memfd() {
    ::munmap(base, size);
    ::close(fd);
  }
  int fd;
  size_t size;
  char* base;
};

StatusCode Register(RawClient& c, uint32_t id, uint64_t size, int fd) {
  proto::Buffer b;
  proto::Encode(proto::RegisterRegion{id, size}, b);
  EXPECT_TRUE(c.Send(Opcode::kRegisterRegion, b, {}, 40, fd));
  auto f = c.Recv();
  EXPECT_TRUE(f);
  proto::ReplyHead h;
  EXPECT_TRUE(f && proto::Decode(f->control, h));
  return h.status;
}

TEST_F(ServerTest, ShmRailMovesBytesThroughRegisteredRegions) {
  auto s = Start();
  auto c = Unix(*s);
  ASSERT_TRUE(c->ok());
  auto a = c->Attach();
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->rails & proto::kRailShm);
  Memfd region(1 << 20);
  ASSERT_EQ(Register(*c, 1, region.size, region.fd), StatusCode::kOk);
  // Write 8 values from the region, read them back into another part of it.
  proto::BatchWriteRequest w;
  w.batch = {8, 0, 8};
  std::vector<std::string> keys;
  keys.reserve(8);  // the entries view these strings
  for (int i = 0; i < 8; ++i) {
    keys.push_back("shm" + std::to_string(i));
    std::memset(region.base + i * 4096, 'a' + i, 4096);
    w.entries.push_back({keys.back(), 4096, Xxh3(region.base + i * 4096, 4096),
                         {proto::LocationKind::kShm, 1, static_cast<uint64_t>(i) * 4096, 4096}});
  }
  proto::Buffer control;
  proto::Encode(w, control);
  ASSERT_TRUE(c->Send(Opcode::kBatchWrite, control, {}, 50));
  auto f = c->Recv();
  ASSERT_TRUE(f);
  proto::StatusReply wr;
  ASSERT_TRUE(proto::Decode(f->control, wr));
  for (auto st : wr.statuses) EXPECT_EQ(st, StatusCode::kOk);

  proto::BatchReadRequest r;
  r.batch = {8, 0, 8};
  for (int i = 0; i < 8; ++i)
    r.entries.push_back({keys[i], 0, 0, {proto::LocationKind::kShm, 1, (512 << 10) + i * 4096ull, 4096}});
  control.clear();
  proto::Encode(r, control);
  ASSERT_TRUE(c->Send(Opcode::kBatchRead, control, {}, 51));
  f = c->Recv();
  ASSERT_TRUE(f);
  proto::BatchReadReply rr;
  ASSERT_TRUE(proto::Decode(f->control, f->data, rr));
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(rr.results[i].status, StatusCode::kOk);
    EXPECT_EQ(rr.results[i].delivery, proto::Delivery::kPlaced);
    EXPECT_EQ(std::memcmp(region.base + (512 << 10) + i * 4096, region.base + i * 4096, 4096), 0);
  }
  // Outside the region, an unknown region, an unsealed memfd, no memfd.
  r.batch = {2, 0, 2};
  r.entries = {{keys[0], 0, 0, {proto::LocationKind::kShm, 1, (1 << 20) - 100, 4096}},
               {keys[0], 0, 0, {proto::LocationKind::kShm, 9, 0, 4096}}};
  control.clear();
  proto::Encode(r, control);
  ASSERT_TRUE(c->Send(Opcode::kBatchRead, control, {}, 52));
  f = c->Recv();
  ASSERT_TRUE(f);
  ASSERT_TRUE(proto::Decode(f->control, f->data, rr));
  EXPECT_EQ(rr.results[0].status, StatusCode::kBadRegion);
  EXPECT_EQ(rr.results[1].status, StatusCode::kBadRegion);
  Memfd unsealed(4096, /*seal=*/false);
  EXPECT_EQ(Register(*c, 2, 4096, unsealed.fd), StatusCode::kBadRegion);
  EXPECT_EQ(Register(*c, 3, 4096, -1), StatusCode::kBadRegion);
  Memfd small(4096);
  EXPECT_EQ(Register(*c, 4, 8192, small.fd), StatusCode::kBadRegion);
  EXPECT_EQ(Register(*c, 1, 4096, small.fd), StatusCode::kBadRegion);  // id in use
  // Released regions are gone.
  proto::Buffer rel;
  proto::Encode(proto::ReleaseRegion{1}, rel);
  ASSERT_TRUE(c->Send(Opcode::kReleaseRegion, rel, {}, 53));
  f = c->Recv();
  ASSERT_TRUE(f);
  proto::ReplyHead h;
  ASSERT_TRUE(proto::Decode(f->control, h));
  EXPECT_EQ(h.status, StatusCode::kOk);
}

// A shm read of many bytes is answered in slices, so that the client checks
// one while the server copies the next: every slice names entries already
// placed in the region, whole and matching their piece sums, and the slices
// cover the batch once, in order.
TEST_F(ServerTest, AShmReadOfManyBytesIsAnsweredInSlicesOfPlacedEntries) {
  auto s = Start();
  auto c = Unix(*s);
  ASSERT_TRUE(c->ok());
  ASSERT_TRUE(c->Attach());
  constexpr size_t kValue = 512 << 10, kCount = 6;
  std::vector<std::pair<std::string, std::string>> kv;
  for (size_t i = 0; i < kCount; ++i) {
    std::string v(kValue, '\0');
    for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<char>((j * 131 + i * 7) >> 3);
    kv.push_back({"slice" + std::to_string(i), std::move(v)});
  }
  for (StatusCode st : Put(*c, kv)) ASSERT_EQ(st, StatusCode::kOk);
  Memfd region(kCount * kValue);
  ASSERT_EQ(Register(*c, 1, region.size, region.fd), StatusCode::kOk);
  proto::BatchReadRequest r;
  r.batch = {kCount, 0, kCount};
  for (size_t i = 0; i < kCount; ++i)
    r.entries.push_back({kv[i].first, 0, 0, {proto::LocationKind::kShm, 1, i * kValue, kValue}});
  proto::Buffer control;
  proto::Encode(r, control);
  ASSERT_TRUE(c->Send(Opcode::kBatchRead, control, {}, 60));
  size_t frames = 0, next = 0;
  for (;;) {
    auto f = c->Recv();
    ASSERT_TRUE(f);
    ++frames;
    proto::BatchReadReply rr;
    ASSERT_TRUE(proto::Decode(f->control, f->data, rr));
    ASSERT_EQ(rr.head.status, StatusCode::kOk);
    ASSERT_EQ(rr.batch.first, next);
    for (size_t k = 0; k < rr.results.size(); ++k) {
      const size_t i = rr.batch.first + k;
      const proto::ReadResult& res = rr.results[k];
      EXPECT_EQ(res.status, StatusCode::kOk);
      EXPECT_EQ(res.delivery, proto::Delivery::kPlaced);
      const proto::Bytes placed(reinterpret_cast<const std::byte*>(region.base + i * kValue), kValue);
      EXPECT_TRUE(proto::ChecksumsMatch(res, placed)) << "entry " << i;
      EXPECT_EQ(std::memcmp(region.base + i * kValue, kv[i].second.data(), kValue), 0) << "entry " << i;
    }
    next += rr.results.size();
    if (!f->header.has_more()) break;
  }
  EXPECT_EQ(next, kCount);
  EXPECT_GT(frames, 1u) << "3 MiB placed in one reply: the client's check cannot overlap the copy";
}

// A read flagged kFlagSteps (the client library flags its shm reads where
// the server offers kFeaturePlacedSteps) gets an entry larger than a step
// announced kPlacedInSteps and then ReadPlaced frames of at most 1 MiB, in
// order, each naming bytes already in the region; the client checks one
// step while the server copies the next. Unflagged, the same entry is
// placed whole before its reply.
TEST_F(ServerTest, ALargeShmReadFlaggedForStepsIsPlacedAStepAtATime) {
  auto s = Start();
  auto c = Unix(*s);
  auto attached = c->Attach();
  ASSERT_TRUE(attached);
  EXPECT_TRUE(attached->features & proto::kFeaturePlacedSteps);
  constexpr size_t kBig = (7 << 19) + 100, kSmall = 64 << 10;  // 3.5 MiB + 100
  std::string big(kBig, '\0'), small(kSmall, '\0');
  for (size_t j = 0; j < big.size(); ++j) big[j] = static_cast<char>((j * 131) >> 5);
  for (size_t j = 0; j < small.size(); ++j) small[j] = static_cast<char>(j * 7);
  for (StatusCode st : Put(*c, {{"big", big}, {"small", small}})) ASSERT_EQ(st, StatusCode::kOk);
  Memfd region(8 << 20);
  ASSERT_EQ(Register(*c, 1, region.size, region.fd), StatusCode::kOk);
  proto::BatchReadRequest r;
  r.batch = {2, 0, 2};
  r.entries.push_back({"big", 0, 0, {proto::LocationKind::kShm, 1, 0, 4 << 20}});
  r.entries.push_back({"small", 0, 0, {proto::LocationKind::kShm, 1, 4 << 20, kSmall}});
  proto::Buffer control;
  proto::Encode(r, control);
  auto placed = [&](size_t at, size_t n) {
    return proto::Bytes(reinterpret_cast<const std::byte*>(region.base + at), n);
  };
  for (bool steps : {false, true}) {
    SCOPED_TRACE(steps ? "flagged" : "not flagged");
    std::memset(region.base, 0, region.size);
    ASSERT_TRUE(c->Send(Opcode::kBatchRead, control, {}, 70, -1, proto::kProtocolVersion,
                        steps ? proto::kFlagSteps : 0));
    std::vector<proto::ReadResult> results(2);
    std::vector<proto::Buffer> controls;  // the results' page sums point here
    uint64_t stepped_to = 0;
    uint32_t next_seq = 0;
    bool stepped_done = false;
    for (;;) {
      auto f = c->Recv();
      ASSERT_TRUE(f);
      ASSERT_EQ(f->header.request_id, 70u);
      if (f->header.opcode == Opcode::kReadPlaced) {
        proto::PlacedStep st;
        ASSERT_TRUE(proto::Decode(f->control, st));
        ASSERT_EQ(results[0].delivery, proto::Delivery::kPlacedInSteps) << "a step before its entry";
        EXPECT_EQ(st.entry, 0u);
        EXPECT_EQ(st.seq, next_seq++);
        EXPECT_EQ(st.offset, stepped_to);
        EXPECT_LE(st.length, 1u << 20);
        stepped_to = st.offset + st.length;
        // What the step names is in place now, whatever follows.
        EXPECT_EQ(std::memcmp(region.base, big.data(), stepped_to), 0) << "step " << st.seq;
        stepped_done = st.last;
      } else {
        ASSERT_EQ(f->header.opcode, Opcode::kBatchRead);
        controls.push_back(f->control);
        proto::BatchReadReply rr;
        ASSERT_TRUE(proto::Decode(controls.back(), f->data, rr));
        ASSERT_EQ(rr.head.status, StatusCode::kOk);
        for (size_t k = 0; k < rr.results.size(); ++k) results[rr.batch.first + k] = rr.results[k];
      }
      if (!f->header.has_more()) break;
    }
    EXPECT_EQ(results[0].status, StatusCode::kOk);
    EXPECT_EQ(results[0].length, kBig);
    EXPECT_TRUE(proto::ChecksumsMatch(results[0], placed(0, kBig)));
    EXPECT_EQ(results[1].delivery, proto::Delivery::kPlaced);
    EXPECT_TRUE(proto::ChecksumsMatch(results[1], placed(4 << 20, kSmall)));
    EXPECT_EQ(std::memcmp(region.base + (4 << 20), small.data(), kSmall), 0);
    if (steps) {
      EXPECT_EQ(results[0].delivery, proto::Delivery::kPlacedInSteps);
      EXPECT_EQ(next_seq, 4u);
      EXPECT_EQ(stepped_to, kBig);
      EXPECT_TRUE(stepped_done);
    } else {
      EXPECT_EQ(results[0].delivery, proto::Delivery::kPlaced);
      EXPECT_EQ(next_seq, 0u);
    }
  }
}

TEST_F(ServerTest, EveryLimitAnswersWithItsOwnStatus) {
  auto s = Start({"--mode", "memory", "--set", "limits.max_batch_entries=4", "--set",
                  "limits.max_value_size=1000", "--set", "limits.max_sessions=3", "--set",
                  "limits.max_regions_per_session=1"});
  auto c = Tcp(*s);
  ASSERT_TRUE(c->Attach());
  // max_batch_entries + 1
  const auto five = Put(*c, {{"1", "x"}, {"2", "x"}, {"3", "x"}, {"4", "x"}, {"5", "x"}});
  ASSERT_EQ(five.size(), 1u);
  EXPECT_EQ(five[0], StatusCode::kTooManyEntries);
  EXPECT_EQ(Put(*c, {{"1", "x"}, {"2", "x"}, {"3", "x"}, {"4", "x"}}).size(), 4u);
  // max_value_size + 1
  const auto big = Put(*c, {{"ok", std::string(1000, 'v')}, {"big", std::string(1001, 'v')}});
  EXPECT_EQ(big[0], StatusCode::kOk);
  EXPECT_EQ(big[1], StatusCode::kTooLarge);
  // max_sessions + 1 (this one, and two more)
  auto c2 = Tcp(*s), c3 = Tcp(*s), c4 = Tcp(*s);
  EXPECT_EQ(c2->Attach()->head.status, StatusCode::kOk);
  EXPECT_EQ(c3->Attach()->head.status, StatusCode::kOk);
  EXPECT_EQ(c4->Attach()->head.status, StatusCode::kTooManySessions);
  // max_regions_per_session + 1
  c3.reset();  // frees a session once the server sees the connection close
  std::unique_ptr<RawClient> u;
  for (int i = 0; i < 100; ++i) {
    u = Unix(*s);
    auto a = u->Attach();
    if (a && a->head.status == StatusCode::kOk) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Memfd r1(4096), r2(4096);
  EXPECT_EQ(Register(*u, 1, 4096, r1.fd), StatusCode::kOk);
  EXPECT_EQ(Register(*u, 2, 4096, r2.fd), StatusCode::kTooManyRegions);
}

TEST_F(ServerTest, FileModeKeepsDataAcrossARestart) {
  const std::string d0 = dir_.File("d0.img"), d1 = dir_.File("d1.img");
  ASSERT_EQ(std::system((std::string(MEMKV_BINARY) + " drive init " + d0 + " --size 64MiB 2>/dev/null")
                            .c_str()),
            0);
  ASSERT_EQ(std::system((std::string(MEMKV_BINARY) + " drive init " + d1 + " --size 64MiB 2>/dev/null")
                            .c_str()),
            0);
  const std::string cfg = dir_.File("config.yaml");
  ASSERT_EQ(std::system((std::string(MEMKV_BINARY) + " setup --drives " + d0 + " " + d1 + " > " +
                         cfg + " 2>/dev/null")
                            .c_str()),
            0);
  // setup's config listens on 0.0.0.0 with a key; the test talks to loopback without one.
  const std::vector<std::string> args = {"--config", cfg, "--set", "network.auth_key=",
                                         "--set", "network.allow_unauthenticated=true"};
  {
    auto s = Start(args);
    auto c = Tcp(*s);
    ASSERT_TRUE(c->Attach());
    std::vector<std::pair<std::string, std::string>> kv;
    for (int i = 0; i < 100; ++i) kv.push_back({"k" + std::to_string(i), std::string(i * 997 + 1, 'a' + i % 26)});
    for (auto st : Put(*c, kv)) EXPECT_EQ(st, StatusCode::kOk);
    c.reset();
    EXPECT_EQ(s->Stop(), 0);
  }
  auto s = Start(args);
  auto c = Tcp(*s);
  ASSERT_TRUE(c->Attach());
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) keys.push_back("k" + std::to_string(i));
  const auto got = Get(*c, keys);
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i].second, std::string(i * 997 + 1, 'a' + i % 26)) << i;
}

// server.io_backend threads (where io_uring cannot be set up): the same
// drives, the same journal. Values put on it survive a SIGKILL and are read
// back on io_uring, and the other way round.
TEST_F(ServerTest, TheThreadsBackendKeepsDataAcrossAKillAndSharesTheFormat) {
  const std::string d0 = dir_.File("t0.img");
  ASSERT_EQ(std::system((std::string(MEMKV_BINARY) + " drive init " + d0 + " --size 64MiB 2>/dev/null")
                            .c_str()),
            0);
  const std::string cfg = dir_.File("threads.yaml");
  ASSERT_EQ(std::system((std::string(MEMKV_BINARY) + " setup --drives " + d0 + " > " + cfg +
                         " 2>/dev/null")
                            .c_str()),
            0);
  auto args = [&](const char* backend) {
    return std::vector<std::string>{"--config", cfg, "--set", "network.auth_key=", "--set",
                                     "network.allow_unauthenticated=true", "--set",
                                     std::string("server.io_backend=") + backend};
  };
  auto value = [](int i, char base) { return std::string(i * 4099 + 1, static_cast<char>(base + i % 20)); };
  std::vector<std::string> keys;
  for (int i = 0; i < 60; ++i) keys.push_back("t" + std::to_string(i));
  auto put_all = [&](ServerProcess& s, char base) {
    auto c = Tcp(s);
    ASSERT_TRUE(c->Attach());
    std::vector<std::pair<std::string, std::string>> kv;
    for (int i = 0; i < 60; ++i) kv.push_back({keys[i], value(i, base)});
    for (auto st : Put(*c, kv)) EXPECT_EQ(st, StatusCode::kOk);
  };
  auto check_all = [&](ServerProcess& s, char base) {
    auto c = Tcp(s);
    ASSERT_TRUE(c->Attach());
    const auto got = Get(*c, keys);
    ASSERT_EQ(got.size(), 60u);
    for (int i = 0; i < 60; ++i) EXPECT_EQ(got[i].second, value(i, base)) << keys[i];
  };
  {
    auto s = Start(args("threads"));
    put_all(*s, 'a');
    check_all(*s, 'a');
    ::kill(s->pid(), SIGKILL);  // no shutdown: the journal alone
  }
  {
    auto s = Start(args("io_uring"));
    check_all(*s, 'a');
    put_all(*s, 'A');
    ::kill(s->pid(), SIGKILL);
  }
  auto s = Start(args("threads"));
  check_all(*s, 'A');
}

TEST_F(ServerTest, TenThousandSessionsDroppedWithoutDetachReleaseEverything) {
  // max_sessions 16: if a dropped session were not released, attaching would
  // start failing after 16 of the 10,000.
  auto s = Start({"--mode", "memory", "--set", "limits.max_sessions=16"});
  auto probe = Unix(*s);
  ASSERT_TRUE(probe->Attach());
  auto count_fds = [&] {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(s->pid()) + "/fd")) {
      (void)e;
      ++n;
    }
    return n;
  };
  auto count_maps = [&] {
    std::ifstream in("/proc/" + std::to_string(s->pid()) + "/maps");
    size_t n = 0;
    for (std::string line; std::getline(in, line);) n += line.find("memkv-test") != std::string::npos;
    return n;
  };
  auto rss_kib = [&] {
    std::ifstream in("/proc/" + std::to_string(s->pid()) + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0L;
  };
  const size_t fds_before = count_fds();
  const long rss_before = rss_kib();
  Memfd r(4096);
  for (int i = 0; i < 10000; ++i) {
    // Half over the Unix socket with a region, half over TCP.
    auto c = i % 2 ? Unix(*s) : Tcp(*s);
    auto a = c->Attach();
    ASSERT_TRUE(a) << "session " << i;
    ASSERT_EQ(a->head.status, StatusCode::kOk) << "session " << i << ": a dropped session was kept";
    if (i % 2) ASSERT_EQ(Register(*c, 1, 4096, r.fd), StatusCode::kOk);
  }
  for (int i = 0; i < 100 && (count_maps() > 0 || count_fds() > fds_before); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(count_maps(), 0u) << "regions of closed sessions are still mapped";
  EXPECT_LE(count_fds(), fds_before) << "descriptors of closed sessions are still open";
  // Every session slot is free again: 15 more attach (the probe holds one).
  std::vector<std::unique_ptr<RawClient>> more;
  for (int i = 0; i < 15; ++i) {
    more.push_back(Tcp(*s));
    auto a = more.back()->Attach();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->head.status, StatusCode::kOk) << i;
  }
  EXPECT_TRUE(Ping(*probe));
  std::printf("server resident memory: %ld KiB before, %ld KiB after 10,000 sessions\n", rss_before,
              rss_kib());
}

// ---- hardening: versions, replay, connections that never attach ----

TEST_F(ServerTest, AnOldClientIsToldBothVersionsInItsOwnFraming) {
  auto s = Start({"--mode", "memory"});
  auto c = Tcp(*s);
  proto::Buffer b(60, std::byte{0});  // a version-1 Attach's size; its body is not read
  ASSERT_TRUE(c->Send(Opcode::kAttach, b, {}, 4, -1, /*version=*/1));
  auto f = c->Recv();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->header.version, 1) << "a version-1 client could not read the answer";
  proto::ReplyHead h;
  ASSERT_TRUE(proto::Decode(f->control, h));
  EXPECT_EQ(h.status, StatusCode::kUnsupportedVersion);
  EXPECT_NE(h.message.find("version 1"), std::string_view::npos) << h.message;
  EXPECT_NE(h.message.find("version 2"), std::string_view::npos) << h.message;
  EXPECT_TRUE(c->Closed());
}

// Someone on the path records a client's Hello, Attach and Delete, and
// plays them on a connection of their own, or again on the same one.
TEST_F(ServerTest, ARecordedAttachAndDeleteReplayedDeleteNothing) {
  const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  const proto::AuthKey key = proto::AuthKey::FromHex(hex).value();
  auto s = Start({"--mode", "memory", "--set", "network.auth_key=" + hex});
  auto owner = Tcp(*s, &key);
  ASSERT_EQ(owner->Attach()->head.status, StatusCode::kOk);
  ASSERT_EQ(Put(*owner, {{"victim", "v1"}})[0], StatusCode::kOk);

  auto c = Tcp(*s, &key);
  c->record();
  ASSERT_EQ(c->Attach()->head.status, StatusCode::kOk);
  proto::Buffer b;
  proto::Encode(proto::KeysRequest{{1, 0, 1}, {"other"}}, b);
  ASSERT_TRUE(c->Send(Opcode::kDelete, b, {}, 77));
  ASSERT_TRUE(c->Recv());
  const std::vector<proto::Buffer> frames = c->recorded();  // Hello, Attach, Delete
  ASSERT_EQ(frames.size(), 3u);
  ASSERT_EQ(Put(*owner, {{"other", "still here"}})[0], StatusCode::kOk);

  {  // on a new connection: its Hello gets a fresh nonce, so the Attach's tag is wrong
    RawClient thief(ConnectTcp(s->port()));
    for (const auto& f : frames) thief.SendBytes(f.data(), f.size());
    auto hello = thief.Recv();
    ASSERT_TRUE(hello);
    auto refused = thief.Recv();
    ASSERT_TRUE(refused);
    proto::ReplyHead h;
    ASSERT_TRUE(proto::Decode(refused->control, h));
    EXPECT_EQ(h.status, StatusCode::kUnauthorized);
    EXPECT_TRUE(thief.Closed());
  }
  {  // on the same connection: the Delete is out of sequence
    c->SendBytes(frames[2].data(), frames[2].size());
    auto refused = c->Recv();
    ASSERT_TRUE(refused);
    proto::ReplyHead h;
    ASSERT_TRUE(proto::Decode(refused->control, h));
    EXPECT_EQ(h.status, StatusCode::kUnauthorized);
    EXPECT_NE(h.message.find("sequence"), std::string_view::npos) << h.message;
    EXPECT_TRUE(c->Closed());
  }
  const auto got = Get(*owner, {"other", "victim"});
  EXPECT_EQ(got[0].second, "still here");
  EXPECT_EQ(got[1].second, "v1");
}

TEST_F(ServerTest, AConnectionThatDoesNotAttachInTimeIsClosed) {
  auto s = Start({"--mode", "memory", "--set", "limits.attach_timeout=300ms"});
  auto silent = Tcp(*s);
  auto greeted = Tcp(*s);
  ASSERT_TRUE(greeted->Hello());
  EXPECT_TRUE(silent->Closed(5000));
  EXPECT_TRUE(greeted->Closed(5000));
  auto c = Tcp(*s);
  ASSERT_EQ(c->Attach()->head.status, StatusCode::kOk);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE(Ping(*c)) << "an attached connection is not subject to the attach deadline";
}

TEST_F(ServerTest, AFloodOfIdleConnectionsCannotLockClientsOut) {
  auto s = Start({"--mode", "memory", "--set", "limits.max_unattached_connections=8", "--set",
                  "limits.attach_timeout=60s"});
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 40; ++i) idle.push_back(Tcp(*s));
  auto c = Tcp(*s);
  auto a = c->Attach();
  ASSERT_TRUE(a) << "a client could not attach past 40 idle connections";
  EXPECT_EQ(a->head.status, StatusCode::kOk);
  EXPECT_TRUE(Ping(*c));
  int closed = 0;
  for (auto& i : idle) closed += i->Closed(500);
  EXPECT_GE(closed, 32) << "idle connections past limits.max_unattached_connections were kept";
  EXPECT_TRUE(idle.back()->Hello()) << "the newest idle connection was closed, not the oldest";
}

TEST_F(ServerTest, ALargeFrameBeforeAttachIsRefusedWithoutReadingIt) {
  auto s = Start({"--mode", "memory"});
  auto c = Tcp(*s);
  ASSERT_TRUE(c->Hello());
  // Only the header of a 1 MiB frame: the server must not wait for its body.
  proto::FrameHeader h;
  h.opcode = Opcode::kBatchWrite;
  h.seq = 1;
  h.control_len = 1 << 20;
  const auto raw = proto::EncodeHeader(h, {}, nullptr);
  ASSERT_TRUE(c->SendBytes(raw.data(), raw.size()));
  auto f = c->Recv(5000);
  ASSERT_TRUE(f);
  proto::ReplyHead rh;
  ASSERT_TRUE(proto::Decode(f->control, rh));
  EXPECT_EQ(rh.status, StatusCode::kProtocolError);
  EXPECT_NE(rh.message.find("before Attach"), std::string_view::npos) << rh.message;
  EXPECT_TRUE(c->Closed());
}

TEST_F(ServerTest, EarlierEntriesForAKeyShareTheFailureOfTheLastOne) {
  auto s = Start({"--mode", "memory"});
  auto c = Tcp(*s);
  ASSERT_TRUE(c->Attach());
  proto::BatchWriteRequest req;
  req.batch = {2, 0, 2};
  req.entries.push_back({"k", 5, Xxh3("first"), {}});
  req.entries.push_back({"k", 6, Xxh3("second"), {}});  // its bytes will not match
  proto::Buffer control;
  proto::Encode(req, control);
  ASSERT_TRUE(c->Send(Opcode::kBatchWrite, control, B("firstSECOND")));
  auto f = c->Recv();
  ASSERT_TRUE(f);
  proto::StatusReply rep;
  ASSERT_TRUE(proto::Decode(f->control, rep));
  ASSERT_EQ(rep.statuses.size(), 2u);
  EXPECT_EQ(rep.statuses[1], StatusCode::kChecksumMismatch);
  EXPECT_EQ(rep.statuses[0], StatusCode::kChecksumMismatch)
      << "an entry that was never written reported Ok";
  EXPECT_EQ(Get(*c, {"k"})[0].first, StatusCode::kNotFound);
}

TEST_F(ServerTest, ASecondServerOnTheSameSocketIsRefusedAndNamesTheFirst) {
  auto first = Start({"--mode", "memory"});
  const std::string log = dir_.path().string() + "/second.log";
  ServerProcess second(dir_.path().string(), {"--mode", "memory"}, log);
  EXPECT_FALSE(second.ready());
  const int st = second.exit_status();  // the raw wait status: it exited before it was ready
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st;
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("process " + std::to_string(first->pid())), std::string::npos) << text;
  auto c = Unix(*first);
  ASSERT_TRUE(c->Attach()) << "the first server lost its socket";
  EXPECT_TRUE(Ping(*c));
}

TEST_F(ServerTest, CapacityIsAnswered) {
  auto s = Start({"--mode", "memory", "--memory", "64MiB"});
  auto c = Tcp(*s);
  auto a = c->Attach();
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->features & proto::kFeatureCapacity);
  ASSERT_EQ(Put(*c, {{"a", std::string(5000, 'a')}})[0], StatusCode::kOk);
  ASSERT_TRUE(c->Send(Opcode::kCapacity, {}, {}, 50));
  auto f = c->Recv();
  ASSERT_TRUE(f);
  proto::CapacityReply cap;
  ASSERT_TRUE(proto::Decode(f->control, cap));
  EXPECT_EQ(cap.head.status, StatusCode::kOk);
  EXPECT_GT(cap.total_bytes, 0u);
  EXPECT_GE(cap.used_bytes, 5000u);
  EXPECT_EQ(cap.keys, 1u);
}

// One List request: the keys (key, size, version) and the cursor.
struct Listed {
  StatusCode status = StatusCode::kOk;
  std::vector<std::tuple<std::string, uint64_t, uint64_t>> keys;
  std::string cursor;
};
Listed List(RawClient& c, const std::string& prefix, const std::string& cursor, uint32_t limit,
            uint64_t id = 60) {
  proto::Buffer b;
  proto::Encode(proto::ListRequest{prefix, cursor, limit}, b);
  EXPECT_TRUE(c.Send(Opcode::kList, b, {}, id));
  auto f = c.Recv();
  EXPECT_TRUE(f);
  Listed out;
  if (!f) return out;
  EXPECT_EQ(f->header.request_id, id);
  proto::ListReply rep;
  EXPECT_TRUE(proto::Decode(f->control, rep));
  out.status = rep.head.status;
  for (const auto& e : rep.entries)
    out.keys.emplace_back(std::string(e.key), e.value_size, e.version);
  out.cursor = rep.cursor;
  return out;
}

std::vector<StatusCode> Rename(RawClient& c,
                               const std::vector<std::pair<std::string, std::string>>& moves,
                               uint64_t id = 70) {
  proto::RenameRequest req;
  req.batch = {static_cast<uint32_t>(moves.size()), 0, static_cast<uint32_t>(moves.size())};
  for (auto& [from, to] : moves) req.entries.push_back({from, to});
  proto::Buffer b;
  proto::Encode(req, b);
  EXPECT_TRUE(c.Send(Opcode::kRename, b, {}, id));
  auto f = c.Recv();
  EXPECT_TRUE(f);
  if (!f) return {};
  proto::StatusReply rep;
  EXPECT_TRUE(proto::Decode(f->control, rep));
  if (rep.head.status != StatusCode::kOk) return {rep.head.status};
  return rep.statuses;
}

TEST_F(ServerTest, ListPagesKeysByPrefixInOrderWithAnExclusiveCursor) {
  auto s = Start({"--mode", "memory", "--memory", "64MiB"});
  auto c = Tcp(*s);
  auto a = c->Attach();
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->features & proto::kFeatureList);
  std::vector<std::pair<std::string, std::string>> kv;
  std::vector<std::string> want;
  for (int i = 0; i < 25; ++i) {
    const std::string k = "dir/" + std::to_string(1000 - i * 13);
    kv.emplace_back(k, std::string(10 + i, 'v'));
    want.push_back(k);
  }
  kv.emplace_back("dir", "not under dir/");
  kv.emplace_back("dis", "after the prefix");
  ASSERT_EQ(Put(*c, kv).size(), kv.size());
  std::sort(want.begin(), want.end());

  std::vector<std::string> got;
  std::string cursor;
  int pages = 0;
  do {
    Listed l = List(*c, "dir/", cursor, 10, 60 + pages);
    ASSERT_EQ(l.status, StatusCode::kOk);
    ASSERT_LE(l.keys.size(), 10u);
    for (auto& [k, size, version] : l.keys) {
      got.push_back(k);
      const size_t i =
          std::find_if(kv.begin(), kv.end(), [&](auto& p) { return p.first == k; }) - kv.begin();
      EXPECT_EQ(size, kv[i].second.size()) << k;
      EXPECT_GT(version, 0u);
    }
    // The cursor is the last key returned while more may follow.
    if (!l.cursor.empty()) EXPECT_EQ(l.cursor, std::get<0>(l.keys.back()));
    cursor = l.cursor;
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(got, want);
  EXPECT_EQ(pages, 3);

  // A deleted key is gone from the listing; a replaced one is listed once
  // with its new size.
  proto::Buffer b;
  proto::Encode(proto::KeysRequest{{1, 0, 1}, {want[0]}}, b);
  ASSERT_TRUE(c->Send(Opcode::kDelete, b, {}, 80));
  ASSERT_TRUE(c->Recv());
  ASSERT_EQ(Put(*c, {{want[1], "x"}})[0], StatusCode::kOk);
  Listed l = List(*c, "dir/", "", 2);
  ASSERT_EQ(l.keys.size(), 2u);
  EXPECT_EQ(std::get<0>(l.keys[0]), want[1]);
  EXPECT_EQ(std::get<1>(l.keys[0]), 1u);
  EXPECT_EQ(l.cursor, want[2]);
  // A limit past the cap is served (capped).
  l = List(*c, "", "", 4000000000u);
  EXPECT_EQ(l.status, StatusCode::kOk);
  EXPECT_EQ(l.keys.size(), 26u);
  EXPECT_TRUE(l.cursor.empty());
}

TEST_F(ServerTest, ListCapsAReplyAtTenThousandKeys) {
  auto s = Start({"--mode", "memory", "--memory", "256MiB"});
  auto c = Tcp(*s);
  ASSERT_TRUE(c->Attach());
  for (int batch = 0; batch < 11; ++batch) {
    std::vector<std::pair<std::string, std::string>> kv;
    for (int i = 0; i < 1000; ++i) {
      char k[16];
      std::snprintf(k, sizeof k, "k%05d", batch * 1000 + i);
      kv.emplace_back(k, "v");
    }
    ASSERT_EQ(Put(*c, kv, 100 + batch).size(), kv.size());
  }
  Listed l = List(*c, "k", "", 50000);
  ASSERT_EQ(l.status, StatusCode::kOk);
  ASSERT_EQ(l.keys.size(), 10000u);
  EXPECT_EQ(std::get<0>(l.keys.back()), "k09999");
  EXPECT_EQ(l.cursor, "k09999");
  l = List(*c, "k", l.cursor, 50000);
  ASSERT_EQ(l.keys.size(), 1000u);
  EXPECT_EQ(std::get<0>(l.keys.front()), "k10000");
  EXPECT_TRUE(l.cursor.empty());
}

TEST_F(ServerTest, RenameMovesValuesInMemoryModeWithAStatusPerEntry) {
  auto s = Start({"--mode", "memory", "--memory", "64MiB"});
  auto c = Tcp(*s);
  auto a = c->Attach();
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->features & proto::kFeatureRename);
  const std::string big(300000, 'b');
  ASSERT_EQ(Put(*c, {{"tmp/a", big}, {"tmp/b", "bee"}, {"final/b", "old"}}).size(), 3u);
  const auto st = Rename(*c, {{"tmp/a", "final/a"}, {"tmp/b", "final/b"}, {"tmp/none", "final/c"}});
  ASSERT_EQ(st.size(), 3u);
  EXPECT_EQ(st[0], StatusCode::kOk);
  EXPECT_EQ(st[1], StatusCode::kOk);
  EXPECT_EQ(st[2], StatusCode::kNotFound);
  const auto got = Get(*c, {"final/a", "final/b", "tmp/a", "tmp/b", "final/c"});
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0].second, big);
  EXPECT_EQ(got[1].second, "bee");  // replaced
  EXPECT_EQ(got[2].first, StatusCode::kNotFound);
  EXPECT_EQ(got[3].first, StatusCode::kNotFound);
  EXPECT_EQ(got[4].first, StatusCode::kNotFound);
  Listed l = List(*c, "", "", 10);
  ASSERT_EQ(l.keys.size(), 2u);
  EXPECT_EQ(std::get<0>(l.keys[0]), "final/a");
  EXPECT_EQ(std::get<0>(l.keys[1]), "final/b");
  // Entries apply in order: a chain moves the value along it.
  const auto chain = Rename(*c, {{"final/a", "x"}, {"x", "y"}}, 71);
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], StatusCode::kOk);
  EXPECT_EQ(chain[1], StatusCode::kOk);
  const auto moved = Get(*c, {"final/a", "x", "y"});
  EXPECT_EQ(moved[0].first, StatusCode::kNotFound);
  EXPECT_EQ(moved[1].first, StatusCode::kNotFound);
  EXPECT_EQ(moved[2].second, big);
}

TEST_F(ServerTest, RenameMovesValuesInFileModeAndTheyStayMovedAfterARestart) {
  const std::string d0 = dir_.path().string() + "/d0.img";
  ASSERT_EQ(
      std::system(
          (std::string(MEMKV_BINARY) + " drive init " + d0 + " --size 64MiB 2>/dev/null").c_str()),
      0);
  const std::string cfg = dir_.path().string() + "/config.yaml";
  ASSERT_EQ(std::system(
                (std::string(MEMKV_BINARY) + " setup --drives " + d0 + " > " + cfg + " 2>/dev/null")
                    .c_str()),
            0);
  const std::vector<std::string> args = {
      "--config", cfg, "--set", "network.auth_key=", "--set", "network.allow_unauthenticated=true"};
  const std::string big(300000, 'b');
  {
    auto s = Start(args);
    auto c = Tcp(*s);
    auto a = c->Attach();
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->features & proto::kFeatureRename);
    EXPECT_TRUE(a->features & proto::kFeatureList);
    EXPECT_TRUE(a->features & proto::kFeatureOpenStream);
    ASSERT_EQ(Put(*c, {{"from", big}, {"to", "old"}}).size(), 2u);
    const auto st = Rename(*c, {{"from", "to"}, {"none", "x"}});
    ASSERT_EQ(st.size(), 2u);
    EXPECT_EQ(st[0], StatusCode::kOk);
    EXPECT_EQ(st[1], StatusCode::kNotFound);
    const auto got = Get(*c, {"from", "to"});
    EXPECT_EQ(got[0].first, StatusCode::kNotFound);
    EXPECT_EQ(got[1].second, big);
    ::kill(s->pid(), SIGKILL);  // no shutdown, no checkpoint: the journal alone
  }
  auto s = Start(args);
  auto c = Tcp(*s);
  ASSERT_TRUE(c->Attach());
  const auto got = Get(*c, {"from", "to"});
  EXPECT_EQ(got[0].first, StatusCode::kNotFound);
  EXPECT_EQ(got[1].second, big);
  Listed l = List(*c, "", "", 10);
  ASSERT_EQ(l.keys.size(), 1u);
  EXPECT_EQ(std::get<0>(l.keys[0]), "to");
}

}  // namespace
// Flips one byte of every copy of `marker` in the process's writable memory
// (through /proc/pid/mem); how many it found.
int FlipInProcessMemory(pid_t pid, const std::string& marker) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  const int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDWR | O_CLOEXEC);
  if (mem < 0) return -1;
  int found = 0;
  std::string line;
  std::vector<char> buf;
  while (std::getline(maps, line)) {
    uint64_t from = 0, to = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %4s", &from, &to, perms) != 3) continue;
    if (perms[0] != 'r' || perms[1] != 'w' || to - from > (uint64_t{4} << 30)) continue;
    buf.resize(to - from);
    const ssize_t n = ::pread(mem, buf.data(), buf.size(), static_cast<off_t>(from));
    if (n <= 0) continue;
    const std::string_view hay(buf.data(), static_cast<size_t>(n));
    for (size_t at = hay.find(marker); at != std::string_view::npos; at = hay.find(marker, at + 1)) {
      const char flipped = static_cast<char>(hay[at + 7] ^ 0x20);
      if (::pwrite(mem, &flipped, 1, static_cast<off_t>(from + at + 7)) == 1) ++found;
    }
  }
  ::close(mem);
  return found;
}

// Piece sums travel with a value: taken from the writer's bytes, checked as
// the server stores them, kept with it and sent with every read. A byte
// damaged in the server's memory after that is caught by the reader, on tcp
// and in a shm region alike.
TEST_F(ServerTest, AByteDamagedInTheServersMemoryIsCaughtByTheReader) {
  auto s = Start();
  auto c = Unix(*s);
  ASSERT_TRUE(c->Attach());
  std::string value(300000, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  const std::string marker = "<<memkv-marker-0123456789abcdefghij>>";
  value.replace(123456, marker.size(), marker);
  // Put with piece sums, as the client library sends them; one wrong sum is refused.
  std::vector<uint64_t> sums(PiecesOf(value.size()));
  PieceSums(value.data(), value.size(), sums.data());
  auto put = [&](const std::string& key, const std::vector<uint64_t>& with) {
    proto::BatchWriteRequest req;
    req.batch = {1, 0, 1};
    proto::WriteEntry e{key, value.size(), 0, {}};
    e.piece_sums = proto::Bytes(reinterpret_cast<const std::byte*>(with.data()), 8 * with.size());
    req.entries.push_back(e);
    proto::Buffer control;
    proto::Encode(req, control);
    EXPECT_TRUE(c->Send(Opcode::kBatchWrite, control, B(value)));
    auto f = c->Recv();
    proto::StatusReply rep;
    EXPECT_TRUE(f && proto::Decode(f->control, rep));
    return rep.statuses.empty() ? StatusCode::kInternal : rep.statuses[0];
  };
  auto wrong = sums;
  wrong[30] ^= 1;
  EXPECT_EQ(put("bad", wrong), StatusCode::kChecksumMismatch);
  EXPECT_EQ(Get(*c, {"bad"})[0].first, StatusCode::kNotFound);
  ASSERT_EQ(put("v", sums), StatusCode::kOk);
  auto before = Get(*c, {"v"});
  ASSERT_EQ(before[0].first, StatusCode::kOk);
  EXPECT_EQ(before[0].second, value);

  // The stored copy (and any stale one) is damaged after its sums were taken.
  // (The client's copy in this process is not the server's.)
  ASSERT_GE(FlipInProcessMemory(s->pid(), marker), 1);
  EXPECT_EQ(Get(*c, {"v"})[0].first, StatusCode::kChecksumMismatch);

  // Placed in a region by the server: the same sums say the same.
  Memfd region(1 << 20);
  ASSERT_EQ(Register(*c, 1, region.size, region.fd), StatusCode::kOk);
  proto::BatchReadRequest req;
  req.batch = {1, 0, 1};
  req.entries.push_back({"v", 0, 0, {proto::LocationKind::kShm, 1, 0, 1 << 20}});
  proto::Buffer control;
  proto::Encode(req, control);
  ASSERT_TRUE(c->Send(Opcode::kBatchRead, control, {}));
  auto f = c->Recv();
  ASSERT_TRUE(f);
  proto::BatchReadReply rep;
  ASSERT_TRUE(proto::Decode(f->control, f->data, rep));
  ASSERT_EQ(rep.results[0].status, StatusCode::kOk);
  ASSERT_EQ(rep.results[0].delivery, proto::Delivery::kPlaced);
  EXPECT_GT(rep.results[0].pages(), 0u);
  EXPECT_FALSE(proto::ChecksumsMatch(
      rep.results[0], proto::Bytes(reinterpret_cast<const std::byte*>(region.base), value.size())));
}

// A write of inline values with piece sums is received straight into the
// store: each value is published only if all of it came and every piece
// matched; the last entry for a key wins and the earlier ones share its fate.
TEST_F(ServerTest, AWriteReceivedIntoTheStoreIsPublishedOnlyWhole) {
  auto s = Start();
  auto c = Tcp(*s);
  ASSERT_TRUE(c->Attach());
  auto value = [](size_t n, char seed) {
    std::string v(n, '\0');
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>(seed + i % 61);
    return v;
  };
  const std::string a1 = value(100000, 'a'), b = value(150000, 'b'), a2 = value(70001, 'A');
  std::vector<std::vector<uint64_t>> sums;
  for (const std::string* v : {&a1, &b, &a2}) {
    sums.emplace_back(PiecesOf(v->size()));
    PieceSums(v->data(), v->size(), sums.back().data());
  }
  sums[1][17] ^= 1;  // one piece of b does not match
  auto batch = [&](const std::vector<std::pair<std::string, const std::string*>>& kv) {
    proto::BatchWriteRequest req;
    req.batch = {static_cast<uint32_t>(kv.size()), 0, static_cast<uint32_t>(kv.size())};
    std::string data;
    for (size_t i = 0; i < kv.size(); ++i) {
      proto::WriteEntry e{kv[i].first, kv[i].second->size(), 0, {}};
      e.piece_sums = proto::Bytes(reinterpret_cast<const std::byte*>(sums[i].data()), 8 * sums[i].size());
      req.entries.push_back(e);
      data += *kv[i].second;
    }
    return std::make_pair(req, data);
  };
  {
    auto [req, data] = batch({{"a", &a1}, {"b", &b}, {"a", &a2}});
    proto::Buffer control;
    proto::Encode(req, control);
    ASSERT_TRUE(c->Send(Opcode::kBatchWrite, control, B(data), 7));
    auto f = c->Recv();
    ASSERT_TRUE(f);
    proto::StatusReply rep;
    ASSERT_TRUE(proto::Decode(f->control, rep));
    EXPECT_EQ(rep.statuses, (std::vector<StatusCode>{StatusCode::kOk, StatusCode::kChecksumMismatch,
                                                     StatusCode::kOk}));
    const auto got = Get(*c, {"a", "b"});
    EXPECT_EQ(got[0].first, StatusCode::kOk);
    EXPECT_EQ(got[0].second, a2);
    EXPECT_EQ(got[1].first, StatusCode::kNotFound);
  }
  {
    // Cut off half way through the values: nothing of it is published.
    auto cut = Tcp(*s);
    ASSERT_TRUE(cut->Attach());
    auto [req, data] = batch({{"c", &a1}});
    proto::Buffer control;
    proto::Encode(req, control);
    ASSERT_TRUE(cut->SendCut(Opcode::kBatchWrite, control, B(data), 8,
                             proto::kHeaderSize + control.size() + data.size() / 2));
    cut.reset();
    EXPECT_TRUE(Ping(*c));
    EXPECT_EQ(Get(*c, {"c"})[0].first, StatusCode::kNotFound);
    // The connection's reservation went back: the whole store is usable.
    const auto st = Put(*c, {{"c", a1}});
    ASSERT_EQ(st.size(), 1u);
    EXPECT_EQ(st[0], StatusCode::kOk);
  }
}

// A client that keeps its socket full must not keep the loop it shares with
// others: the reader steps back through the loop every 1 MiB. The server
// is stopped while a bulk client queues a 12 MiB write and a newcomer its
// Hello; when the server goes on, the newcomer must be answered before the
// server has read every byte queued by the bulk client. (In the 8-process
// fan-in on a loaded 2-core machine, newcomers waited past their 5 s
// connect_timeout.)
TEST_F(ServerTest, ANewcomerIsAnsweredWhileAnotherClientKeepsItsSocketFull) {
  auto s = Start({"--mode", "memory", "--threads", "1"});  // one loop for both
  auto bulk = Unix(*s);
  ASSERT_TRUE(bulk->Attach());
  const int room = 32 << 20;
  if (::setsockopt(bulk->fd(), SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room) != 0)
    GTEST_SKIP() << "SO_SNDBUFFORCE: " << std::strerror(errno) << " (needs CAP_NET_ADMIN)";
  std::string value(12 << 20, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 131 + i / 4096);
  proto::BatchWriteRequest req;
  req.batch = {1, 0, 1};
  req.entries.push_back({"bulk", value.size(), Xxh3(value), {}});
  proto::Buffer control;
  proto::Encode(req, control);
  const proto::Buffer frame = bulk->Encoded(Opcode::kBatchWrite, control, B(value), 5);

  ASSERT_EQ(::kill(s->pid(), SIGSTOP), 0);
  size_t queued = 0;
  while (queued < frame.size()) {
    const ssize_t n = ::send(bulk->fd(), frame.data() + queued, frame.size() - queued,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    queued += static_cast<size_t>(n);
  }
  auto newcomer = Unix(*s);  // connected from the backlog while the server is stopped
  std::optional<proto::HelloReply> hello;
  int unread_at_hello = -1;  // of the bulk client's bytes, when the newcomer was answered
  std::thread t([&] {
    hello = newcomer->Hello();
    ::ioctl(bulk->fd(), SIOCOUTQ, &unread_at_hello);
  });
  // The Hello is queued at the server before it goes on.
  int pending = 0;
  for (int i = 0; i < 500 && pending == 0; ++i) {
    ::ioctl(newcomer->fd(), SIOCOUTQ, &pending);
    if (pending == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(s->pid(), SIGCONT);
  t.join();
  ASSERT_GT(pending, 0) << "the newcomer's Hello was never queued";
  ASSERT_TRUE(hello) << "the newcomer got no answer to Hello";
  EXPECT_GE(queued, size_t(4) << 20) << "too little was queued to tell";
  EXPECT_GT(unread_at_hello, 0)
      << "the server read all " << queued << " bytes the bulk client had queued before it "
      << "answered the newcomer";
  // The bulk write itself is whole.
  ASSERT_TRUE(bulk->SendBytes(frame.data() + queued, frame.size() - queued));
  auto f = bulk->Recv();
  ASSERT_TRUE(f);
  proto::StatusReply rep;
  ASSERT_TRUE(proto::Decode(f->control, rep));
  EXPECT_EQ(rep.statuses, std::vector<StatusCode>{StatusCode::kOk});
  const auto got = Get(*bulk, {"bulk"});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, StatusCode::kOk);
  EXPECT_TRUE(got[0].second == value);
}

}  // namespace memkv::testing
