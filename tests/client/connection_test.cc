// The client's connection core against a fake server (tests/client/fake_server.h).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "client/awaitable.h"
#include "client/connection.h"
#include "common/send_all.h"
#include "fake_server.h"
#include "rdma/error.h"
#include "rdma/fabric_api.h"

namespace memkv::client {
namespace {

using proto::StatusCode;
using testing::FakeServer;
using testing::FakeServerOptions;
using namespace std::chrono_literals;

Buffer Pattern(size_t n, uint8_t seed) {
  Buffer b(n);
  for (size_t i = 0; i < n; ++i) b[i] = std::byte(static_cast<uint8_t>(seed + i * 131 + (i >> 12)));
  return b;
}

ConnectionOptions Options(const FakeServer& server) {
  ConnectionOptions o;
  o.address = server.address();
  return o;
}

proto::AuthKey Key(char c) { return proto::AuthKey::FromHex(std::string(64, c)).value(); }

Connection MustConnect(const ConnectionOptions& o) {
  auto c = Connection::Connect(o);
  EXPECT_TRUE(c) << c.error().message();
  return std::move(c.value());
}

// A shared region of `size` bytes, registered on `conn` (null, with a
// failure recorded, when either step fails).
std::shared_ptr<SharedRegion> MustRegister(Connection& conn, uint64_t size) {
  auto region = SharedRegion::Create(size);
  EXPECT_TRUE(region) << region.error().message();
  if (!region) return nullptr;
  auto registered = conn.RegisterRegion(*region);
  EXPECT_TRUE(registered) << registered.error().message();
  return registered ? *region : nullptr;
}

// Both sides' writers send with SendAll: a gather list longer than one
// sendmsg takes (IOV_MAX), with empty entries, into a socket whose send
// buffer holds a fraction of it, arrives whole and in order.
TEST(SendAllTest, AGatherListLongerThanOneSendmsgArrivesWholeAndInOrder) {
  namespace asio = boost::asio;
  asio::io_context ctx;
  asio::local::stream_protocol::socket a(ctx), b(ctx);
  asio::local::connect_pair(a, b);
  const int small = 16 << 10;
  ASSERT_EQ(0, ::setsockopt(a.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
  // 3,000 entries of 0 to 1,000 bytes: about 1.5 MB, cut anywhere by the kernel.
  const Buffer bytes = Pattern(3000 * 1000, 7);
  std::vector<iovec> iov;
  size_t expected = 0;
  for (size_t i = 0, at = 0; i < 3000; ++i) {
    const size_t len = (i * 7919) % 1001;
    iov.push_back(Iovec(Bytes(bytes).subspan(at, len)));
    at += len;
    expected = at;
  }
  Buffer got;
  std::thread reader([&] {
    std::byte buf[8192];
    for (;;) {
      const ssize_t n = ::read(b.native_handle(), buf, sizeof buf);
      if (n <= 0) break;
      got.insert(got.end(), buf, buf + n);
    }
  });
  boost::system::error_code result = asio::error::would_block;
  asio::co_spawn(ctx, SendAll(a, std::span<iovec>(iov)),
                 [&](std::exception_ptr, boost::system::error_code ec) {
                   result = ec;
                   a.shutdown(asio::socket_base::shutdown_send);
                 });
  ctx.run();
  reader.join();
  EXPECT_FALSE(result) << result.message();
  ASSERT_EQ(got.size(), expected);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), bytes.begin()));
}

TEST(ConnectionTest, AttachAndPingOverTcp) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  EXPECT_TRUE(conn.is_open());
  EXPECT_EQ(conn.attach_info().host_id, "fake-host");
  EXPECT_EQ(conn.attach_info().session_id, 42u);
  EXPECT_TRUE(conn.Ping());
  EXPECT_EQ(server.attaches, 1);
}

TEST(ConnectionTest, AttachWithAuthKey) {
  FakeServerOptions so;
  so.key = Key('a');
  FakeServer server(so);
  ConnectionOptions o = Options(server);
  o.auth_key = Key('a');
  Connection conn = MustConnect(o);
  EXPECT_TRUE(conn.Ping());
  Buffer v = Pattern(1000, 1);
  auto put = conn.Put({{{"k", v}}, nullptr});
  ASSERT_TRUE(put);
  EXPECT_EQ((*put)[0], StatusCode::kOk);
  Buffer out(1000);
  auto get = conn.Get({{"k", 0, 0, out}});
  ASSERT_TRUE(get);
  EXPECT_EQ((*get)[0].status, StatusCode::kOk);
  EXPECT_EQ(out, v);
}

TEST(ConnectionTest, WrongOrMissingKeyIsRefused) {
  FakeServerOptions so;
  so.key = Key('a');
  FakeServer server(so);
  ConnectionOptions o = Options(server);
  o.auth_key = Key('b');
  auto wrong = Connection::Connect(o);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), errc::attach_refused);
  o.auth_key.reset();
  auto none = Connection::Connect(o);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error(), errc::attach_refused);
  EXPECT_EQ(server.attaches, 0);
}

// A reply recorded on the path and played to the client again is out of
// sequence: the client refuses it and drops the connection (and with it
// every request the forger could have answered) rather than take it.
TEST(ConnectionTest, AReplayedReplyIsRefused) {
  FakeServerOptions so;
  so.key = Key('a');
  FakeServer server(so);
  ConnectionOptions o = Options(server);
  o.auth_key = Key('a');
  Connection conn = MustConnect(o);
  auto pending = std::make_shared<std::promise<Result<std::vector<KeyInfo>>>>();
  auto waiting = pending->get_future();
  conn.AsyncExists({"__noreply__"}, 600s, [pending](auto r) { pending->set_value(std::move(r)); });
  ASSERT_TRUE(conn.Ping());
  auto first = conn.Exists({"__replay__"}, 600s);  // answered, then the same bytes again
  ASSERT_TRUE(first);
  ASSERT_EQ(waiting.wait_for(30s), std::future_status::ready) << "the replayed reply was taken";
  auto r = waiting.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::connection_lost);
  EXPECT_FALSE(conn.is_open());
}

// A server that stops answering (a cut link) must not make the client hold
// every call made meanwhile: the write queue is bounded, and a request that
// times out before it was written leaves it (regression: the queue kept
// every timed-out put's values until the link came back).
TEST(ConnectionTest, TheWriteQueueIsBoundedAndTimedOutRequestsLeaveIt) {
  FakeServer server({});
  ConnectionOptions o = Options(server);
  o.max_inflight = 1;
  o.max_queued_bytes = 4u << 20;
  Connection conn = MustConnect(o);
  conn.AsyncExists({"__noreply__"}, 600s, [](auto) {});  // holds the one slot in flight
  ASSERT_TRUE(conn.Ping(300ms).error() == errc::timeout);  // queued behind it, then dropped
  const Buffer v = Pattern(1u << 20, 3);
  std::vector<std::future<Result<std::vector<StatusCode>>>> queued;
  for (int i = 0; i < 3; ++i) {
    auto p = std::make_shared<std::promise<Result<std::vector<StatusCode>>>>();
    queued.push_back(p->get_future());
    conn.AsyncPut({{{"k" + std::to_string(i), v}}, nullptr}, 300ms,
                  [p](auto r) { p->set_value(std::move(r)); });
  }
  auto full = conn.Put({{{"one-too-many", Pattern(2u << 20, 4)}}, nullptr}, 300ms);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), errc::queue_full);
  for (auto& f : queued) {
    auto r = f.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::timeout);
  }
  // The timed-out puts left the queue: the same put is queued now (and
  // times out, since the server still holds the one slot).
  auto again = conn.Put({{{"one-too-many", Pattern(2u << 20, 4)}}, nullptr}, 300ms);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::timeout);
  EXPECT_TRUE(conn.is_open());
}

TEST(ConnectionTest, KeyOnClientOnlyIsRefused) {
  FakeServer server({});
  ConnectionOptions o = Options(server);
  o.auth_key = Key('a');
  auto c = Connection::Connect(o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), errc::attach_refused);
}

TEST(ConnectionTest, ConnectFailsOnClosedPortAndBadAddress) {
  ConnectionOptions o;
  {
    FakeServer server({});
    o.address = server.address();
  }
  auto c = Connection::Connect(o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), errc::connect_failed);
  o.address = "no-port-here";
  auto b = Connection::Connect(o);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), errc::bad_address);
}

TEST(ConnectionTest, PutGetExistsDelete) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  // Both values under one owner: sent without a copy.
  auto values = std::make_shared<std::vector<Buffer>>(
      std::vector<Buffer>{Pattern(5000, 7), Pattern(3, 9)});
  const Buffer* a = &(*values)[0];
  auto put = conn.Put({{{"a", (*values)[0]}, {"b", (*values)[1]}}, values});
  ASSERT_TRUE(put);
  EXPECT_EQ(*put, (std::vector<StatusCode>{StatusCode::kOk, StatusCode::kOk}));
  EXPECT_EQ(server.Value("a"), *a);

  auto ex = conn.Exists({"a", "b", "nope"});
  ASSERT_TRUE(ex);
  ASSERT_EQ(ex->size(), 3u);
  EXPECT_EQ((*ex)[0].status, StatusCode::kOk);
  EXPECT_EQ((*ex)[0].size, 5000u);
  EXPECT_EQ((*ex)[1].size, 3u);
  EXPECT_EQ((*ex)[2].status, StatusCode::kNotFound);

  Buffer whole(5000), part(100), small(10), miss(10);
  auto get = conn.Get({{"a", 0, 0, whole}, {"a", 1000, 100, part}, {"a", 0, 0, small},
                       {"nope", 0, 0, miss}});
  ASSERT_TRUE(get);
  EXPECT_EQ((*get)[0].status, StatusCode::kOk);
  EXPECT_EQ((*get)[0].length, 5000u);
  EXPECT_EQ(whole, *a);
  EXPECT_EQ((*get)[1].status, StatusCode::kOk);
  EXPECT_EQ(Buffer(a->begin() + 1000, a->begin() + 1100), part);
  EXPECT_EQ((*get)[2].status, StatusCode::kBufferTooSmall);
  EXPECT_EQ((*get)[3].status, StatusCode::kNotFound);

  auto del = conn.Delete({"a", "nope"});
  ASSERT_TRUE(del);
  EXPECT_EQ(*del, (std::vector<StatusCode>{StatusCode::kOk, StatusCode::kNotFound}));
  EXPECT_FALSE(server.Value("a"));
}

// Values received straight into the caller's buffers and checked 4 KiB at a
// time, across piece boundaries, frame splits and a destination too small.
TEST(ConnectionTest, PieceSummedReadsLandInPlaceAndCheckEveryPiece) {
  for (bool page_sums : {false, true}) {
    SCOPED_TRACE(page_sums ? "per-4 KiB sums" : "one XXH3 per value");
    FakeServerOptions so;
    so.page_sums = page_sums;
    so.reply_split = 2;
    FakeServer server(so);
    Connection conn = MustConnect(Options(server));
    const std::vector<size_t> sizes = {1, 4095, 4096, 4097, 300000, (1u << 20) + 3};
    std::vector<Buffer> values;
    std::vector<PutEntry> puts;
    for (size_t i = 0; i < sizes.size(); ++i) values.push_back(Pattern(sizes[i], static_cast<uint8_t>(i)));
    for (size_t i = 0; i < sizes.size(); ++i) puts.push_back({"k" + std::to_string(i), values[i]});
    auto put = conn.Put({puts});
    ASSERT_TRUE(put);
    for (StatusCode st : *put) EXPECT_EQ(st, StatusCode::kOk);
    std::vector<Buffer> outs;
    for (size_t n : sizes) outs.emplace_back(n);
    Buffer small(100);
    std::vector<GetEntry> gets;
    for (size_t i = 0; i < sizes.size(); ++i) gets.push_back({"k" + std::to_string(i), 0, 0, outs[i]});
    gets.push_back({"k5", 0, 0, small});
    auto got = conn.Get(gets);
    ASSERT_TRUE(got);
    for (size_t i = 0; i < sizes.size(); ++i) {
      EXPECT_EQ((*got)[i].status, StatusCode::kOk) << i;
      EXPECT_EQ((*got)[i].length, sizes[i]);
      EXPECT_EQ(outs[i], values[i]) << i;
    }
    EXPECT_EQ((*got)[sizes.size()].status, StatusCode::kBufferTooSmall);
  }
}

// A byte damaged after the server took its checksums (on the wire, here) is
// ChecksumMismatch, wherever it falls: never bytes handed over as good.
TEST(ConnectionTest, AByteDamagedOnTheWireIsAChecksumMismatch) {
  for (bool page_sums : {false, true}) {
    for (uint64_t at : {uint64_t{0}, uint64_t{4095}, uint64_t{4096}, uint64_t{250000}}) {
      SCOPED_TRACE(std::to_string(at) + (page_sums ? ", per-4 KiB sums" : ", one XXH3"));
      FakeServerOptions so;
      so.page_sums = page_sums;
      so.flip_byte = at;
      FakeServer server(so);
      Connection conn = MustConnect(Options(server));
      const Buffer v = Pattern(250001, 3), tiny = Pattern(10, 4);
      ASSERT_TRUE(conn.Put({{{"v", v}, {"tiny", tiny}}}));
      Buffer out(v.size()), out2(10);
      auto got = conn.Get({{"v", 0, 0, out}, {"tiny", 0, 0, out2}});
      ASSERT_TRUE(got);
      EXPECT_EQ((*got)[0].status, StatusCode::kChecksumMismatch);
      EXPECT_EQ((*got)[0].length, 0u);
      if (at >= tiny.size()) {
        EXPECT_EQ((*got)[1].status, StatusCode::kOk);  // undamaged: its own check passes
        EXPECT_EQ(out2, tiny);
      }
    }
  }
}

TEST(ConnectionTest, BadArgumentsAreRefusedBeforeSending) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  Buffer v(1);
  EXPECT_EQ(conn.Put({{{"", v}}, nullptr}).error(), errc::bad_argument);
  EXPECT_EQ(conn.Put({{{"k", {}}}, nullptr}).error(), errc::bad_argument);
  EXPECT_EQ(conn.Exists({std::string(1025, 'x')}).error(), errc::bad_argument);
  auto empty = conn.Delete({});
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

// Once refused with value_too_large_for_frame: now streamed in chunks over tcp.
TEST(ConnectionTest, ValueLargerThanAFrameIsStreamedInChunks) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  auto big = std::make_shared<Buffer>(proto::kMaxPayload + 12345);
  for (size_t i = 0; i < big->size(); ++i) (*big)[i] = static_cast<std::byte>(i * 7 + i / 4099);
  auto put = conn.Put({{{"big", *big}, {"small", Bytes(big->data(), 10)}}, big});
  ASSERT_TRUE(put) << put.error().message();
  EXPECT_EQ((*put)[0], StatusCode::kOk);
  EXPECT_EQ((*put)[1], StatusCode::kOk);
  EXPECT_EQ(server.chunks_received.load(), 3);  // 8 MiB, 8 MiB, the rest

  Buffer whole(big->size()), range(proto::kMaxPayload);
  auto got = conn.Get({{"big", 0, 0, whole}, {"big", 100, proto::kMaxPayload, range}});
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ((*got)[0].status, StatusCode::kOk);
  EXPECT_EQ((*got)[0].length, big->size());
  EXPECT_TRUE(whole == *big);
  EXPECT_EQ((*got)[1].status, StatusCode::kOk);
  EXPECT_EQ((*got)[1].length, proto::kMaxPayload);
  EXPECT_TRUE(std::memcmp(range.data(), big->data() + 100, range.size()) == 0);
  EXPECT_GE(server.chunks_sent.load(), 12);  // 3 MiB chunks

  // A destination too small for what streams back is reported, not overrun.
  Buffer small(proto::kMaxPayload);
  got = conn.Get({{"big", 0, 0, small}});
  ASSERT_TRUE(got);
  EXPECT_EQ((*got)[0].status, StatusCode::kBufferTooSmall);
  EXPECT_TRUE(conn.Ping());
}

TEST(ConnectionTest, RepliesOutOfOrderAreMatchedById) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  std::mutex mu;
  std::vector<std::string> order;
  std::promise<void> both;
  std::atomic<int> left{2};
  auto note = [&](std::string what) {
    {
      std::lock_guard lock(mu);
      order.push_back(std::move(what));
    }
    if (--left == 0) both.set_value();
  };
  conn.AsyncExists({"__hold__"}, 0ms, [&](Result<std::vector<KeyInfo>> r) {
    EXPECT_TRUE(r);
    note("held");
  });
  conn.AsyncPing(0ms, [&](Status s) {
    EXPECT_TRUE(s);
    note("ping");
  });
  both.get_future().wait();
  EXPECT_EQ(order, (std::vector<std::string>{"ping", "held"}));
}

TEST(ConnectionTest, SixteenThreadsShareOneConnection) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  constexpr int kThreads = 16, kRounds = 60;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        Buffer v = Pattern(100 + (t * 37 + i * 11) % 3000, static_cast<uint8_t>(t + i));
        auto put = conn.Put({{{key, v}}, nullptr});
        if (!put || (*put)[0] != StatusCode::kOk) ++failures;
        Buffer out(v.size());
        auto get = conn.Get({{key, 0, 0, out}});
        if (!get || (*get)[0].status != StatusCode::kOk || out != v) ++failures;
        auto ex = conn.Exists({key, "missing"});
        if (!ex || (*ex)[0].size != v.size() || (*ex)[1].status != StatusCode::kNotFound)
          ++failures;
        if (!conn.Ping()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
}

TEST(ConnectionTest, BatchLargerThanAFrameIsSplitIntoRequests) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  constexpr int kEntries = 20;
  auto values = std::make_shared<std::vector<Buffer>>();
  PutBatch batch;
  for (int i = 0; i < kEntries; ++i) values->push_back(Pattern(1 << 20, static_cast<uint8_t>(i)));
  for (int i = 0; i < kEntries; ++i) batch.entries.push_back({"big" + std::to_string(i), (*values)[i]});
  batch.owner = values;
  auto put = conn.Put(std::move(batch));
  ASSERT_TRUE(put);
  for (StatusCode s : *put) EXPECT_EQ(s, StatusCode::kOk);
  EXPECT_GE(server.write_frames, 2);

  // The read reply comes back in several frames (3 results each).
  std::vector<Buffer> outs(kEntries, Buffer(1 << 20));
  std::vector<GetEntry> gets;
  for (int i = 0; i < kEntries; ++i) gets.push_back({"big" + std::to_string(i), 0, 0, outs[i]});
  const int frames_before = server.read_reply_frames;
  auto get = conn.Get(std::move(gets));
  ASSERT_TRUE(get);
  EXPECT_GE(server.read_reply_frames - frames_before, 2);
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_EQ((*get)[i].status, StatusCode::kOk);
    EXPECT_EQ(outs[i], (*values)[i]) << i;
  }
}

TEST(ConnectionTest, ManyKeysReplySplitAcrossFrames) {
  FakeServerOptions so;
  so.reply_split = 7;
  FakeServer server(so);
  Connection conn = MustConnect(Options(server));
  std::vector<std::string> keys;
  PutBatch batch;
  std::vector<Buffer> vals;
  for (int i = 0; i < 500; ++i) vals.push_back(Pattern(16 + i, static_cast<uint8_t>(i)));
  for (int i = 0; i < 500; ++i) {
    keys.push_back("k" + std::to_string(i));
    batch.entries.push_back({keys.back(), vals[i]});
  }
  ASSERT_TRUE(conn.Put(std::move(batch)));
  auto ex = conn.Exists(keys);
  ASSERT_TRUE(ex);
  ASSERT_EQ(ex->size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ((*ex)[i].size, 16u + i);
}

TEST(ConnectionTest, TimeoutFailsTheRequestAndTheConnectionGoesOn) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  auto r = conn.Exists({"__noreply__"}, 200ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::timeout);
  EXPECT_TRUE(conn.is_open());
  EXPECT_TRUE(conn.Ping());
  Buffer v = Pattern(64, 3);
  auto put = conn.Put({{{"after", v}}, nullptr});
  ASSERT_TRUE(put);
  EXPECT_EQ((*put)[0], StatusCode::kOk);
}

TEST(ConnectionTest, ConnectionLossFailsEveryPendingRequest) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  constexpr int kPending = 50;
  std::vector<std::future<Result<std::vector<KeyInfo>>>> futures;
  for (int i = 0; i < kPending; ++i) {
    auto p = std::make_shared<std::promise<Result<std::vector<KeyInfo>>>>();
    futures.push_back(p->get_future());
    conn.AsyncExists({"__noreply__"}, 600s, [p](auto r) { p->set_value(std::move(r)); });
  }
  ASSERT_TRUE(conn.Ping());  // all 50 are at the server by now
  auto closer = conn.Exists({"__close__"}, 600s);
  ASSERT_FALSE(closer);
  EXPECT_EQ(closer.error(), errc::connection_lost);
  for (auto& f : futures) {
    auto r = f.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::connection_lost);
  }
  EXPECT_FALSE(conn.is_open());
  EXPECT_EQ(conn.Ping().error(), errc::connection_lost);
}

TEST(ConnectionTest, ServerClosingFailsBlockedCallers) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  std::vector<std::thread> threads;
  std::atomic<int> lost{0};
  std::atomic<int> started{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      ++started;
      auto r = conn.Exists({"__noreply__"}, 600s);
      if (!r && r.error() == errc::connection_lost) ++lost;
    });
  while (started < 4) std::this_thread::yield();
  ASSERT_TRUE(conn.Ping());
  // The four may or may not be at the server yet; either way they fail.
  server.CloseAll();
  for (auto& t : threads) t.join();
  EXPECT_EQ(lost, 4);
}

TEST(ConnectionTest, CloseFailsPendingWithClosed) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  conn.AsyncExists({"__noreply__"}, 600s, [p](auto r) {
    p->set_value(r ? Status{} : Status(r.error()));
  });
  conn.Close();
  EXPECT_EQ(f.get().error(), errc::closed);
  EXPECT_EQ(conn.Ping().error(), errc::closed);
}

TEST(ConnectionTest, AwaitableForms) {
  FakeServer server({});
  boost::asio::io_context ctx;
  bool done = false;
  const std::string address = server.address();
  boost::asio::co_spawn(
      ctx,
      [&]() -> boost::asio::awaitable<void> {
        ConnectionOptions o;
        o.address = address;
        auto conn = co_await co::Connect(o);
        EXPECT_TRUE(conn);
        if (!conn) co_return;
        EXPECT_TRUE(co_await co::Ping(*conn));
        Buffer v = Pattern(777, 5);
        PutBatch batch;  // (gcc 12 cannot take braced lists inside co_await)
        batch.entries.push_back({"co", v});
        auto put = co_await co::Put(*conn, std::move(batch));
        EXPECT_TRUE(put);
        Buffer out(777);
        std::vector<GetEntry> gets(1);
        gets[0].key = "co";
        gets[0].dest = out;
        auto get = co_await co::Get(*conn, std::move(gets));
        EXPECT_TRUE(get && (*get)[0].status == StatusCode::kOk);
        EXPECT_EQ(out, v);
        std::vector<std::string> keys(1, "co");
        auto ex = co_await co::Exists(*conn, keys);
        EXPECT_TRUE(ex && (*ex)[0].size == 777u);
        auto del = co_await co::Delete(*conn, keys);
        EXPECT_TRUE(del && (*del)[0] == StatusCode::kOk);
        std::vector<std::string> silent(1, "__noreply__");
        auto t = co_await co::Exists(*conn, silent, 100ms);
        EXPECT_EQ(t.error(), errc::timeout);
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();  // returns only when the coroutine is done: the requests hold work on ctx
  EXPECT_TRUE(done);
}

TEST(ConnectionTest, ThreadThatCallsOnceAndExitsLeavesNothingBehind) {
  FakeServer server({});
  ASSERT_EQ(IoThreads::LiveThreads(), 0u);
  const std::string address = server.address();
  std::thread([&] {
    ConnectionOptions o;
    o.address = address;
    auto conn = Connection::Connect(o);
    ASSERT_TRUE(conn);
    EXPECT_TRUE(conn->Ping());
  }).join();
  EXPECT_EQ(IoThreads::LiveThreads(), 0u);
  // And a fresh pool starts again for the next user.
  Connection conn = MustConnect(Options(server));
  EXPECT_EQ(IoThreads::LiveThreads(), 1u);
  EXPECT_TRUE(conn.Ping());
}

TEST(ConnectionTest, PoolIsSharedAndSized) {
  auto a = IoThreads::Acquire({.threads = 2});
  auto b = IoThreads::Acquire({.threads = 5});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->size(), 2u);
  EXPECT_EQ(IoThreads::LiveThreads(), 2u);
}

// ---- shm rail ----

TEST(ShmTest, RegionRoundTripOverUnixSocket) {
  FakeServerOptions so;
  so.unix_socket = true;
  FakeServer server(so);
  Connection conn = MustConnect(Options(server));
  EXPECT_TRUE(conn.is_unix_socket());
  EXPECT_TRUE(conn.attach_info().rails & proto::kRailShm);
  auto region = SharedRegion::Create(4 << 20);
  ASSERT_TRUE(region);
  auto r = *region;
  ASSERT_TRUE(conn.RegisterRegion(r));
  EXPECT_EQ(server.regions_mapped, 1);

  Buffer v1 = Pattern(100000, 1), v2 = Pattern(4096, 2);
  std::memcpy(r->data(), v1.data(), v1.size());
  std::memcpy(r->data() + 200000, v2.data(), v2.size());
  auto put = conn.PutShm({r, {{"s1", 0, v1.size()}, {"s2", 200000, v2.size()}}});
  ASSERT_TRUE(put);
  EXPECT_EQ(*put, (std::vector<StatusCode>{StatusCode::kOk, StatusCode::kOk}));
  EXPECT_EQ(server.Value("s1"), v1);

  auto get = conn.GetShm({r,
                          {{"s1", 0, 0, 1 << 20, 1 << 20},
                           {"s2", 96, 1000, 2 << 20, 4096},
                           {"s1", 0, 0, 3 << 20, 10},
                           {"none", 0, 0, 3 << 20, 10}}});
  ASSERT_TRUE(get);
  EXPECT_EQ((*get)[0].status, StatusCode::kOk);
  EXPECT_EQ((*get)[0].length, v1.size());
  EXPECT_EQ(0, std::memcmp(r->data() + (1 << 20), v1.data(), v1.size()));
  EXPECT_EQ((*get)[1].status, StatusCode::kOk);
  EXPECT_EQ((*get)[1].length, 1000u);
  EXPECT_EQ(0, std::memcmp(r->data() + (2 << 20), v2.data() + 96, 1000));
  EXPECT_EQ((*get)[2].status, StatusCode::kBufferTooSmall);
  EXPECT_EQ((*get)[3].status, StatusCode::kNotFound);

  // The same bytes over the inline path of the same connection.
  Buffer out(v1.size());
  auto inl = conn.Get({{"s1", 0, 0, out}});
  ASSERT_TRUE(inl);
  EXPECT_EQ(out, v1);

  ASSERT_TRUE(conn.ReleaseRegion(r));
  EXPECT_EQ(server.regions_mapped, 0);
  auto after = conn.PutShm({r, {{"s3", 0, 10}}});
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error(), errc::region_not_registered);
}

// A shm batch of more values than one request carries (about 2 MiB) goes
// as several requests, each hashed just before it is handed over, and
// every value lands whole with its status in the caller's order.
TEST(ShmTest, ALargeBatchGoesAsSeveralRequestsAndEveryValueLands) {
  FakeServerOptions so;
  so.unix_socket = true;
  FakeServer server(so);
  Connection conn = MustConnect(Options(server));
  auto r = MustRegister(conn, 8 << 20);
  ASSERT_TRUE(r);
  ShmPutBatch batch{r, {}};
  std::vector<Buffer> values;
  for (size_t i = 0; i < 7; ++i) {
    values.push_back(Pattern((1 << 20) - 1000 * i, static_cast<uint8_t>(i)));
    std::memcpy(r->data() + (i << 20), values.back().data(), values.back().size());
    batch.entries.push_back({"p" + std::to_string(i), i << 20, values.back().size()});
  }
  const int before = server.write_frames;
  auto put = conn.PutShm(std::move(batch));
  ASSERT_TRUE(put);
  EXPECT_EQ(*put, std::vector<StatusCode>(7, StatusCode::kOk));
  EXPECT_GE(server.write_frames - before, 3);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(server.Value("p" + std::to_string(i)), values[i]) << i;
}

// A byte damaged in the region after the server placed the value and took
// its checksums is caught by the client's check of the region.
TEST(ShmTest, AByteDamagedInTheRegionIsAChecksumMismatch) {
  for (bool page_sums : {false, true}) {
    SCOPED_TRACE(page_sums ? "per-4 KiB sums" : "one XXH3");
    FakeServerOptions so;
    so.unix_socket = true;
    so.page_sums = page_sums;
    so.flip_byte = 70000;
    FakeServer server(so);
    Connection conn = MustConnect(Options(server));
    auto r = MustRegister(conn, 1 << 20);
    ASSERT_TRUE(r);
    const Buffer v = Pattern(100000, 5);
    std::memcpy(r->data(), v.data(), v.size());
    auto put = conn.PutShm({r, {{"s", 0, v.size()}}});
    ASSERT_TRUE(put);
    EXPECT_EQ((*put)[0], StatusCode::kOk);
    EXPECT_EQ(server.Value("s"), v);  // piece sums checked by the server as it stored it
    auto get = conn.GetShm({r, {{"s", 0, 0, 1 << 19, 1 << 19}}});
    ASSERT_TRUE(get);
    EXPECT_EQ((*get)[0].status, StatusCode::kChecksumMismatch);
  }
}

// A value larger than a step, read by a client of a server that offers
// steps: announced kPlacedInSteps, then checked a step at a time as the
// ReadPlaced frames come. A damaged byte in a later step is still caught;
// a reply that ends before the last step fails the request.
FakeServerOptions StepsServer() {
  FakeServerOptions so;
  so.unix_socket = true;
  so.page_sums = true;
  so.features |= proto::kFeaturePlacedSteps;
  so.placed_step = 1 << 20;
  return so;
}

TEST(ShmTest, ALargeValueIsPlacedInStepsEachCheckedAsItComes) {
  FakeServer server(StepsServer());
  Connection conn = MustConnect(Options(server));
  auto r = MustRegister(conn, 12 << 20);
  ASSERT_TRUE(r);
  const Buffer big = Pattern((5 << 20) + 100, 7), small = Pattern(5000, 8);
  ASSERT_TRUE(conn.Put({{{"big", big}, {"small", small}}, nullptr}));
  auto get = conn.GetShm({r, {{"big", 0, 0, 0, 6 << 20}, {"small", 0, 0, 6 << 20, 1 << 20}}});
  ASSERT_TRUE(get);
  EXPECT_EQ(server.stepped_reads, 1);
  EXPECT_EQ(server.steps_sent, 6);  // 5 MiB + 100 bytes in steps of 1 MiB
  EXPECT_EQ((*get)[0].status, StatusCode::kOk);
  EXPECT_EQ((*get)[0].length, big.size());
  EXPECT_EQ(0, std::memcmp(r->data(), big.data(), big.size()));
  EXPECT_EQ((*get)[1].status, StatusCode::kOk);
  EXPECT_EQ(0, std::memcmp(r->data() + (6 << 20), small.data(), small.size()));
}

// `value` put through `server` as "big" and read back over shm into a
// fresh 8 MiB region, at its start.
struct ShmReadBack {
  std::shared_ptr<SharedRegion> region;
  Result<std::vector<GetResult>> got{errc::bad_argument};
};
ShmReadBack PutThenGetShm(FakeServer& server, const Buffer& value) {
  ShmReadBack out;
  Connection conn = MustConnect(Options(server));
  out.region = MustRegister(conn, 8 << 20);
  EXPECT_TRUE(out.region);
  EXPECT_TRUE(conn.Put({{{"big", value}}, nullptr}));
  if (out.region) out.got = conn.GetShm({out.region, {{"big", 0, 0, 0, 8 << 20}}});
  return out;
}

TEST(ShmTest, AByteDamagedInALaterStepIsAChecksumMismatch) {
  FakeServerOptions so = StepsServer();
  so.flip_byte = (3 << 20) + 5;
  FakeServer server(so);
  const ShmReadBack read = PutThenGetShm(server, Pattern(5 << 20, 9));
  ASSERT_TRUE(read.got);
  EXPECT_EQ(server.steps_sent, 5);
  EXPECT_EQ((*read.got)[0].status, StatusCode::kChecksumMismatch);
}

TEST(ShmTest, AReplyEndingBeforeTheLastStepFailsTheRequest) {
  FakeServerOptions so = StepsServer();
  so.drop_last_step = true;
  FakeServer server(so);
  const ShmReadBack read = PutThenGetShm(server, Pattern(3 << 20, 10));
  ASSERT_FALSE(read.got);
  EXPECT_EQ(read.got.error(), errc::bad_reply);
}

// A server that does not offer steps is never asked for them: the same
// read is placed whole.
TEST(ShmTest, StepsAreAskedForOnlyWhereOffered) {
  FakeServerOptions so = StepsServer();
  so.features &= ~proto::kFeaturePlacedSteps;
  FakeServer server(so);
  const Buffer big = Pattern(3 << 20, 11);
  const ShmReadBack read = PutThenGetShm(server, big);
  ASSERT_TRUE(read.got);
  EXPECT_EQ(server.stepped_reads, 0);
  EXPECT_EQ(server.steps_sent, 0);
  EXPECT_EQ((*read.got)[0].status, StatusCode::kOk);
  EXPECT_EQ(0, std::memcmp(read.region->data(), big.data(), big.size()));
}

TEST(ShmTest, UnregisteredRegionAndTcpAreRefused) {
  FakeServer tcp_server({});
  Connection tcp = MustConnect(Options(tcp_server));
  auto region = SharedRegion::Create(4096).value();
  EXPECT_EQ(tcp.RegisterRegion(region).error(), errc::shm_needs_unix_socket);

  FakeServerOptions so;
  so.unix_socket = true;
  FakeServer server(so);
  Connection conn = MustConnect(Options(server));
  EXPECT_EQ(conn.PutShm({region, {{"x", 0, 10}}}).error(), errc::region_not_registered);
  ASSERT_TRUE(conn.RegisterRegion(region));
  EXPECT_EQ(conn.PutShm({region, {{"x", 4000, 200}}}).error(), errc::region_out_of_bounds);
  EXPECT_EQ(conn.RegisterRegion(region).error(), make_status_error(StatusCode::kBadRegion));
}

TEST(ShmTest, ClosingTheConnectionReleasesServerRegions) {
  FakeServerOptions so;
  so.unix_socket = true;
  FakeServer server(so);
  auto region = SharedRegion::Create(1 << 20).value();
  {
    Connection conn = MustConnect(Options(server));
    ASSERT_TRUE(conn.RegisterRegion(region));
    EXPECT_EQ(server.regions_mapped, 1);
  }
  // The region outlives the connection on our side.
  region->data()[0] = std::byte{1};
}

// ---- open streams, List, Capacity, Rename ----

// Waits (without a time limit of its own: ctest's bounds a hang) until `pred`.
template <class Pred>
void WaitUntil(Pred pred) {
  while (!pred()) std::this_thread::sleep_for(1ms);
}

TEST(StreamTest, ChunksAreNumberedAndTheLastCarriesTheChecksum) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  const Buffer value = Pattern((9u << 20) + 12345, 3);
  auto w = conn.OpenStream("streamed", 2u << 20);
  ASSERT_TRUE(w) << w.error().message();
  // Odd-sized writes: chunks are cut at the window (2 MiB), not at writes.
  for (size_t at = 0; at < value.size();) {
    const size_t n = std::min<size_t>(777777, value.size() - at);
    ASSERT_TRUE((*w)->Write(value.data() + at, n));
    at += n;
  }
  EXPECT_EQ((*w)->written(), value.size());
  auto r = (*w)->Finish();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, StatusCode::kOk);
  EXPECT_EQ(server.Value("streamed"), value);
  const auto chunks = server.Chunks();
  ASSERT_EQ(chunks.size(), 5u);  // 4 x 2 MiB, then the rest
  uint64_t offset = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].seq, i);
    EXPECT_EQ(chunks[i].offset, offset);
    EXPECT_GT(chunks[i].size, 0u);
    EXPECT_LE(chunks[i].size, 2u << 20);
    EXPECT_EQ(chunks[i].last, i + 1 == chunks.size());
    EXPECT_EQ(chunks[i].checksum.has_value(), chunks[i].last);
    offset += chunks[i].size;
  }
  EXPECT_EQ(offset, value.size());
  EXPECT_EQ(chunks.back().checksum, Xxh3(value));
  EXPECT_EQ(server.open_streams, 0);
}

TEST(StreamTest, AValueOfExactlyOneChunkEndsWithANonEmptyLastChunk) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  const Buffer value = Pattern(1u << 20, 5);
  auto w = conn.OpenStream("exact", 1u << 20);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->Write(value.data(), value.size()));
  auto r = (*w)->Finish();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, StatusCode::kOk);
  const auto chunks = server.Chunks();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_TRUE(chunks[0].last);
  EXPECT_EQ(chunks[0].size, value.size());
  EXPECT_EQ(server.Value("exact"), value);
}

TEST(StreamTest, WriteBlocksWhileTheWindowIsFull) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  constexpr size_t kWindow = 1u << 20;
  constexpr size_t kTotal = 96u << 20;  // far more than the window and the socket buffers
  const Buffer piece = Pattern(256u << 10, 7);
  auto w = conn.OpenStream("windowed", kWindow, 60s);
  ASSERT_TRUE(w);
  server.stalled = true;  // the server stops reading: the socket fills, then the window
  std::atomic<uint64_t> max_queued{0};
  std::thread writer([&] {
    for (size_t at = 0; at < kTotal; at += piece.size()) {
      ASSERT_TRUE((*w)->Write(piece.data(), piece.size()));
      max_queued = std::max<uint64_t>(max_queued, (*w)->queued_bytes());
    }
  });
  WaitUntil([&] { return (*w)->waiting(); });
  // Blocked: far less than everything accepted, and no more than the window queued.
  EXPECT_LT((*w)->written(), kTotal);
  EXPECT_LE((*w)->queued_bytes(), kWindow);
  server.stalled = false;
  writer.join();
  EXPECT_LE(max_queued.load(), kWindow);
  auto r = (*w)->Finish();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, StatusCode::kOk);
  const auto v = server.Value("windowed");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->size(), kTotal);
}

TEST(StreamTest, AbortLeavesNothing) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  const Buffer value = Pattern(3u << 20, 9);
  {
    auto w = conn.OpenStream("aborted", 1u << 20);
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->Write(value.data(), value.size()));
    (*w)->Abort();
    EXPECT_FALSE((*w)->Write(value.data(), 1));  // final
  }
  {
    auto w = conn.OpenStream("dropped", 1u << 20);
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->Write(value.data(), value.size()));
  }  // destroyed unfinished
  // Frames are handled in order: once this is answered, so are the aborts.
  auto e = conn.Exists({"aborted", "dropped"});
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)[0].status, StatusCode::kNotFound);
  EXPECT_EQ((*e)[1].status, StatusCode::kNotFound);
  EXPECT_EQ(server.open_streams, 0);
  EXPECT_EQ(server.streams_discarded, 2);
  EXPECT_EQ(server.Keys(), 0u);
}

TEST(StreamTest, AnEmptyStreamFailsAndSendsNothing) {
  FakeServer server({});
  Connection conn = MustConnect(Options(server));
  auto w = conn.OpenStream("empty", 1u << 20);
  ASSERT_TRUE(w);
  auto r = (*w)->Finish();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errc::bad_argument);
  EXPECT_TRUE(conn.Ping());
  EXPECT_EQ(server.write_frames, 0);
  EXPECT_TRUE(server.Chunks().empty());
  EXPECT_FALSE(conn.OpenStream("", 1));
  EXPECT_FALSE(conn.OpenStream("k", 0));
}

TEST(StreamTest, AnEarlyRefusalIsTheStreamsAnswer) {
  FakeServerOptions so;
  so.open_stream_fail_after = 1u << 20;
  FakeServer server(so);
  Connection conn = MustConnect(Options(server));
  const Buffer piece = Pattern(512u << 10, 11);
  auto w = conn.OpenStream("full", 512u << 10);
  ASSERT_TRUE(w);
  Status failed;
  for (int i = 0; i < 16 && failed; ++i) failed = (*w)->Write(piece.data(), piece.size());
  if (failed) {
    auto r = (*w)->Finish();
    if (r) {
      EXPECT_EQ(*r, StatusCode::kNoSpace);
    } else {
      EXPECT_EQ(r.error(), make_status_error(StatusCode::kNoSpace));
    }
  } else {
    EXPECT_EQ(failed.error(), make_status_error(StatusCode::kNoSpace));
  }
  EXPECT_FALSE(server.Value("full"));
  EXPECT_TRUE(conn.Ping());  // the connection goes on
}

TEST(ListTest, PagesCapacityAndRenameOnOneConnection) {
  FakeServerOptions so;
  so.list_page = 2;
  FakeServer server(so);
  for (const char* k : {"a/1", "a/2", "a/3", "b/1"}) server.Put(k, "vv");
  Connection conn = MustConnect(Options(server));
  auto l = conn.List("a/", "", 10);
  ASSERT_TRUE(l) << l.error().message();
  ASSERT_EQ(l->entries.size(), 2u);  // the server's page
  EXPECT_EQ(l->entries[0].key, "a/1");
  EXPECT_EQ(l->entries[1].key, "a/2");
  EXPECT_EQ(l->entries[1].size, 2u);
  EXPECT_GT(l->entries[1].version, 0u);
  EXPECT_EQ(l->cursor, "a/2");
  l = conn.List("a/", l->cursor, 10);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->entries.size(), 1u);
  EXPECT_EQ(l->entries[0].key, "a/3");
  EXPECT_EQ(l->cursor, "");
  EXPECT_FALSE(conn.List("a/", "", 0));

  auto c = conn.Capacity();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->keys, 4u);
  EXPECT_EQ(c->used_bytes, 8u);
  EXPECT_EQ(c->total_bytes, so.capacity_total);

  auto r = conn.Rename("a/1", "z/1");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, StatusCode::kOk);
  r = conn.Rename("a/1", "z/1");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, StatusCode::kNotFound);
  EXPECT_TRUE(server.Value("z/1"));
}

TEST(ListTest, UnofferedMessagesAreUnsupported) {
  FakeServerOptions so;
  so.features = 0;
  FakeServer server(so);
  Connection conn = MustConnect(Options(server));
  EXPECT_EQ(conn.attach_info().features, 0u);
  auto l = conn.List("", "", 10);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error(), make_status_error(StatusCode::kUnsupported));
  EXPECT_FALSE(conn.Capacity());
}


// ---- the rdma address exchange at Attach (what verbs needs) ----

// A fabric that records the exchange: OfferPeer hands out peer 7 and
// "offer-7"; CompletePeer and RemovePeer are recorded (RemovePeer with the
// thread it ran on: the fabric's loop, I/O thread 0).
class ExchangeFabric final : public rdma::Fabric {
 public:
  const std::string& provider_name() const override { return name_; }
  const std::string& address() const override { return address_; }
  Result<rdma::PeerId> InsertPeer(std::string_view) override { return rdma::PeerId{1}; }
  Result<PeerOffer> OfferPeer() override { return PeerOffer{7, "offer-7"}; }
  Status CompletePeer(rdma::PeerId peer, std::string_view answer) override {
    std::lock_guard lock(mu);
    completed.emplace_back(peer, std::string(answer));
    if (refuse_answer) return rdma::errc::remote_access;
    return {};
  }
  rdma::Awaitable<Status> RemovePeer(rdma::PeerId peer) override {
    {
      std::lock_guard lock(mu);
      removed.push_back(peer);
    }
    removed_promise.set_value();
    co_return Status{};
  }
  Result<std::unique_ptr<rdma::MemoryRegion>> Register(const rdma::MemoryDescriptor&, uint32_t,
                                                       std::string*) override {
    return rdma::errc::bad_argument;
  }
  bool registers_device_memory() const override { return false; }
  rdma::Awaitable<Status> Write(const rdma::MemoryRegion&, const void*, size_t, rdma::PeerId,
                          rdma::RemoteBuffer) override {
    co_return rdma::errc::bad_argument;
  }
  rdma::Awaitable<Status> Read(const rdma::MemoryRegion&, void*, size_t, rdma::PeerId,
                         rdma::RemoteBuffer) override {
    co_return rdma::errc::bad_argument;
  }
  rdma::Awaitable<void> Stop() override { co_return; }
  rdma::FabricStats stats() const override { return {}; }

  bool refuse_answer = false;
  std::mutex mu;
  std::vector<std::pair<rdma::PeerId, std::string>> completed;
  std::vector<rdma::PeerId> removed;
  std::promise<void> removed_promise;

 private:
  const std::string name_ = "test:exchange";
  const std::string address_ = "unused";
};

TEST(ConnectionRdmaExchange, OffersAPeerCompletesItWithTheAnswerAndRemovesItAtTheEnd) {
  FakeServerOptions so;
  so.rdma_answer = "test:exchange|answer-9";
  FakeServer server(so);
  auto fabric = std::make_shared<ExchangeFabric>();
  auto removed = fabric->removed_promise.get_future();
  ConnectionOptions o = Options(server);
  o.rdma_fabric = fabric;
  {
    Connection conn = MustConnect(o);
    EXPECT_EQ(server.rdma_offered(), "test:exchange|offer-7");
    EXPECT_TRUE(conn.attach_info().rails & proto::kRailRdma);
    std::lock_guard lock(fabric->mu);
    ASSERT_EQ(fabric->completed.size(), 1u);
    EXPECT_EQ(fabric->completed[0].first, 7u);
    EXPECT_EQ(fabric->completed[0].second, "answer-9");  // past "<provider>|"
    EXPECT_TRUE(fabric->removed.empty());
  }
  ASSERT_EQ(removed.wait_for(10s), std::future_status::ready);
  std::lock_guard lock(fabric->mu);
  EXPECT_EQ(fabric->removed, std::vector<rdma::PeerId>{7});
}

TEST(ConnectionRdmaExchange, AnAnswerThatCannotBeConnectedLeavesTheSessionOnTcp) {
  FakeServerOptions so;
  so.rdma_answer = "test:exchange|bad";
  FakeServer server(so);
  auto fabric = std::make_shared<ExchangeFabric>();
  fabric->refuse_answer = true;
  auto removed = fabric->removed_promise.get_future();
  ConnectionOptions o = Options(server);
  o.rdma_fabric = fabric;
  {
    Connection conn = MustConnect(o);
    EXPECT_FALSE(conn.attach_info().rails & proto::kRailRdma);  // no rdma entries will be sent
    EXPECT_TRUE(conn.Ping());
  }
  ASSERT_EQ(removed.wait_for(10s), std::future_status::ready);  // the offered peer still goes
}

TEST(ConnectionRdmaExchange, AServerWithoutTheRailIsNotAskedToComplete) {
  FakeServer server({});  // ignores the offer
  auto fabric = std::make_shared<ExchangeFabric>();
  auto removed = fabric->removed_promise.get_future();
  ConnectionOptions o = Options(server);
  o.rdma_fabric = fabric;
  {
    Connection conn = MustConnect(o);
    EXPECT_EQ(server.rdma_offered(), "test:exchange|offer-7");
    EXPECT_FALSE(conn.attach_info().rails & proto::kRailRdma);
    std::lock_guard lock(fabric->mu);
    EXPECT_TRUE(fabric->completed.empty());
  }
  ASSERT_EQ(removed.wait_for(10s), std::future_status::ready);
}

}  // namespace
}  // namespace memkv::client
