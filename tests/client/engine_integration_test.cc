// The engine against three real `memkv server` processes on loopback (memory
// mode): HRW spread, 64 threads with 7,500-entry batches over tcp and shm,
// short-lived threads, and a server killed and restarted mid-run.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../io/test_util.h"
#include "../server/server_process.h"
#include "client/engine_internal.h"
#include "client/io_threads.h"
#include "client/process_fabric.h"
#include "common/checksum.h"
#include "memkv/engine.h"

namespace memkv::testing {
namespace {

using namespace std::chrono_literals;

// One server on a fixed port that can be killed and started again there.
class Server {
 public:
  // Ports are taken at random; the admin API takes port + 1, so both must be
  // free, and a start that loses a race for them is tried on another pair.
  explicit Server(std::string dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), extra_(std::move(extra)) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = FreePortPair();
      if (Start(/*report=*/attempt == 4)) return;
    }
  }
  ~Server() { Kill(SIGTERM); }

  static bool Bindable(uint16_t port) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
  }
  static uint16_t FreePortPair() {
    for (;;) {
      const uint16_t p = FreePort();
      if (p < 65535 && Bindable(p + 1)) return p;
    }
  }

  // Starts the server on its port; false if it exited or never accepted.
  bool Start(bool report = true) {
    std::filesystem::remove(socket());
    std::vector<std::string> args = {
        MEMKV_BINARY, "--log-level",   "error",     "server", "--address",
        address(),    "--unix-socket", socket(),    "--mode", "memory",
        "--memory",   "1GiB",          "--threads", "1"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::chdir(dir_.c_str()) != 0) _exit(126);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 300; ++i) {
      int s = ConnectTcp(port_);
      if (s >= 0) {
        ::close(s);
        return true;
      }
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    Kill();
    if (report) ADD_FAILURE() << "server on " << address() << " did not start";
    return false;
  }

  void Kill(int sig = SIGKILL) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string socket() const { return dir_ + "/memkv.sock"; }
  uint16_t admin_port() const { return static_cast<uint16_t>(port_ + 1); }

 private:
  std::string dir_;
  std::vector<std::string> extra_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

class EngineIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      dirs_.push_back(std::make_unique<io::testing::TempDir>());
      servers_.push_back(std::make_unique<Server>(dirs_.back()->path().string()));
    }
  }
  std::vector<std::string> Addresses() const {
    std::vector<std::string> a;
    for (auto& s : servers_) a.push_back(s->address());
    return a;
  }
  EngineOptions Options(std::vector<std::string> servers = {}) const {
    EngineOptions o;
    o.servers = servers.empty() ? Addresses() : std::move(servers);
    o.timeout = 60s;
    o.connect_timeout = 5s;
    return o;
  }
  static Engine Make(EngineOptions o) {
    auto e = Engine::Create(std::move(o));
    EXPECT_TRUE(e) << e.error().message;
    return *e;
  }

  std::vector<std::unique_ptr<io::testing::TempDir>> dirs_;
  std::vector<std::unique_ptr<Server>> servers_;
};

// The bytes of (thread, entry): their size and content follow from them.
size_t SizeOf(int t, int i) { return 8 + Xxh3(&i, sizeof i, t * 131 + 7) % 249; }
void Fill(std::byte* p, size_t n, int t, int i) {
  uint64_t x = Xxh3(&i, sizeof i, uint64_t(t) << 32);
  for (size_t k = 0; k < n; ++k) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    p[k] = static_cast<std::byte>(x >> 56);
  }
}
bool Check(const std::byte* p, size_t n, int t, int i) {
  std::vector<std::byte> want(n);
  Fill(want.data(), n, t, i);
  return std::memcmp(p, want.data(), n) == 0;
}

TEST_F(EngineIntegration, KeysSpreadByHrwAndRemovingAServerMovesOnlyItsKeys) {
  Engine all = Make(Options());
  constexpr int kKeys = 3000;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back("spread/" + std::to_string(i));
  std::string v = "0123456789";
  std::vector<PutEntry> puts;
  for (auto& k : keys) puts.push_back({k, v.data(), v.size()});
  ASSERT_TRUE(all.BatchPut(puts).ok());

  // Each key is on its HRW server and nowhere else.
  std::vector<int> per(3, 0);
  for (size_t s = 0; s < 3; ++s) {
    Engine one = Make(Options({servers_[s]->address()}));
    std::vector<std::string_view> names(keys.begin(), keys.end());
    auto x = one.Exists(names);
    for (int i = 0; i < kKeys; ++i) {
      const bool home = all.RouteKey(keys[i]) == s;
      EXPECT_EQ(x.entries[i].status, home ? Code::kOk : Code::kNotFound) << keys[i];
      per[s] += home;
    }
  }
  for (int n : per) EXPECT_GT(n, kKeys / 5);

  // Without server 1, keys of servers 0 and 2 are still found where they
  // were; only server 1's keys miss (they now route elsewhere).
  Engine two = Make(Options({servers_[0]->address(), servers_[2]->address()}));
  std::vector<std::string_view> names(keys.begin(), keys.end());
  auto x = two.Exists(names);
  int misses = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (all.RouteKey(keys[i]) == 1) {
      EXPECT_EQ(x.entries[i].status, Code::kNotFound);
      ++misses;
    } else {
      EXPECT_EQ(x.entries[i].status, Code::kOk) << keys[i];
    }
  }
  EXPECT_EQ(misses, per[1]);
}

void FanIn(Engine& engine, bool shared_memory) {
  constexpr int kThreads = 64;
  constexpr int kEntries = 7500;
  std::atomic<uint64_t> bad{0}, checked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<size_t> at(kEntries);
      size_t total = 0;
      for (int i = 0; i < kEntries; ++i) {
        at[i] = total;
        total += SizeOf(t, i);
      }
      std::vector<std::byte> heap;
      SharedBuffer shm;
      std::byte* src;
      std::byte* dst;
      if (shared_memory) {
        auto b = engine.AllocateShared(2 * total);
        if (!b) {
          bad += kEntries;
          return;
        }
        shm = *b;
        src = static_cast<std::byte*>(shm.data());
      } else {
        heap.resize(2 * total);
        src = heap.data();
      }
      dst = src + total;
      std::vector<std::string> keys(kEntries);
      std::vector<PutEntry> puts(kEntries);
      for (int i = 0; i < kEntries; ++i) {
        keys[i] = (shared_memory ? "shm/" : "tcp/") + std::to_string(t) + "/" + std::to_string(i);
        Fill(src + at[i], SizeOf(t, i), t, i);
        puts[i] = {keys[i], src + at[i], SizeOf(t, i)};
      }
      auto p = engine.BatchPut(puts);
      if (!p.ok()) {
        ADD_FAILURE() << "put: " << p.outcome.message << " failed " << p.failed();
        bad += kEntries;
        return;
      }
      std::vector<GetEntry> gets(kEntries);
      for (int i = 0; i < kEntries; ++i) gets[i] = {keys[i], dst + at[i], SizeOf(t, i)};
      auto g = engine.BatchGet(gets);
      for (int i = 0; i < kEntries; ++i) {
        if (g.entries[i].status != Code::kOk || g.entries[i].length != SizeOf(t, i) ||
            !Check(dst + at[i], SizeOf(t, i), t, i)) {
          ++bad;
        } else {
          ++checked;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(checked.load(), uint64_t(kThreads) * kEntries);
}

TEST_F(EngineIntegration, SixtyFourThreadsOverTcp) {
  EngineOptions o = Options();
  o.transport = Transport::kTcp;
  Engine e = Make(o);
  FanIn(e, false);
  for (auto& s : e.Servers()) {
    EXPECT_TRUE(s.connected);
    EXPECT_FALSE(s.shm);
  }
  EXPECT_EQ(client::LiveServerLinks(), 3u);
}

TEST_F(EngineIntegration, SixtyFourThreadsOverShm) {
  Engine e = Make(Options());  // auto: same host, so shared memory moves over shm
  FanIn(e, true);
  for (auto& s : e.Servers()) {
    EXPECT_TRUE(s.connected);
    EXPECT_TRUE(s.shm) << s.address;
  }
}

TEST_F(EngineIntegration, ThousandShortLivedThreadsLeaveNothingBehind) {
  ASSERT_EQ(client::IoThreads::LiveThreads(), 0u);
  Engine shared = Make(Options());
  std::atomic<int> failed{0};
  for (int wave = 0; wave < 20; ++wave) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 50; ++t) {
      threads.emplace_back([&, wave, t] {
        const std::string key = "short/" + std::to_string(wave) + "/" + std::to_string(t);
        std::string v = key;
        PutEntry put{key, v.data(), v.size()};
        if (t % 2) {
          if (!shared.BatchPut({&put, 1}).ok()) ++failed;
        } else {  // an engine of its own, for one call
          auto own = Engine::Create(Options());
          if (!own || !own->BatchPut({&put, 1}).ok()) ++failed;
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(failed.load(), 0);
  // Only the shared engine's state is left: one pool, one link per server.
  EXPECT_EQ(client::IoThreads::LiveThreads(), 1u);
  EXPECT_EQ(client::LiveServerLinks(), 3u);
  shared = Make(Options({servers_[0]->address()}));  // drop the three-server engine
  EXPECT_EQ(client::LiveServerLinks(), 1u);
}

TEST_F(EngineIntegration, KilledServerFailsFastOthersGoOnAndItComesBack) {
  EngineOptions o = Options();
  o.timeout = 3s;
  o.connect_timeout = 1s;
  o.reconnect_backoff = 100ms;
  o.max_reconnect_backoff = 400ms;
  Engine plain = Make(o);
  o.immutable_keys = true;
  Engine immutable = Make(o);

  std::vector<std::string> keys;
  for (int i = 0; i < 600; ++i) keys.push_back("kill/" + std::to_string(i));
  std::string v = "value";
  auto puts_of = [&](const std::string& prefix) {
    auto names = std::make_shared<std::vector<std::string>>();
    for (auto& k : keys) names->push_back(prefix + k);
    return names;
  };
  auto run = [&](Engine& e, const std::vector<std::string>& names) {
    std::vector<PutEntry> puts;
    for (auto& k : names) puts.push_back({k, v.data(), v.size()});
    return e.BatchPut(puts);
  };

  auto before = puts_of("a/");
  ASSERT_TRUE(run(plain, *before).ok());

  servers_[1]->Kill();
  // The victim's keys fail as unavailable (never hang); the others succeed.
  for (int round = 0; round < 3; ++round) {
    auto names = puts_of("b" + std::to_string(round) + "/");
    auto r = run(plain, *names);
    for (size_t i = 0; i < names->size(); ++i) {
      if (plain.RouteKey((*names)[i]) == 1) {
        EXPECT_TRUE(r.entries[i] == Code::kUnavailable || r.entries[i] == Code::kTimeout)
            << CodeName(r.entries[i]);
      } else {
        EXPECT_EQ(r.entries[i], Code::kOk) << (*names)[i];
      }
    }
  }
  // With immutable_keys every write lands, the victim's on their next server,
  // and reads find them there.
  auto imm = puts_of("c/");
  auto r = run(immutable, *imm);
  EXPECT_TRUE(r.ok()) << r.failed();
  std::vector<std::string_view> names(imm->begin(), imm->end());
  auto x = immutable.Exists(names);
  EXPECT_TRUE(x.ok()) << x.failed();
  Engine server2_only = Make(Options({servers_[2]->address()}));
  Engine server0_only = Make(Options({servers_[0]->address()}));
  for (auto& k : *imm) {
    const auto rank = immutable.RankKey(k);
    if (rank[0] != 1) continue;
    std::string_view n = k;
    Engine& next = rank[1] == 0 ? server0_only : server2_only;
    EXPECT_EQ(next.Exists({&n, 1}).entries[0].status, Code::kOk) << k;
  }

  // Restarted, the server is found again without any help.
  ASSERT_TRUE(servers_[1]->Start());
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    auto names = puts_of("d" + std::to_string(i) + "/");
    back = run(plain, *names).ok();
    if (!back) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(back);
  EXPECT_TRUE(plain.Servers()[1].connected);
}

}  // namespace
}  // namespace memkv::testing

namespace memkv::testing {
namespace {

// ---- the rdma rail: libfabric's tcp provider on loopback ----

// GET `path` from the admin API on `port`: the body.
std::string AdminGet(uint16_t port, const std::string& path) {
  const int s = ConnectTcp(port);
  if (s < 0) return "";
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::write(s, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(s);
    return "";
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(s, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(s);
  const size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

// The number after "name": in a JSON body (0 if absent).
uint64_t JsonNumber(const std::string& body, const std::string& name) {
  const size_t at = body.find("\"" + name + "\":");
  return at == std::string::npos ? 0 : std::stoull(body.substr(at + name.size() + 3));
}

class RdmaRail : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(dir_.path().string(),
                                       std::vector<std::string>{"--set", "rdma.provider=ofi"});
    std::string health;
    for (int i = 0; i < 100 && health.empty(); ++i) {  // the admin API comes up after the port
      health = AdminGet(server_->admin_port(), "/v1/health");
      if (health.empty()) std::this_thread::sleep_for(50ms);
    }
    if (health.find("\"rdma_active\":true") == std::string::npos)
      GTEST_SKIP() << "the server opened no rdma rail (libfabric's tcp provider missing?): "
                   << health;
  }
  EngineOptions Options(Transport t) const {
    EngineOptions o;
    o.servers = {server_->address()};
    o.transport = t;
    o.rdma_address = "127.0.0.1";
    o.timeout = 60s;
    return o;
  }
  // Bytes the server moved over rdma: written into clients (reads), read
  // from them (writes).
  std::pair<uint64_t, uint64_t> RdmaBytes() const {
    const std::string st = AdminGet(server_->admin_port(), "/v1/status");
    return {JsonNumber(st, "bytes_written"), JsonNumber(st, "bytes_read")};
  }

  // Value bytes per rail (/v1/status rail_bytes): to clients, from them.
  std::pair<uint64_t, uint64_t> RailBytes(const std::string& rail) const {
    const std::string st = AdminGet(server_->admin_port(), "/v1/status");
    const size_t at = st.find("\"" + rail + "\":{", st.find("\"rail_bytes\":"));
    if (at == std::string::npos) return {0, 0};
    const std::string obj = st.substr(at, st.find('}', at) - at);
    return {JsonNumber(obj, "to_clients"), JsonNumber(obj, "from_clients")};
  }

  io::testing::TempDir dir_;
  std::unique_ptr<Server> server_;
};

TEST_F(RdmaRail, RegisteredAndUnregisteredMemoryMoveOverRdmaEveryByteChecked) {
  auto e = Engine::Create(Options(Transport::kRdma));
  ASSERT_TRUE(e) << e.error().message;
  constexpr int kN = 48;
  constexpr size_t kSize = 300 * 1024 + 17;  // not a whole number of pieces
  // Registered memory: named in place.
  std::vector<std::byte> reg_src(kN * kSize), reg_dst(kN * kSize);
  auto h1 = e->RegisterMemory(reg_src.data(), reg_src.size());
  auto h2 = e->RegisterMemory(reg_dst.data(), reg_dst.size());
  ASSERT_TRUE(h1 && h2);
  std::vector<std::string> keys;
  std::vector<PutEntry> puts;
  for (int i = 0; i < kN; ++i) {
    keys.push_back("rdma/reg/" + std::to_string(i));
    Fill(reg_src.data() + i * kSize, kSize, 1, i);
  }
  for (int i = 0; i < kN; ++i) puts.push_back({keys[i], reg_src.data() + i * kSize, kSize});
  const auto [w0, r0] = RdmaBytes();
  const auto tcp0 = RailBytes("tcp");
  auto put = e->BatchPut(puts);
  ASSERT_TRUE(put.ok()) << put.failed() << " failed";
  std::vector<GetEntry> gets;
  for (int i = 0; i < kN; ++i) gets.push_back({keys[i], reg_dst.data() + i * kSize, kSize});
  auto got = e->BatchGet(gets);
  ASSERT_TRUE(got.ok()) << got.failed() << " failed";
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(got.entries[i].length, kSize);
    EXPECT_TRUE(Check(reg_dst.data() + i * kSize, kSize, 1, i)) << keys[i];
  }
  const auto [w1, r1] = RdmaBytes();
  EXPECT_EQ(r1 - r0, kN * kSize);  // the puts: READ from this process
  EXPECT_EQ(w1 - w0, kN * kSize);  // the gets: WRITTEN into it

  // Unregistered memory: through a registered bounce buffer; ranges.
  std::vector<std::byte> plain(kSize), back(kSize);
  Fill(plain.data(), kSize, 2, 0);
  const PutEntry p{"rdma/plain", plain.data(), kSize};
  ASSERT_TRUE(e->BatchPut({&p, 1}).ok());
  GetEntry g{"rdma/plain", back.data(), kSize};
  g.offset = 4096 + 5;
  g.length = 70000;
  auto range = e->BatchGet({&g, 1});
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range.entries[0].length, 70000u);
  EXPECT_EQ(std::memcmp(back.data(), plain.data() + 4096 + 5, 70000), 0);
  const auto [w2, r2] = RdmaBytes();
  EXPECT_EQ(r2 - r1, kSize);
  EXPECT_EQ(w2 - w1, 70000u);
  // Per rail: every value byte on rdma, none inline on tcp.
  EXPECT_EQ(RailBytes("rdma"), std::make_pair(uint64_t{kN * kSize + 70000}, uint64_t{kN * kSize + kSize}));
  EXPECT_EQ(RailBytes("tcp"), tcp0);

  // The other calls ride the control connection.
  const std::string_view k = "rdma/plain";
  EXPECT_EQ(e->Exists({&k, 1}).entries[0].size, kSize);
  EXPECT_TRUE(e->Delete({&k, 1}).ok());
  EXPECT_EQ(e->BatchGet({&g, 1}).entries[0].status, Code::kNotFound);
  EXPECT_EQ(JsonNumber(AdminGet(server_->admin_port(), "/v1/status"), "peers"), 1u);
}

TEST_F(RdmaRail, ManyThreadsShareOneFabric) {
  auto e = Engine::Create(Options(Transport::kRdma));
  ASSERT_TRUE(e) << e.error().message;
  constexpr int kThreads = 8, kEntries = 500;
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<std::string> keys;
      std::vector<std::vector<std::byte>> vals(kEntries), outs(kEntries);
      std::vector<PutEntry> puts;
      std::vector<GetEntry> gets;
      for (int i = 0; i < kEntries; ++i) {
        keys.push_back("rdma/t" + std::to_string(t) + "/" + std::to_string(i));
        vals[i].resize(SizeOf(t, i) * 64);
        outs[i].resize(vals[i].size());
        Fill(vals[i].data(), vals[i].size(), t, i);
      }
      for (int i = 0; i < kEntries; ++i) puts.push_back({keys[i], vals[i].data(), vals[i].size()});
      for (int i = 0; i < kEntries; ++i) gets.push_back({keys[i], outs[i].data(), outs[i].size()});
      if (!e->BatchPut(puts).ok()) ++bad;
      auto r = e->BatchGet(gets);
      if (!r.ok()) ++bad;
      for (int i = 0; i < kEntries; ++i)
        if (!Check(outs[i].data(), outs[i].size(), t, i)) ++bad;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  // One endpoint for the whole process: one peer on the server.
  EXPECT_EQ(JsonNumber(AdminGet(server_->admin_port(), "/v1/status"), "peers"), 1u);
}

TEST_F(RdmaRail, EnginesOfAProcessShareOneEndpointAndItsBouncePool) {
  ASSERT_EQ(client::ProcessFabric::Open(), 0u);
  auto ea = Engine::Create(Options(Transport::kRdma));
  auto eb = Engine::Create(Options(Transport::kRdma));
  // auto with an rdma provider named: the same endpoint, its own link.
  EngineOptions ao = Options(Transport::kAuto);
  ao.rdma_provider = "tcp;ofi_rxm";
  auto ec = Engine::Create(ao);
  ASSERT_TRUE(ea && eb && ec);
  std::optional<Engine> a(std::move(*ea)), b(std::move(*eb)), c(std::move(*ec));
  EXPECT_EQ(client::ProcessFabric::Open(), 1u);
  std::string v(200000, 'v');
  for (Engine* e : {&*a, &*b}) {  // unregistered memory: the bounce pool
    for (int i = 0; i < 20; ++i) {
      const std::string k = "share/" + std::to_string(i);
      v[0] = static_cast<char>('a' + i);
      const PutEntry p{k, v.data(), v.size()};
      ASSERT_TRUE(e->BatchPut({&p, 1}).ok()) << k;
      std::string back(v.size(), '\0');
      GetEntry g{k, back.data(), back.size()};
      ASSERT_TRUE(e->BatchGet({&g, 1}).ok()) << k;
      ASSERT_EQ(back, v) << k;
    }
  }
  std::string back(v.size(), '\0');
  GetEntry g{"share/19", back.data(), back.size()};
  ASSERT_TRUE(c->BatchGet({&g, 1}).ok());
  EXPECT_EQ(back, v);
  // a and b share one link (one session); c has its own: two peers, one address.
  EXPECT_EQ(JsonNumber(AdminGet(server_->admin_port(), "/v1/status"), "peers"), 2u);
  c.reset();  // its peer goes; the others keep working
  a.reset();
  GetEntry g2{"share/3", back.data(), back.size()};
  ASSERT_TRUE(b->BatchGet({&g2, 1}).ok());
  EXPECT_EQ(back[0], 'd');
  EXPECT_EQ(client::ProcessFabric::Open(), 1u);
  b.reset();
  EXPECT_EQ(client::ProcessFabric::Open(), 0u);  // the last Engine closed it
}

TEST_F(RdmaRail, ASessionThatEndsReleasesItsPeer) {
  {
    auto e = Engine::Create(Options(Transport::kRdma));
    ASSERT_TRUE(e) << e.error().message;
    std::string v(100000, 'x');
    const PutEntry p{"rdma/short", v.data(), v.size()};
    ASSERT_TRUE(e->BatchPut({&p, 1}).ok());
    EXPECT_EQ(JsonNumber(AdminGet(server_->admin_port(), "/v1/status"), "peers"), 1u);
  }
  // The engine is gone: its connection closed, the server removed its peer.
  uint64_t peers = 1;
  for (int i = 0; i < 100 && peers != 0; ++i) {
    std::this_thread::sleep_for(50ms);
    peers = JsonNumber(AdminGet(server_->admin_port(), "/v1/status"), "peers");
  }
  EXPECT_EQ(peers, 0u);
}

TEST_F(EngineIntegration, TransportRdmaToAServerWithoutTheRailSaysSo) {
  EngineOptions o = Options({servers_[0]->address()});
  o.transport = Transport::kRdma;
  o.rdma_address = "127.0.0.1";
  auto e = Engine::Create(o);
  if (!e) GTEST_SKIP() << "no libfabric tcp provider here: " << e.error().message;
  std::string v = "value";
  const PutEntry p{"rdma/refused", v.data(), v.size()};
  auto r = e->BatchPut({&p, 1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.entries[0], Code::kUnavailable);
}

}  // namespace
}  // namespace memkv::testing
