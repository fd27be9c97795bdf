// The engine without a real server: routing, options, the memory registry,
// and fallback and reconnection against fake servers
// (tests/client/fake_server.h) and closed ports.

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "client/engine_awaitable.h"
#include "client/engine_internal.h"
#include "client/io_threads.h"
#include "client/memory_registry.h"
#include "common/hrw.h"
#include "fake_server.h"
#include "memkv/engine.h"

namespace memkv {
namespace {

using client::testing::FakeServer;
using client::testing::FakeServerOptions;
using namespace std::chrono_literals;

// A loopback port with nothing listening (connections are refused).
std::string ClosedPort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

EngineOptions Options(std::vector<std::string> servers) {
  EngineOptions o;
  o.servers = std::move(servers);
  o.timeout = 5s;
  o.connect_timeout = 2s;
  return o;
}

Engine MustCreate(EngineOptions o) {
  auto e = Engine::Create(std::move(o));
  EXPECT_TRUE(e) << e.error().message;
  return *e;
}

// ---- routing ----

TEST(EngineRouting, MatchesRendezvousAndIsStable) {
  std::vector<std::string> servers = {"10.0.0.1:9900", "10.0.0.2:9900", "10.0.0.3:9900"};
  Engine e = MustCreate(Options(servers));  // no connection until a call
  Rendezvous hrw(servers);
  std::map<size_t, int> per_server;
  for (int i = 0; i < 3000; ++i) {
    const std::string key = "block/" + std::to_string(i);
    const size_t s = e.RouteKey(key);
    EXPECT_EQ(s, hrw.PickKey(key));
    EXPECT_EQ(e.RankKey(key).front(), s);
    ++per_server[s];
  }
  ASSERT_EQ(per_server.size(), 3u);
  for (auto& [s, n] : per_server) EXPECT_GT(n, 700) << "server " << s;
  for (uint64_t b = 0; b < 100; ++b) EXPECT_EQ(e.RouteBlock(b), hrw.Pick(HrwBlockHash(b)));
}

TEST(EngineRouting, RemovingAServerMovesOnlyItsKeys) {
  std::vector<std::string> four = {"a:1", "b:1", "c:1", "d:1"};
  std::vector<std::string> three = {"a:1", "b:1", "d:1"};  // c removed
  Engine e4 = MustCreate(Options(four));
  Engine e3 = MustCreate(Options(three));
  int moved = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::string before = e4.server(e4.RouteKey(key));
    const std::string after = e3.server(e3.RouteKey(key));
    if (before != "c:1") {
      EXPECT_EQ(before, after) << key;
    } else {
      ++moved;
      // It moves to its second choice.
      EXPECT_EQ(after, e4.server(e4.RankKey(key)[1])) << key;
    }
  }
  EXPECT_GT(moved, 0);
}

// ---- options ----

std::map<std::string, std::string>* g_env = nullptr;
const char* FakeGetenv(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

TEST(EngineOptionsTest, YamlFields) {
  auto o = EngineOptions::FromYaml(R"(
servers: [ "10.0.0.1:9900", "10.0.0.2:9900" ]
auth_key: )" + std::string(64, 'a') +
                                   R"(
transport: tcp
timeout: 2s
connect_timeout: 250ms
io_threads: 3
immutable_keys: true
)");
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->servers, (std::vector<std::string>{"10.0.0.1:9900", "10.0.0.2:9900"}));
  EXPECT_EQ(o->auth_key, std::string(64, 'a'));
  EXPECT_EQ(o->transport, Transport::kTcp);
  EXPECT_EQ(o->timeout, 2000ms);
  EXPECT_EQ(o->connect_timeout, 250ms);
  EXPECT_EQ(o->io_threads, 3u);
  EXPECT_TRUE(o->immutable_keys);
  EXPECT_TRUE(o->Validate());

  auto s = EngineOptions::FromYaml("servers: a:1, b:2\ntimeout: 1500\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->servers, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(s->timeout, 1500ms);
}

TEST(EngineOptionsTest, ErrorsNameTheField) {
  auto unknown = EngineOptions::FromYaml("servers: [a:1]\nretries: 3\n", "client.yaml");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("client.yaml: retries: unknown field"), std::string::npos)
      << unknown.error().message;
  auto transport = EngineOptions::FromYaml("transport: carrier-pigeon\n");
  ASSERT_FALSE(transport);
  EXPECT_NE(transport.error().message.find("transport"), std::string::npos);
  auto timeout = EngineOptions::FromYaml("timeout: soon\n");
  ASSERT_FALSE(timeout);
  EXPECT_NE(timeout.error().message.find("timeout"), std::string::npos);
  auto threads = EngineOptions::FromYaml("io_threads: 0\n");
  ASSERT_FALSE(threads);
  EXPECT_NE(threads.error().message.find("io_threads"), std::string::npos);
  EXPECT_FALSE(EngineOptions::FromYaml("servers: [a:1\n"));  // not YAML

  EngineOptions o = Options({"a:1"});
  o.auth_key = "abc";
  EXPECT_NE(o.Validate().message.find("auth_key"), std::string::npos);
  o = Options({});
  EXPECT_NE(o.Validate().message.find("servers"), std::string::npos);
  o = Options({"nohostport"});
  EXPECT_NE(o.Validate().message.find("servers[0]"), std::string::npos);
}

TEST(EngineOptionsTest, RdmaIsRefusedWithAClearError) {
  EngineOptions o = Options({"a:1"});
  o.transport = Transport::kRdma;
  auto e = Engine::Create(o);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Code::kUnsupported);
  EXPECT_NE(e.error().message.find("rdma"), std::string::npos);
}

TEST(EngineOptionsTest, EnvironmentOverridesTheConfigFile) {
  char path[] = "/tmp/memkv_engine_options_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "servers: [file:1]\ntransport: shm\nimmutable_keys: true\ntimeout: 3s\n";
  std::map<std::string, std::string> env = {{"MEMKV_CONFIG", path}};
  g_env = &env;
  auto a = EngineOptions::FromEnvironment(&FakeGetenv);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->servers, std::vector<std::string>{"file:1"});
  EXPECT_EQ(a->transport, Transport::kShm);
  EXPECT_TRUE(a->immutable_keys);
  EXPECT_EQ(a->timeout, 3000ms);

  env["MEMKV_SERVERS"] = "env:1, env:2";
  env["MEMKV_TRANSPORT"] = "tcp";
  env["MEMKV_AUTH_KEY"] = std::string(64, 'b');
  auto b = EngineOptions::FromEnvironment(&FakeGetenv);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->servers, (std::vector<std::string>{"env:1", "env:2"}));
  EXPECT_EQ(b->transport, Transport::kTcp);
  EXPECT_EQ(b->auth_key, std::string(64, 'b'));
  EXPECT_TRUE(b->immutable_keys);  // from the file still

  env["MEMKV_TRANSPORT"] = "udp";
  auto c = EngineOptions::FromEnvironment(&FakeGetenv);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("MEMKV_TRANSPORT"), std::string::npos);
  env["MEMKV_TRANSPORT"] = "rdma";
  auto d = EngineOptions::FromEnvironment(&FakeGetenv);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, Code::kUnsupported);
  env.erase("MEMKV_TRANSPORT");
  env["MEMKV_CONFIG"] = "/nonexistent/memkv.yaml";
  auto f = EngineOptions::FromEnvironment(&FakeGetenv);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("MEMKV_CONFIG"), std::string::npos);
  g_env = nullptr;
  std::remove(path);
}

TEST(EngineOptionsTest, BackoffDoublesUpToTheCap) {
  EXPECT_EQ(client::BackoffAfter(1, 100ms, 1000ms), 100ms);
  EXPECT_EQ(client::BackoffAfter(2, 100ms, 1000ms), 200ms);
  EXPECT_EQ(client::BackoffAfter(4, 100ms, 1000ms), 800ms);
  EXPECT_EQ(client::BackoffAfter(5, 100ms, 1000ms), 1000ms);
  EXPECT_EQ(client::BackoffAfter(60, 100ms, 1000ms), 1000ms);
}

// ---- memory registry ----

TEST(MemoryRegistryTest, ReRegistrationIsANoOp) {
  client::MemoryRegistry reg([](void*, size_t) -> Result<std::shared_ptr<const void>> {
    return std::shared_ptr<const void>();
  });
  std::vector<std::byte> mem(1 << 20);
  auto a = reg.Register(mem.data(), mem.size());
  ASSERT_TRUE(a);
  auto b = reg.Register(mem.data(), mem.size());
  auto inner = reg.Register(mem.data() + 4096, 8192);
  ASSERT_TRUE(b && inner);
  EXPECT_EQ((*a)->id, (*b)->id);
  EXPECT_EQ((*a)->id, (*inner)->id);
  EXPECT_EQ(reg.prepared_count(), 1u);
  EXPECT_EQ(reg.Find(mem.data() + 100, 10), *a);
  EXPECT_EQ(reg.Find(mem.data() + mem.size() - 1, 2), nullptr);  // runs past the end
  EXPECT_TRUE(reg.Unregister((*a)->id));
  EXPECT_EQ(reg.Find(mem.data(), 1), nullptr);
  EXPECT_FALSE(reg.Unregister((*a)->id));
  EXPECT_FALSE(reg.Register(nullptr, 10));
}

TEST(MemoryRegistryTest, ConcurrentFirstRegistrationsWorkOutsideTheLock) {
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> in_prepare{0};
  client::MemoryRegistry reg([&](void*, size_t n) -> Result<std::shared_ptr<const void>> {
    if (n == 4096 * 7) {  // the slow one
      ++in_prepare;
      gate.wait();
    }
    return std::shared_ptr<const void>();
  });
  std::vector<std::byte> mem(1 << 20);
  auto known = reg.Register(mem.data(), 4096);
  ASSERT_TRUE(known);
  std::thread slow([&] { EXPECT_TRUE(reg.Register(mem.data() + 65536, 4096 * 7)); });
  while (in_prepare.load() == 0) std::this_thread::yield();
  // While one registration does its slow work, lookups, re-registrations
  // and other first registrations go on (they would hang if it held the lock).
  EXPECT_EQ(reg.Find(mem.data(), 10), *known);
  EXPECT_TRUE(reg.Register(mem.data(), 4096));
  EXPECT_TRUE(reg.Register(mem.data() + 8192, 4096));
  release.set_value();
  slow.join();
  EXPECT_EQ(reg.size(), 3u);
}

TEST(MemoryRegistryTest, RacingRegistrationsOfOneRangeKeepOne) {
  std::atomic<int> prepares{0};
  client::MemoryRegistry reg([&](void*, size_t) -> Result<std::shared_ptr<const void>> {
    ++prepares;
    std::this_thread::sleep_for(1ms);
    return std::shared_ptr<const void>();
  });
  std::vector<std::byte> mem(1 << 16);
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<uint64_t> ids;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto r = reg.Register(mem.data(), mem.size());
        ASSERT_TRUE(r);
        std::lock_guard lock(mu);
        ids.insert((*r)->id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(reg.size(), 1u);
  EXPECT_GE(prepares.load(), 1);
}

// ---- against fake servers ----

std::vector<std::byte> Value(const std::string& key, size_t n) {
  std::vector<std::byte> v(n);
  uint64_t x = HrwKeyHash(key);
  for (auto& b : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    b = static_cast<std::byte>(x >> 56);
  }
  return v;
}

TEST(EngineFake, PutGetExistsDeleteAcrossServers) {
  FakeServer a({}), b({});
  Engine e = MustCreate(Options({a.address(), b.address()}));
  std::vector<std::string> keys;
  std::vector<std::vector<std::byte>> values;
  for (int i = 0; i < 200; ++i) {
    keys.push_back("key/" + std::to_string(i));
    values.push_back(Value(keys.back(), 1 + i * 37));
  }
  std::vector<PutEntry> puts;
  for (size_t i = 0; i < keys.size(); ++i)
    puts.push_back({keys[i], values[i].data(), values[i].size()});
  auto p = e.BatchPut(puts);
  ASSERT_TRUE(p.ok()) << p.outcome.message << " failed " << p.failed();
  // Each key is on the server it routes to.
  for (size_t i = 0; i < keys.size(); ++i) {
    FakeServer& home = e.RouteKey(keys[i]) == 0 ? a : b;
    FakeServer& other = e.RouteKey(keys[i]) == 0 ? b : a;
    EXPECT_TRUE(home.Value(keys[i]));
    EXPECT_FALSE(other.Value(keys[i]));
  }
  std::vector<std::vector<std::byte>> out(keys.size());
  std::vector<GetEntry> gets;
  for (size_t i = 0; i < keys.size(); ++i) {
    out[i].resize(values[i].size() + 5);
    gets.push_back({keys[i], out[i].data(), out[i].size()});
  }
  auto g = e.BatchGet(gets);
  ASSERT_TRUE(g.ok()) << g.outcome.message;
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(g.entries[i].length, values[i].size());
    EXPECT_EQ(0, std::memcmp(out[i].data(), values[i].data(), values[i].size())) << keys[i];
  }
  // A byte range.
  std::byte part[4];
  GetEntry range{keys[50], part, sizeof part, 10, 4};
  auto r = e.BatchGet({&range, 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(0, std::memcmp(part, values[50].data() + 10, 4));

  std::vector<std::string_view> names = {keys[0], keys[1], "missing"};
  auto x = e.Exists(names);
  EXPECT_EQ(x.entries[0].status, Code::kOk);
  EXPECT_EQ(x.entries[0].size, values[0].size());
  EXPECT_EQ(x.entries[2].status, Code::kNotFound);
  auto d = e.Delete(names);
  EXPECT_EQ(d.entries[0], Code::kOk);
  EXPECT_EQ(e.Exists(names).entries[0].status, Code::kNotFound);

  // Refused up front, naming the entry.
  PutEntry bad{"", values[0].data(), 1};
  auto refused = e.BatchPut({&bad, 1});
  EXPECT_EQ(refused.outcome.code, Code::kInvalidArgument);
  EXPECT_NE(refused.outcome.message.find("entries[0].key"), std::string::npos);
}

TEST(EngineFake, XferForServerSkipsRouting) {
  FakeServer a({}), b({});
  Engine e = MustCreate(Options({a.address(), b.address()}));
  std::string v = "value-bytes";
  std::vector<XferEntry> put = {{"x1", v.data(), v.size()}, {"x2", v.data(), v.size()}};
  auto p = e.BatchXferForServer(1, XferOp::kPut, put);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.entries[0].length, v.size());
  EXPECT_TRUE(b.Value("x1") && b.Value("x2"));
  EXPECT_FALSE(a.Value("x1") || a.Value("x2"));
  char buf[32] = {};
  std::vector<XferEntry> get = {{"x1", buf, sizeof buf}};
  auto g = e.BatchXferForServer(1, XferOp::kGet, get);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(std::string(buf, g.entries[0].length), v);
  EXPECT_EQ(e.BatchXferForServer(7, XferOp::kGet, get).outcome.code, Code::kInvalidArgument);
}

TEST(EngineFake, DownServerFailsFastAndBacksOff) {
  FakeServer a({});
  const std::string dead = ClosedPort();
  EngineOptions o = Options({a.address(), dead});
  o.reconnect_backoff = 60s;
  o.max_reconnect_backoff = 60s;
  Engine e = MustCreate(o);
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 20; ++i) keys.push_back("k" + std::to_string(i));
  std::string v = "v";
  std::vector<PutEntry> puts;
  for (auto& k : keys) puts.push_back({k, v.data(), v.size()});
  auto p = e.BatchPut(puts);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(p.entries[i], e.RouteKey(keys[i]) == 0 ? Code::kOk : Code::kUnavailable) << keys[i];
  }
  auto s = e.Servers();
  EXPECT_TRUE(s[0].connected);
  EXPECT_FALSE(s[1].connected);
  EXPECT_TRUE(s[1].backing_off);
  // Within the backoff its keys fail at once, without a connect.
  auto again = e.BatchPut(puts);
  for (size_t i = 0; i < keys.size(); ++i)
    if (e.RouteKey(keys[i]) == 1) {
      EXPECT_EQ(again.entries[i], Code::kUnavailable);
    }
}

TEST(EngineFake, ImmutableKeysFallBackAlongTheRanking) {
  FakeServer a({}), b({});
  const std::string dead = ClosedPort();
  EngineOptions o = Options({a.address(), b.address(), dead});
  o.immutable_keys = true;
  Engine e = MustCreate(o);
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) keys.push_back("imm/" + std::to_string(i));
  std::vector<std::vector<std::byte>> values;
  std::vector<PutEntry> puts;
  for (auto& k : keys) values.push_back(Value(k, 100));
  for (size_t i = 0; i < keys.size(); ++i)
    puts.push_back({keys[i], values[i].data(), values[i].size()});
  auto p = e.BatchPut(puts);
  ASSERT_TRUE(p.ok()) << p.failed();
  int moved = 0;
  for (auto& k : keys) {
    const auto rank = e.RankKey(k);
    if (rank[0] != 2) continue;
    ++moved;
    FakeServer& next = rank[1] == 0 ? a : b;
    EXPECT_TRUE(next.Value(k)) << k << " did not land on its second server";
  }
  EXPECT_GT(moved, 0);
  // Reads find them there too.
  std::vector<std::vector<std::byte>> out(keys.size(), std::vector<std::byte>(100));
  std::vector<GetEntry> gets;
  for (size_t i = 0; i < keys.size(); ++i) gets.push_back({keys[i], out[i].data(), 100});
  auto g = e.BatchGet(gets);
  ASSERT_TRUE(g.ok()) << g.failed();
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(out[i], values[i]);
}

TEST(EngineFake, ReconnectsAfterTheConnectionBreaks) {
  FakeServer a({});
  Engine e = MustCreate(Options({a.address()}));
  std::string v = "abc";
  PutEntry put{"key", v.data(), v.size()};
  ASSERT_TRUE(e.BatchPut({&put, 1}).ok());
  a.CloseAll();
  // The broken connection is noticed and replaced; a call may fail once.
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    ok = e.BatchPut({&put, 1}).ok();
    if (!ok) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(ok);
  EXPECT_GE(a.attaches.load(), 2);
}

TEST(EngineFake, SharedMemoryMovesOverShm) {
  FakeServerOptions so;
  so.unix_socket = true;
  FakeServer a(so);
  Engine e = MustCreate(Options({a.address()}));
  auto buf = e.AllocateShared(1 << 20);
  ASSERT_TRUE(buf) << buf.error().message;
  auto* p = static_cast<std::byte*>(buf->data());
  std::vector<std::byte> v = Value("shm-key", 5000);
  std::memcpy(p, v.data(), v.size());
  PutEntry put{"shm-key", p, v.size()};
  ASSERT_TRUE(e.BatchPut({&put, 1}).ok());
  EXPECT_GE(a.regions_mapped.load(), 1);
  auto stored = a.Value("shm-key");
  ASSERT_TRUE(stored);
  EXPECT_TRUE(std::equal(stored->begin(), stored->end(), v.begin(), v.end()));
  GetEntry get{"shm-key", p + 65536, 10000};
  auto g = e.BatchGet({&get, 1});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g.entries[0].length, v.size());
  EXPECT_EQ(0, std::memcmp(p + 65536, v.data(), v.size()));
  EXPECT_TRUE(e.Servers()[0].shm);
}

TEST(EngineFake, SharedMemoryWithoutAShmRail) {
  FakeServer a({});  // TCP only: its Attach reply names no Unix socket
  Engine e = MustCreate(Options({a.address()}));
  auto buf = e.AllocateShared(1 << 16);
  ASSERT_TRUE(buf);
  auto* p = static_cast<std::byte*>(buf->data());
  std::vector<std::byte> v = Value("tcp-shared", 3000);
  std::memcpy(p, v.data(), v.size());
  PutEntry put{"tcp-shared", p, v.size()};
  // auto: the bytes move inline over tcp.
  ASSERT_TRUE(e.BatchPut({&put, 1}).ok());
  GetEntry get{"tcp-shared", p + 8192, 4096};
  auto g = e.BatchGet({&get, 1});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(0, std::memcmp(p + 8192, v.data(), v.size()));
  EXPECT_FALSE(e.Servers()[0].shm);
  EXPECT_EQ(a.regions_mapped.load(), 0);

  // shm: shared memory cannot move, and says so per entry.
  EngineOptions o = Options({a.address()});
  o.transport = Transport::kShm;
  Engine strict = MustCreate(o);
  auto sb = strict.AllocateShared(4096);
  ASSERT_TRUE(sb);
  PutEntry sput{"strict", sb->data(), 100};
  EXPECT_EQ(strict.BatchPut({&sput, 1}).entries[0], Code::kUnavailable);
}

TEST(EngineFake, RegisteredMemoryIsSentInPlace) {
  FakeServer a({});
  Engine e = MustCreate(Options({a.address()}));
  std::vector<std::byte> mem = Value("reg", 1 << 16);
  auto h = e.RegisterMemory(mem.data(), mem.size());
  ASSERT_TRUE(h);
  auto again = e.RegisterMemory(mem.data() + 10, 100);
  ASSERT_TRUE(again);
  EXPECT_EQ(h->id(), again->id());
  PutEntry put{"reg", mem.data() + 1000, 3000};
  ASSERT_TRUE(e.BatchPut({&put, 1}).ok());
  auto stored = a.Value("reg");
  ASSERT_TRUE(stored);
  EXPECT_EQ(0, std::memcmp(stored->data(), mem.data() + 1000, 3000));
  e.UnregisterMemory(*h);
}

TEST(EngineFake, CallbackAndAwaitableForms) {
  FakeServer a({});
  Engine e = MustCreate(Options({a.address()}));
  std::string v = "hello";
  PutEntry put{"cb", v.data(), v.size()};
  std::promise<PutResults> done;
  e.AsyncBatchPut({&put, 1}, [&](PutResults r) { done.set_value(std::move(r)); });
  ASSERT_TRUE(done.get_future().get().ok());

  boost::asio::io_context ctx;
  bool finished = false;
  boost::asio::co_spawn(
      ctx,
      [&]() -> boost::asio::awaitable<void> {
        char buf[16] = {};
        GetEntry get{"cb", buf, sizeof buf};
        auto g = co_await co::BatchGet(e, {&get, 1});
        EXPECT_TRUE(g.ok());
        EXPECT_EQ(std::string(buf, g.entries[0].length), v);
        std::string_view key = "cb";
        auto x = co_await co::Exists(e, {&key, 1});
        EXPECT_EQ(x.entries[0].size, v.size());
        finished = true;
      },
      boost::asio::detached);
  ctx.run();
  EXPECT_TRUE(finished);
}

TEST(EngineFake, ThreadThatCallsOnceAndExitsLeavesNothingBehind) {
  FakeServer a({});
  ASSERT_EQ(client::IoThreads::LiveThreads(), 0u);
  for (int i = 0; i < 20; ++i) {
    std::thread([&] {
      Engine e = MustCreate(Options({a.address()}));
      std::string v = "x";
      PutEntry put{"once", v.data(), v.size()};
      EXPECT_TRUE(e.BatchPut({&put, 1}).ok());
    }).join();
    EXPECT_EQ(client::IoThreads::LiveThreads(), 0u);
    EXPECT_EQ(client::LiveServerLinks(), 0u);
  }
}

TEST(EngineFake, EnginesShareOneConnectionPerServer) {
  FakeServer a({});
  Engine e1 = MustCreate(Options({a.address()}));
  Engine e2 = MustCreate(Options({a.address()}));
  std::string v = "x";
  PutEntry put{"shared", v.data(), v.size()};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] { EXPECT_TRUE((t % 2 ? e1 : e2).BatchPut({&put, 1}).ok()); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(a.attaches.load(), 1);
  EXPECT_EQ(client::LiveServerLinks(), 1u);
}

}  // namespace
}  // namespace memkv
