// The engine without a real server: routing, options, the memory registry,
// and fallback and reconnection against fake servers
// (tests/client/fake_server.h) and closed ports.

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
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
#include "client/flat_yaml.h"
#include "client/engine_internal.h"
#include "client/io_threads.h"
#include "client/memory_registry.h"
#include "common/hrw.h"
#include "../common/fake_cuda.h"
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

// The client config's YAML subset reads as YAML reads it (flat_yaml.h).
TEST(FlatYamlTest, ReadsTheSubsetAsYamlDoes) {
  auto doc = client::ParseFlatYaml(R"(---
# a comment
servers:
  - "10.0.0.1:9900"   # quoted, with a comment
  - 10.0.0.2:9900
"auth_key": 'it''s # not a comment'
transport:   tcp
flow: [ a:1, "b, c", 'd' , ]
empty: []
nothing:
tilde: ~
escaped: "tab\there \u00e9\x41"
list_at_same_indent:
- x
- y
...
# only comments after the end
)");
  ASSERT_TRUE(doc) << doc.error().message;
  using K = client::FlatYamlValue::Kind;
  std::map<std::string, client::FlatYamlValue> by;
  for (auto& v : *doc) by[v.name] = v;
  EXPECT_EQ(doc->size(), 9u);
  EXPECT_EQ(by["servers"].kind, K::kList);
  EXPECT_EQ(by["servers"].list, (std::vector<std::string>{"10.0.0.1:9900", "10.0.0.2:9900"}));
  EXPECT_EQ(by["servers"].line, 3);
  EXPECT_EQ(by["auth_key"].scalar, "it's # not a comment");
  EXPECT_EQ(by["transport"].scalar, "tcp");
  EXPECT_EQ(by["flow"].list, (std::vector<std::string>{"a:1", "b, c", "d"}));
  EXPECT_EQ(by["empty"].kind, K::kList);
  EXPECT_TRUE(by["empty"].list.empty());
  EXPECT_EQ(by["nothing"].kind, K::kNull);
  EXPECT_EQ(by["tilde"].kind, K::kNull);
  EXPECT_EQ(by["escaped"].scalar, "tab\there \xc3\xa9" "A");
  EXPECT_EQ(by["list_at_same_indent"].list, (std::vector<std::string>{"x", "y"}));

  auto blank = client::ParseFlatYaml("\n# only a comment\n");
  ASSERT_TRUE(blank);
  EXPECT_TRUE(blank->empty());
}

TEST(FlatYamlTest, RefusesWhatItDoesNotReadWithTheLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"a: 1\nb:\n  c: 2\n", "line 3: unexpected indentation"},
      {"a: 1\n  b: 2\n", "line 2: unexpected indentation"},
      {"a: b: c\n", "line 1: nested mappings"},
      {"a: {b: 1}\n", "line 1: nested collections"},
      {"a: [1, [2]]\n", "line 1: nested collections"},
      {"a: [1, 2\n", "line 1: a [ list must close"},
      {"a: \"open\n", "line 1: a double-quoted value is not closed"},
      {"a: 1\na: 2\n", "line 2: 'a' appears twice (first on line 1)"},
      {"- 1\n", "line 1: a list item (-) that belongs to no field"},
      {"a: &x 1\n", "line 1: anchors, aliases and tags"},
      {"a: |\n  text\n", "line 1: block scalars"},
      {"\ta: 1\n", "line 1: a tab in the indentation"},
      {"just words\n", "line 1: expected 'name: value'"},
      {"a: 1\n---\nb: 2\n", "line 2: a second document"},
      {"a: 1\n...\nb: 2\n", "line 3: content after the end of the document"},
      {"a: 1\rb: 2\n", "line 1: a control character or a carriage return"},
      {"a: \xff\n", "line 1: not UTF-8"},
      {"]a: 1\n", "line 1: a plain name or value cannot start with ']'"},
      {"a: \"\\q\"\n", "line 1: unknown escape \\q"},
      {"a:\n  - - 1\n", "line 2: nested lists"},
  };
  for (const auto& [text, want] : cases) {
    auto doc = client::ParseFlatYaml(text);
    ASSERT_FALSE(doc) << text;
    EXPECT_NE(doc.error().message.find(want), std::string::npos)
        << "input: " << text << "\nerror: " << doc.error().message;
  }
}

TEST(EngineOptionsTest, ErrorsNameTheField) {
  auto unknown = EngineOptions::FromYaml("servers: [a:1]\nretries: 3\n", "client.yaml");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("client.yaml:2: retries: unknown field"), std::string::npos)
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
  auto nested = EngineOptions::FromYaml("timeout:\n  read: 1s\n", "client.yaml");
  ASSERT_FALSE(nested);
  EXPECT_NE(nested.error().message.find("client.yaml: not valid client config YAML: line 2"),
            std::string::npos)
      << nested.error().message;
  auto list = EngineOptions::FromYaml("transport: [tcp]\n");
  ASSERT_FALSE(list);
  EXPECT_NE(list.error().message.find("transport: expected one value, not a list"),
            std::string::npos)
      << list.error().message;
  auto flag = EngineOptions::FromYaml("immutable_keys: maybe\n");
  ASSERT_FALSE(flag);
  EXPECT_NE(flag.error().message.find("immutable_keys: 'maybe' is not true or false"),
            std::string::npos)
      << flag.error().message;

  EngineOptions o = Options({"a:1"});
  o.auth_key = "abc";
  EXPECT_NE(o.Validate().message.find("auth_key"), std::string::npos);
  o = Options({});
  EXPECT_NE(o.Validate().message.find("servers"), std::string::npos);
  o = Options({"nohostport"});
  EXPECT_NE(o.Validate().message.find("servers[0]"), std::string::npos);
}

TEST(EngineOptionsTest, RdmaWithAProviderThatIsNotThereSaysWhich) {
  EngineOptions o = Options({"a:1"});
  o.transport = Transport::kRdma;
  o.rdma_provider = "no-such-provider";
  auto e = Engine::Create(o);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Code::kUnavailable);
  EXPECT_NE(e.error().message.find("transport rdma"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("no-such-provider"), std::string::npos) << e.error().message;
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
  env["MEMKV_RDMA_PROVIDER"] = "verbs;ofi_rxm";
  env["MEMKV_RDMA_ADDRESS"] = "10.0.0.9";
  auto d = EngineOptions::FromEnvironment(&FakeGetenv);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->transport, Transport::kRdma);
  EXPECT_EQ(d->rdma_provider, "verbs;ofi_rxm");
  EXPECT_EQ(d->rdma_address, "10.0.0.9");
  env.erase("MEMKV_TRANSPORT");
  env.erase("MEMKV_RDMA_PROVIDER");
  env.erase("MEMKV_RDMA_ADDRESS");
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

// Makes common::Cuda::Process() `cuda` while it lives.
struct ProcessCuda {
  explicit ProcessCuda(const common::Cuda* c) { common::Cuda::SetProcessForTesting(c); }
  ~ProcessCuda() { common::Cuda::SetProcessForTesting(nullptr); }
};

// The engine's registrar with a fabric: host memory goes to the NIC's
// registrar, CUDA device memory (a stand-in driver declares it so) never
// does; it is recorded as device memory, to be staged.
TEST(MemoryRegistryTest, DeviceMemoryNeverReachesTheNicRegistrar) {
  struct Counting final : rdma::Registrar {
    int calls = 0;
    Result<std::shared_ptr<const void>> Register(const rdma::MemoryDescriptor&,
                                                 std::string*) override {
      ++calls;
      return std::make_shared<int>(1);
    }
  };
  memkv::testing::FakeGpu gpu;
  common::Cuda fake(gpu.Table());
  const ProcessCuda process(&fake);
  auto nic = std::make_shared<Counting>();
  client::MemoryRegistry reg(client::HostMemoryOnly(nic));
  std::vector<std::byte> host(1 << 16), device(1 << 16);
  gpu.AddDeviceRange(device.data(), device.size(), 0);
  auto h = reg.Register(host.data(), host.size());
  ASSERT_TRUE(h);
  EXPECT_FALSE((*h)->is_device());
  EXPECT_NE((*h)->handle, nullptr);
  EXPECT_EQ(nic->calls, 1);
  auto d = reg.Register(device.data(), device.size());
  ASSERT_TRUE(d);
  EXPECT_TRUE((*d)->is_device());
  EXPECT_EQ((*d)->handle, nullptr);
  EXPECT_EQ(nic->calls, 1);
  EXPECT_EQ(reg.Find(device.data() + 10, 100), *d);
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

// Registered CUDA device memory (a stand-in driver declares the ranges so)
// is staged through host memory: a put's value (batch or stream) copied out
// of the device with cuMemcpy before it is sent, a get's copied in once
// received and checked; a miss copies nothing into the device.
TEST(EngineFake, DeviceMemoryIsStagedThroughHostMemory) {
  memkv::testing::FakeGpu gpu;
  common::Cuda fake(gpu.Table());
  const ProcessCuda process(&fake);
  {
    FakeServer a({});
    Engine e = MustCreate(Options({a.address()}));
    std::vector<std::byte> src = Value("dev", 1 << 16), dst(1 << 16);
    gpu.AddDeviceRange(src.data(), src.size(), 1);
    gpu.AddDeviceRange(dst.data(), dst.size(), 1);
    auto hs = e.RegisterMemory(src.data(), src.size());
    auto hd = e.RegisterMemory(dst.data(), dst.size());
    ASSERT_TRUE(hs && hd);
    PutEntry put{"dev", src.data() + 100, 40000};
    ASSERT_TRUE(e.BatchPut({&put, 1}).ok());
    EXPECT_EQ(gpu.Count("cuMemcpy"), 1);
    auto stored = a.Value("dev");
    ASSERT_TRUE(stored);
    ASSERT_EQ(stored->size(), 40000u);
    EXPECT_EQ(0, std::memcmp(stored->data(), src.data() + 100, 40000));

    GetEntry get{"dev", dst.data() + 50, 50000};
    auto got = e.BatchGet({&get, 1});
    ASSERT_TRUE(got.ok()) << CodeName(got.entries[0].status);
    EXPECT_EQ(got.entries[0].length, 40000u);
    EXPECT_EQ(gpu.Count("cuMemcpy"), 2);
    EXPECT_EQ(0, std::memcmp(dst.data() + 50, src.data() + 100, 40000));

    GetEntry miss{"no-such-key", dst.data(), 100};
    EXPECT_EQ(e.BatchGet({&miss, 1}).entries[0].status, Code::kNotFound);
    EXPECT_EQ(gpu.Count("cuMemcpy"), 2);

    // A streamed put from device memory is copied out the same way.
    auto stream = e.OpenPutStream("dev-stream");
    ASSERT_TRUE(stream);
    ASSERT_TRUE(stream->Write(src.data(), 30000).ok());
    ASSERT_TRUE(stream->Finish().ok());
    EXPECT_EQ(gpu.Count("cuMemcpy"), 3);
    auto streamed = a.Value("dev-stream");
    ASSERT_TRUE(streamed);
    ASSERT_EQ(streamed->size(), 30000u);
    EXPECT_EQ(0, std::memcmp(streamed->data(), src.data(), 30000));
    e.UnregisterMemory(*hs);
    e.UnregisterMemory(*hd);
  }
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

// ---- List, Capacity, Rename, PutStream, pinned reads ----

std::string KeyOn(const Engine& e, size_t server, const std::string& stem, int start = 0) {
  for (int i = start;; ++i) {
    std::string k = stem + std::to_string(i);
    if (e.RouteKey(k) == server) return k;
  }
}

TEST(EngineList, MergePagesStopsAtTheServersHorizon) {
  using client::ServerPage;
  // A has more after "e": nothing past "e" may be returned, or A's keys
  // between "e" and the next page's start would be skipped.
  std::vector<ServerPage> pages = {{{{"a", 1, 1}, {"c", 1, 1}, {"e", 1, 1}}, "e"},
                                   {{{"b", 1, 1}, {"d", 1, 1}, {"f", 1, 1}, {"g", 1, 1}}, ""}};
  ListPage p = client::MergePages(pages, "", 10);
  ASSERT_EQ(p.entries.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(p.entries[i].key, std::string(1, char('a' + i)));
  EXPECT_EQ(p.cursor, "e");
  // The limit cuts first.
  p = client::MergePages(pages, "", 2);
  ASSERT_EQ(p.entries.size(), 2u);
  EXPECT_EQ(p.cursor, "b");
  // Nothing left anywhere: no cursor.
  p = client::MergePages({{{{"x", 1, 1}}, ""}, {{}, ""}}, "", 10);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.cursor, "");
  // Entries left over (not consumed) mean more, even with no server cursor.
  p = client::MergePages({{{{"x", 1, 1}, {"y", 1, 1}}, ""}}, "", 1);
  EXPECT_EQ(p.cursor, "x");
  // A key on two servers appears once.
  p = client::MergePages({{{{"k", 3, 7}}, ""}, {{{"k", 3, 7}}, ""}}, "", 10);
  EXPECT_EQ(p.entries.size(), 1u);
}

void PutStrings(Engine& e, const std::vector<std::string>& keys) {
  std::vector<PutEntry> puts;
  for (const auto& k : keys) puts.push_back({k, k.data(), k.size()});
  auto r = e.BatchPut(puts);
  ASSERT_TRUE(r.outcome) << r.outcome.message;
  ASSERT_EQ(r.failed(), 0u);
}

void ListEverything(uint32_t server_page) {
  FakeServerOptions so;
  so.list_page = server_page;
  FakeServer a(so), b(so);
  Engine e = MustCreate(Options({a.address(), b.address()}));
  std::vector<std::string> keys;
  for (int i = 0; i < 57; ++i) keys.push_back("blk/" + std::to_string(1000 + i * 7));
  PutStrings(e, keys);
  PutStrings(e, {"other/1", "blj", "blk"});  // outside the prefix (the last is shorter)
  EXPECT_GT(a.Keys(), 5u);
  EXPECT_GT(b.Keys(), 5u);
  std::sort(keys.begin(), keys.end());
  for (size_t limit : {1, 5, 16, 1000}) {
    std::vector<std::string> seen;
    std::string cursor;
    int pages = 0;
    do {
      ListPage p = e.List("blk/", cursor, limit);
      ASSERT_TRUE(p.outcome) << p.outcome.message;
      ASSERT_LE(p.entries.size(), limit);
      for (const ListEntry& le : p.entries) {
        EXPECT_EQ(le.size, le.key.size());
        EXPECT_GT(le.version, 0u);
        seen.push_back(le.key);
      }
      if (!p.cursor.empty()) {
        ASSERT_FALSE(p.entries.empty());
        EXPECT_EQ(p.cursor, p.entries.back().key);
      }
      cursor = p.cursor;
      ASSERT_LT(++pages, 200);
    } while (!cursor.empty());
    EXPECT_EQ(seen, keys) << "limit " << limit;  // every key once, in byte order
  }
}

TEST(EngineFake, ListMergesTwoServersInByteOrderAndPages) { ListEverything(1000); }
TEST(EngineFake, ListPagesWhenServersSendLessThanTheLimit) { ListEverything(3); }

TEST(EngineFake, ListAndCapacityNeedEveryServer) {
  FakeServerOptions old;
  old.features = 0;
  FakeServer a({}), b(old);
  Engine e = MustCreate(Options({a.address(), b.address()}));
  ListPage p = e.List("", "", 10);
  EXPECT_EQ(p.outcome.code, Code::kUnsupported);
  EXPECT_NE(p.outcome.message.find(b.address()), std::string::npos) << p.outcome.message;
  EXPECT_EQ(e.List("", "", 0).outcome.code, Code::kInvalidArgument);
  EXPECT_EQ(e.Capacity().outcome.code, Code::kUnsupported);
}

TEST(EngineFake, CapacityIsSummedOverServers) {
  FakeServerOptions sa, sb;
  sa.capacity_total = 1000;
  sa.max_value_size = 64;
  sb.capacity_total = 3000;
  sb.max_value_size = 32;
  FakeServer a(sa), b(sb);
  Engine e = MustCreate(Options({a.address(), b.address()}));
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) keys.push_back("cap/" + std::to_string(i));
  PutStrings(e, keys);
  CapacityInfo c = e.Capacity();
  ASSERT_TRUE(c.outcome) << c.outcome.message;
  EXPECT_EQ(c.total_bytes, 4000u);
  EXPECT_EQ(c.keys, 20u);
  uint64_t used = 0;
  for (const auto& k : keys) used += k.size();
  EXPECT_EQ(c.used_bytes, used);
  EXPECT_EQ(c.max_value_size, 32u);
}

TEST(EngineFake, RenameOnOneServerIsOneRequest) {
  FakeServer a({}), b({});
  Engine e = MustCreate(Options({a.address(), b.address()}));
  const std::string from = KeyOn(e, 0, "from/"), to = KeyOn(e, 0, "to/");
  a.Put(from, "value");
  ASSERT_TRUE(e.Rename(from, to)) << e.Rename(from, to).message;
  EXPECT_EQ(a.renames, 1);
  EXPECT_FALSE(a.Value(from));
  ASSERT_TRUE(a.Value(to));
  EXPECT_EQ(a.Value(to)->size(), 5u);
  Outcome missing = e.Rename(from, to);
  EXPECT_EQ(missing.code, Code::kNotFound);
  EXPECT_EQ(e.Rename("", to).code, Code::kInvalidArgument);
  EXPECT_TRUE(e.Rename(to, to));  // onto itself: there, nothing moves
  EXPECT_TRUE(a.Value(to));
}

TEST(EngineFake, RenameFallsBackToCopyWhenTheServerCannot) {
  FakeServerOptions so;
  so.rename_unsupported = true;
  FakeServer a(so), b(so);
  Engine e = MustCreate(Options({a.address(), b.address()}));
  const std::string from = KeyOn(e, 1, "from/"), to = KeyOn(e, 1, "to/");
  b.Put(from, "copied value");
  Outcome o = e.Rename(from, to);
  ASSERT_TRUE(o) << o.message;
  EXPECT_EQ(b.renames, 0);
  EXPECT_FALSE(b.Value(from));
  ASSERT_TRUE(b.Value(to));
  EXPECT_EQ(b.Value(to)->size(), 12u);
}

TEST(EngineFake, RenameAcrossServersCopiesThenDeletes) {
  FakeServer a({}), b({});
  Engine e = MustCreate(Options({a.address(), b.address()}));
  const std::string from = KeyOn(e, 0, "from/"), to = KeyOn(e, 1, "to/");
  a.Put(from, "small");
  ASSERT_TRUE(e.Rename(from, to));
  EXPECT_FALSE(a.Value(from));
  ASSERT_TRUE(b.Value(to));
  EXPECT_EQ(a.renames + b.renames, 0);
  EXPECT_EQ(e.Rename(from, to).code, Code::kNotFound);

  // Larger than a copy piece: read in pinned pieces, streamed to the new key.
  const std::string big_from = KeyOn(e, 1, "bigfrom/"), big_to = KeyOn(e, 0, "bigto/");
  std::string big((40u << 20) + 3, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 13));
  b.Put(big_from, big);
  Outcome o = e.Rename(big_from, big_to);
  ASSERT_TRUE(o) << o.message;
  EXPECT_FALSE(b.Value(big_from));
  auto v = a.Value(big_to);
  ASSERT_TRUE(v);
  ASSERT_EQ(v->size(), big.size());
  EXPECT_EQ(std::memcmp(v->data(), big.data(), big.size()), 0);
  EXPECT_GT(a.Chunks().size(), 2u);  // it went as an open stream
}

TEST(EngineFake, PutStreamStoresTheValueWhole) {
  FakeServer a({}), b({});
  Engine e = MustCreate(Options({a.address(), b.address()}));
  const std::string key = KeyOn(e, 1, "stream/");
  auto ps = e.OpenPutStream(key, 1u << 20);
  ASSERT_TRUE(ps) << ps.error().message;
  std::string value;
  for (int i = 0; i < 300; ++i) value += "line " + std::to_string(i) + " of a file of unknown length\n";
  value = value + value + value + value;  // ~40 KiB
  for (size_t at = 0; at < value.size(); at += 1000)
    ASSERT_TRUE(ps->Write(value.data() + at, std::min<size_t>(1000, value.size() - at)));
  EXPECT_EQ(ps->written(), value.size());
  Outcome f = ps->Finish();
  ASSERT_TRUE(f) << f.message;
  EXPECT_EQ(ps->Finish().code, Code::kInvalidArgument);  // once
  auto v = b.Value(key);
  ASSERT_TRUE(v);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(v->data()), v->size()), value);
  EXPECT_TRUE(a.Chunks().empty());  // only its server saw it
  // And it reads back through the engine.
  std::string back(value.size(), '\0');
  GetEntry g{key, back.data(), back.size()};
  auto r = e.BatchGet({&g, 1});
  ASSERT_EQ(r.entries[0].status, Code::kOk);
  EXPECT_EQ(back, value);
}

TEST(EngineFake, PutStreamEmptyAbortAndUnsupported) {
  FakeServer a({});
  Engine e = MustCreate(Options({a.address()}));
  {
    auto ps = e.OpenPutStream("empty");
    ASSERT_TRUE(ps);
    EXPECT_EQ(ps->Finish().code, Code::kInvalidArgument);
  }
  {
    auto ps = e.OpenPutStream("aborted", 4096);
    ASSERT_TRUE(ps);
    std::string bytes(10000, 'x');
    ASSERT_TRUE(ps->Write(bytes.data(), bytes.size()));
    ps->Abort();
    EXPECT_FALSE(ps->Write(bytes.data(), 1));
    EXPECT_FALSE(ps->Finish());
  }
  std::string_view k = "aborted";
  auto ex = e.Exists({&k, 1});
  EXPECT_EQ(ex.entries[0].status, Code::kNotFound);
  EXPECT_EQ(a.open_streams, 0);
  EXPECT_EQ(a.streams_discarded, 1);
  EXPECT_EQ(a.Keys(), 0u);
  EXPECT_EQ(e.OpenPutStream("k", 0).error().code, Code::kInvalidArgument);

  FakeServerOptions old;
  old.features = 0;
  FakeServer o(old);
  Engine eo = MustCreate(Options({o.address()}));
  auto ps = eo.OpenPutStream("k");
  ASSERT_FALSE(ps);
  EXPECT_EQ(ps.error().code, Code::kUnsupported);
}

TEST(EngineFake, ReadsPinnedToAVersion) {
  FakeServer a({});
  Engine e = MustCreate(Options({a.address()}));
  PutStrings(e, {"pinned"});
  std::string_view k = "pinned";
  auto ex = e.Exists({&k, 1});
  ASSERT_EQ(ex.entries[0].status, Code::kOk);
  const uint64_t version = ex.entries[0].version;
  EXPECT_GT(version, 0u);
  char buf[16];
  GetEntry g{k, buf, sizeof buf, 0, 0, version};
  auto r = e.BatchGet({&g, 1});
  ASSERT_EQ(r.entries[0].status, Code::kOk);
  EXPECT_EQ(r.entries[0].version, version);
  PutStrings(e, {"pinned"});  // a new version
  r = e.BatchGet({&g, 1});
  EXPECT_EQ(r.entries[0].status, Code::kNotFound);
  g.version = 0;
  r = e.BatchGet({&g, 1});
  EXPECT_EQ(r.entries[0].status, Code::kOk);
  EXPECT_GT(r.entries[0].version, version);
}

}  // namespace
}  // namespace memkv
