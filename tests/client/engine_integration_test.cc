// The engine against real `memkv server` processes on loopback (memory
// mode): HRW spread, 64 threads with 7,500-entry batches over tcp, shm and
// rdma, short-lived threads, a server killed and restarted mid-run; and the
// rdma rail (libfabric's tcp provider): a client killed mid-batch, a
// registration withdrawn mid-request.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "../io/test_util.h"
#include "../server/server_process.h"
#include "client/connection.h"
#include "client/engine_internal.h"
#include "client/io_threads.h"
#include "client/options.h"
#include "client/process_fabric.h"
#include "common/checksum.h"
#include "memkv/engine.h"
#include "proto/status.h"
#include "rdma/fabric_api.h"

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
    // MEMKV_TEST_SERVER_LOG=debug shows the servers' logs (on stderr).
    const char* log = std::getenv("MEMKV_TEST_SERVER_LOG");
    std::vector<std::string> args = {MEMKV_BINARY, "--log-level", log ? log : "error", "server",
                                     "--address",  address(),     "--unix-socket",     socket(),
                                     "--mode",     "memory",      "--threads",         "1"};
    if (std::find(extra_.begin(), extra_.end(), "--memory") == extra_.end()) {
      args.push_back("--memory");
      args.push_back("1GiB");
    }
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

  // Stops the server with `sig`; one that has not exited a minute after
  // SIGTERM fails the test and is killed.
  void Kill(int sig = SIGKILL) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status;
    for (int i = 0; sig != SIGKILL && i < 600; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
    if (sig != SIGKILL) {
      ADD_FAILURE() << "the server on " << address() << " did not exit on signal " << sig;
      ::kill(pid_, SIGKILL);
    }
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

// Where a fan-in thread's values and destinations live.
enum class FanInMemory {
  kHeap,        // plain heap memory
  kShared,      // AllocateShared (the shm rail)
  kRegistered,  // registered with RegisterMemory on even threads, plain heap
                // on odd ones (the rdma rail: in place, and through bounce buffers)
};

// 64 threads, each putting a 7,500-entry batch and reading it back, every
// byte checked. Returns the value bytes put (as many were got).
uint64_t FanIn(Engine& engine, FanInMemory memory) {
  constexpr int kThreads = 64;
  constexpr int kEntries = 7500;
  const char* prefix = memory == FanInMemory::kShared       ? "shm/"
                       : memory == FanInMemory::kRegistered ? "rdma/"
                                                            : "tcp/";
  std::atomic<uint64_t> bad{0}, checked{0}, bytes{0};
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
      MemoryHandle registered;
      std::byte* src;
      std::byte* dst;
      if (memory == FanInMemory::kShared) {
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
        if (memory == FanInMemory::kRegistered && t % 2 == 0) {
          auto h = engine.RegisterMemory(heap.data(), heap.size());
          if (!h) {
            ADD_FAILURE() << "register: " << h.error().message;
            bad += kEntries;
            return;
          }
          registered = *h;
        }
      }
      dst = src + total;
      std::vector<std::string> keys(kEntries);
      std::vector<PutEntry> puts(kEntries);
      for (int i = 0; i < kEntries; ++i) {
        keys[i] = prefix + std::to_string(t) + "/" + std::to_string(i);
        Fill(src + at[i], SizeOf(t, i), t, i);
        puts[i] = {keys[i], src + at[i], SizeOf(t, i)};
      }
      auto p = engine.BatchPut(puts);
      if (!p.ok()) {
        Code first = Code::kOk;
        for (Code c : p.entries)
          if (c != Code::kOk) {
            first = c;
            break;
          }
        ADD_FAILURE() << "put: " << p.outcome.message << " failed " << p.failed() << ", the first "
                      << CodeName(first);
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
      bytes += total;
      if (registered) engine.UnregisterMemory(registered);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(checked.load(), uint64_t(kThreads) * kEntries);
  return bytes.load();
}

TEST_F(EngineIntegration, SixtyFourThreadsOverTcp) {
  EngineOptions o = Options();
  o.transport = Transport::kTcp;
  Engine e = Make(o);
  FanIn(e, FanInMemory::kHeap);
  for (auto& s : e.Servers()) {
    EXPECT_TRUE(s.connected);
    EXPECT_FALSE(s.shm);
  }
  EXPECT_EQ(client::LiveServerLinks(), 3u);
}

TEST_F(EngineIntegration, SixtyFourThreadsOverShm) {
  Engine e = Make(Options());  // auto: same host, so shared memory moves over shm
  FanIn(e, FanInMemory::kShared);
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

// The number after "name": inside the object "object": in a JSON body (0
// if absent): "active" of "sessions", not some other "active".
uint64_t JsonNumberIn(const std::string& body, const std::string& object, const std::string& name) {
  const size_t at = body.find("\"" + object + "\":{");
  return at == std::string::npos ? 0 : JsonNumber(body.substr(at), name);
}

// What a session holds on the server, from /v1/status.
struct ServerHolds {
  uint64_t sessions = 0, connections = 0, peers = 0;
  bool operator==(const ServerHolds&) const = default;
};
std::ostream& operator<<(std::ostream& os, const ServerHolds& h) {
  return os << "{sessions " << h.sessions << ", connections " << h.connections << ", rdma peers "
            << h.peers << "}";
}

class RdmaRail : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = StartServer({}); !why.empty()) GTEST_SKIP() << why;
  }
  // (Re)starts the server with rdma.provider=ofi and `extra` arguments;
  // returns why it has no rdma rail (empty: it has).
  std::string StartServer(std::vector<std::string> extra) {
    server_.reset();
    std::vector<std::string> args = {"--set", "rdma.provider=ofi"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<Server>(dir_.path().string(), std::move(args));
    std::string health;
    for (int i = 0; i < 100 && health.empty(); ++i) {  // the admin API comes up after the port
      health = AdminGet(server_->admin_port(), "/v1/health");
      if (health.empty()) std::this_thread::sleep_for(50ms);
    }
    if (health.find("\"rdma_active\":true") == std::string::npos)
      return "the server opened no rdma rail (libfabric's tcp provider missing?): " + health;
    return "";
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
  ServerHolds Holds() const {
    const std::string st = AdminGet(server_->admin_port(), "/v1/status");
    return {JsonNumberIn(st, "sessions", "active"), JsonNumberIn(st, "connections", "open"),
            JsonNumber(st, "peers")};
  }
  // `value` stored under `key` by a plain tcp connection.
  static void PutOverTcp(const client::ConnectionOptions& opts, const std::string& key,
                         const std::vector<std::byte>& value) {
    auto tcp = client::Connection::Connect(opts);
    ASSERT_TRUE(tcp) << tcp.error().message();
    client::PutBatch b;
    b.entries.push_back({key, value});
    auto put = tcp->Put(std::move(b));
    ASSERT_TRUE(put && (*put)[0] == proto::StatusCode::kOk);
  }
  // Holds() once it equals `want`, or after a minute of waiting for it.
  ServerHolds HoldsOnceBackTo(const ServerHolds& want) const {
    ServerHolds h = Holds();
    for (int i = 0; i < 600 && !(h == want); ++i) {
      std::this_thread::sleep_for(100ms);
      h = Holds();
    }
    return h;
  }
  // A value put and got back over rdma by a fresh engine, every byte
  // checked; the server's counters must show both ways.
  void ServesANewClientOverRdma(const std::string& key) {
    auto e = Engine::Create(Options(Transport::kRdma));
    ASSERT_TRUE(e) << e.error().message;
    constexpr size_t kSize = 3 * 1024 * 1024 + 5;
    std::vector<std::byte> v(kSize), back(kSize);
    Fill(v.data(), kSize, 9, 9);
    const auto [w0, r0] = RdmaBytes();
    const PutEntry p{key, v.data(), kSize};
    auto put = e->BatchPut({&p, 1});
    ASSERT_TRUE(put.ok()) << CodeName(put.entries[0]) << ": " << put.outcome.message;
    GetEntry g{key, back.data(), kSize};
    auto got = e->BatchGet({&g, 1});
    ASSERT_TRUE(got.ok()) << CodeName(got.entries[0].status) << ": " << got.outcome.message;
    EXPECT_EQ(got.entries[0].length, kSize);
    EXPECT_TRUE(Check(back.data(), kSize, 9, 9));
    const auto [w1, r1] = RdmaBytes();
    EXPECT_EQ(r1 - r0, kSize);
    EXPECT_EQ(w1 - w0, kSize);
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

// A process that makes engines, uses them and drops them, then makes the
// next ones (a Python program opening and closing engines): each round gets
// the process's fabric afresh and moves its bytes over rdma. Two engines
// with transport rdma share a link, a third with auto has its own.
TEST_F(RdmaRail, EnginesMadeOneRoundAfterAnotherEachMoveOverRdma) {
  EngineOptions with_auto = Options(Transport::kAuto);
  with_auto.rdma_provider = "tcp;ofi_rxm";
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    {
      std::vector<Engine> engines;
      for (const EngineOptions& o : {Options(Transport::kRdma), Options(Transport::kRdma), with_auto}) {
        auto e = Engine::Create(o);
        ASSERT_TRUE(e) << e.error().message;
        engines.push_back(std::move(*e));
      }
      EXPECT_EQ(client::ProcessFabric::Open(), 1u);
      for (size_t i = 0; i < engines.size(); ++i) {
        std::string v(300000, static_cast<char>('a' + round));
        const std::string key = "rdma/round/" + std::to_string(round) + "/" + std::to_string(i);
        const auto [w0, r0] = RdmaBytes();
        std::vector<std::byte> mem(v.size());
        auto reg = engines[i].RegisterMemory(mem.data(), mem.size());
        ASSERT_TRUE(reg) << reg.error().message;
        std::memcpy(mem.data(), v.data(), v.size());
        const PutEntry p{key, mem.data(), mem.size()};
        auto put = engines[i].BatchPut({&p, 1});
        ASSERT_TRUE(put.ok()) << CodeName(put.entries[0]) << ": " << put.outcome.message;
        std::memset(mem.data(), 0, mem.size());
        GetEntry g{key, mem.data(), mem.size()};
        ASSERT_TRUE(engines[i].BatchGet({&g, 1}).ok());
        EXPECT_EQ(std::memcmp(mem.data(), v.data(), v.size()), 0);
        const auto [w1, r1] = RdmaBytes();
        EXPECT_EQ(r1 - r0, v.size()) << "engine " << i << ": the put did not move over rdma";
        EXPECT_EQ(w1 - w0, v.size()) << "engine " << i << ": the get did not move over rdma";
      }
    }
    EXPECT_EQ(client::ProcessFabric::Open(), 0u);  // its engines were its last users
  }
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

TEST_F(RdmaRail, SixtyFourThreadsOverRdma) {
  // The three servers of the tcp and shm fan-ins have 1 GiB each; this one
  // holds all 480,000 values alone.
  if (const std::string why = StartServer({"--memory", "3GiB"}); !why.empty()) GTEST_SKIP() << why;
  auto e = Engine::Create(Options(Transport::kRdma));
  ASSERT_TRUE(e) << e.error().message;
  const auto [w0, r0] = RdmaBytes();
  const auto tcp0 = RailBytes("tcp");
  const uint64_t bytes = FanIn(*e, FanInMemory::kRegistered);
  const auto [w1, r1] = RdmaBytes();
  // Every value byte crossed the rdma rail, both ways: READ from this
  // process by the puts, WRITTEN into it by the gets; none rode inline on
  // the control connection.
  EXPECT_EQ(r1 - r0, bytes);
  EXPECT_EQ(w1 - w0, bytes);
  EXPECT_EQ(RailBytes("tcp"), tcp0);
  // 64 threads, one endpoint: one peer, one session.
  EXPECT_EQ(Holds(), (ServerHolds{1, 1, 1}));
}

// The child of AClientKilledMidBatch...: an engine over rdma putting and
// getting 64 MiB batches of registered memory (four 16 MiB requests each)
// until it is killed; it writes one byte to `ready` as its first batch
// starts. Never returns into the test framework.
[[noreturn]] void PutAndGetOverRdmaUntilKilled(EngineOptions o, int ready) {
  auto e = Engine::Create(std::move(o));
  if (!e) _exit(2);
  constexpr int kN = 64;
  constexpr size_t kSize = 1 << 20;
  std::vector<std::byte> src(kN * kSize), dst(kN * kSize);
  for (int i = 0; i < kN; ++i) Fill(src.data() + i * kSize, kSize, 5, i);
  if (!e->RegisterMemory(src.data(), src.size()) || !e->RegisterMemory(dst.data(), dst.size()))
    _exit(3);
  std::vector<std::string> keys;
  for (int i = 0; i < kN; ++i) keys.push_back("rdma/killed/" + std::to_string(i));
  std::vector<PutEntry> puts;
  std::vector<GetEntry> gets;
  for (int i = 0; i < kN; ++i) {
    puts.push_back({keys[i], src.data() + i * kSize, kSize});
    gets.push_back({keys[i], dst.data() + i * kSize, kSize});
  }
  for (bool told = false;; told = true) {
    if (!told && ::write(ready, "x", 1) != 1) _exit(4);
    if (!e->BatchPut(puts).ok()) _exit(5);
    if (!e->BatchGet(gets).ok()) _exit(6);
  }
}

TEST_F(RdmaRail, AClientKilledMidBatchLeavesTheServerAsItWas) {
  const ServerHolds baseline = Holds();
  const uint64_t read_before = RdmaBytes().second;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  // Forked before this process has an engine (or any thread besides this
  // one), so the child starts its own client library from scratch.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    PutAndGetOverRdmaUntilKilled(Options(Transport::kRdma), ready[1]);
  }
  ::close(ready[1]);
  char c;
  const bool started = ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  // Its batches are moving once the server has READ some of its bytes; it
  // runs batch after batch, so the kill lands in one.
  bool moving = false;
  for (int i = 0; started && i < 600 && !moving; ++i) {
    moving = RdmaBytes().second > read_before;
    if (!moving) std::this_thread::sleep_for(10ms);
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(started) << "the child exited early, status " << status;
  ASSERT_TRUE(moving) << "no bytes moved over rdma from the child";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child exited by itself (status " << status << ") before it was killed";

  // Its session, connection and rdma peer are released.
  EXPECT_EQ(HoldsOnceBackTo(baseline), baseline);
  // The server goes on serving over rdma.
  ServesANewClientOverRdma("rdma/after-kill");
}

// A fabric endpoint of the test's own whose completions run on a loop that
// the test steps by hand. libfabric's tcp provider moves bytes only while
// its completion queue is read, also the bytes a server WRITEs into this
// process, so between two Step()s nothing lands in this process's memory.
class SteppedFabric {
 public:
  static std::unique_ptr<SteppedFabric> Open(std::string* why) {
    auto f = std::unique_ptr<SteppedFabric>(new SteppedFabric);
    rdma::FabricOptions o;
    o.ofi_provider = "tcp;ofi_rxm";
    o.node = "127.0.0.1";
    auto fab = rdma::Fabric::Open(o, f->loop_.get_executor(), why);
    if (!fab) return nullptr;
    f->fabric_ = std::move(*fab);
    return f;
  }
  ~SteppedFabric() {
    bool stopped = false;
    boost::asio::co_spawn(loop_, fabric_->Stop(), [&](std::exception_ptr) { stopped = true; });
    StepUntil([&] { return stopped; });
    fabric_.reset();
  }
  // Runs one completion handler of the fabric, or waits 10 ms for one.
  void Step() {
    if (loop_.stopped()) loop_.restart();
    loop_.run_one_for(10ms);
  }
  // Steps until `done()`, or for a minute at most; returns done().
  template <class F>
  bool StepUntil(F done) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!done() && std::chrono::steady_clock::now() < deadline) Step();
    return done();
  }
  rdma::Fabric& fabric() { return *fabric_; }
  // What a Connection offers at Attach.
  std::string endpoint() const { return fabric_->provider_name() + "|" + fabric_->address(); }

 private:
  SteppedFabric() = default;
  boost::asio::io_context loop_;
  std::unique_ptr<rdma::Fabric> fabric_;
};

// A request's reply, delivered on the connection's I/O thread.
template <class T>
class Reply {
 public:
  client::Callback<T> Callback() {
    return [this](Result<T> r) {
      std::lock_guard lock(mu_);
      result_.emplace(std::move(r));
    };
  }
  bool arrived() const {
    std::lock_guard lock(mu_);
    return result_.has_value();
  }
  Result<T> Take() {
    std::lock_guard lock(mu_);
    return std::move(*result_);
  }

 private:
  mutable std::mutex mu_;
  std::optional<Result<T>> result_;
};

TEST_F(RdmaRail, ARegistrationWithdrawnMidRequestFailsItsEntryAndTheServerGoesOn) {
  // One piece (memory.block_size, 2 MiB) posted to a client at a time: the
  // server posts a value's second piece only once the first has landed,
  // which needs this process to step its fabric.
  if (const std::string why = StartServer({"--set", "rdma.max_inflight_per_peer=1"}); !why.empty())
    GTEST_SKIP() << why;
  const ServerHolds baseline = Holds();
  constexpr size_t kPiece = 2 << 20;
  constexpr size_t kSize = 4 * kPiece;
  std::vector<std::byte> value(kSize);
  Fill(value.data(), kSize, 7, 7);
  auto opts = client::MakeConnectionOptions(server_->address(), "");
  ASSERT_TRUE(opts) << opts.error().message();
  opts->request_timeout = client::Duration(60000);
  {
    auto tcp = client::Connection::Connect(*opts);
    ASSERT_TRUE(tcp) << tcp.error().message();
    client::PutBatch b;
    b.entries.push_back({"rdma/withdrawn", value});  // copied into the request
    auto put = tcp->Put(std::move(b));
    ASSERT_TRUE(put && (*put)[0] == proto::StatusCode::kOk);
  }

  std::string why;
  {
    // A get into registered memory whose registration is withdrawn once the
    // value's first piece is in: the rest of the value has nowhere to go.
    auto fabric = SteppedFabric::Open(&why);
    ASSERT_TRUE(fabric) << why;
    auto ropts = *opts;
    ropts.rdma_endpoint = fabric->endpoint();
    auto conn = client::Connection::Connect(ropts);
    ASSERT_TRUE(conn) << conn.error().message();
    ASSERT_TRUE(conn->attach_info().rails & proto::kRailRdma);
    // Poisoned so that the first piece's last byte shows when it lands.
    std::vector<std::byte> dest(kSize, ~value[kPiece - 1]);
    auto mr = fabric->fabric().Register(dest.data(), kSize, rdma::access::kAll);
    ASSERT_TRUE(mr) << mr.error().message();
    Reply<std::vector<client::GetResult>> reply;
    std::vector<client::RdmaGetEntry> get;
    get.push_back({"rdma/withdrawn", 0, 0, dest, (*mr)->RemoteAddress(dest.data()),
                   static_cast<uint32_t>((*mr)->key()), 0});
    conn->AsyncGetRdma(std::move(get), nullptr, client::Duration(0), reply.Callback());
    auto first_piece_in = [&] {
      return dest[kPiece - 1] == value[kPiece - 1] &&
             std::memcmp(dest.data(), value.data(), kPiece) == 0;
    };
    fabric->StepUntil([&] { return first_piece_in() || reply.arrived(); });
    ASSERT_TRUE(first_piece_in()) << "the value's first piece never arrived";
    ASSERT_FALSE(reply.arrived()) << "the whole value arrived before the withdrawal";
    mr->reset();  // withdrawn mid-request
    ASSERT_TRUE(fabric->StepUntil([&] { return reply.arrived(); }))
        << "the request never completed";
    auto r = reply.Take();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ((*r)[0].status, proto::StatusCode::kBadRegion) << proto::StatusName((*r)[0].status);
    EXPECT_EQ((*r)[0].length, 0u);
    // The session's control connection still answers.
    EXPECT_TRUE(conn->Ping());
  }
  {
    // A put from registered memory withdrawn before the request: the entry
    // fails, and no value is stored under its key.
    auto fabric = SteppedFabric::Open(&why);
    ASSERT_TRUE(fabric) << why;
    auto ropts = *opts;
    ropts.rdma_endpoint = fabric->endpoint();
    auto conn = client::Connection::Connect(ropts);
    ASSERT_TRUE(conn) << conn.error().message();
    auto mr = fabric->fabric().Register(value.data(), kSize, rdma::access::kAll);
    ASSERT_TRUE(mr) << mr.error().message();
    const uint64_t address = (*mr)->RemoteAddress(value.data());
    const auto key = static_cast<uint32_t>((*mr)->key());
    mr->reset();
    Reply<std::vector<proto::StatusCode>> reply;
    std::vector<client::RdmaPutEntry> put;
    put.push_back({"rdma/never-stored", value.data(), kSize, address, key});
    conn->AsyncPutRdma(std::move(put), nullptr, client::Duration(0), reply.Callback());
    ASSERT_TRUE(fabric->StepUntil([&] { return reply.arrived(); }))
        << "the request never completed";
    auto r = reply.Take();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ((*r)[0], proto::StatusCode::kBadRegion) << proto::StatusName((*r)[0]);
    auto x = conn->Exists({"rdma/never-stored"});
    ASSERT_TRUE(x) << x.error().message();
    EXPECT_EQ((*x)[0].status, proto::StatusCode::kNotFound);
  }

  // Both sessions are gone with their connections; the server serves a new
  // client over rdma, and the value read mid-withdrawal is intact.
  EXPECT_EQ(HoldsOnceBackTo(baseline), baseline);
  ServesANewClientOverRdma("rdma/after-withdrawal");
  auto e = Engine::Create(Options(Transport::kRdma));
  ASSERT_TRUE(e) << e.error().message;
  std::vector<std::byte> back(kSize);
  GetEntry g{"rdma/withdrawn", back.data(), kSize};
  auto got = e->BatchGet({&g, 1});
  ASSERT_TRUE(got.ok()) << CodeName(got.entries[0].status);
  EXPECT_EQ(std::memcmp(back.data(), value.data(), kSize), 0);
}

// A value larger than the server may stage for one request
// (limits.max_buffered_bytes_per_connection, 4 MiB here) moves a stretch at a
// time, both ways, from memory and from a drive, every byte checked.
TEST_F(RdmaRail, ValuesLargerThanTheStageMoveAStretchAtATime) {
  constexpr size_t kSize = (10 << 20) + 7;  // three stretches, the last not whole pieces
  for (const char* mode : {"memory", "file"}) {
    SCOPED_TRACE(mode);
    if (const std::string why =
            StartServer({"--set", std::string("storage.mode=") + mode, "--set",
                         "limits.max_buffered_bytes_per_connection=4MiB"});
        !why.empty())
      GTEST_SKIP() << why;
    auto e = Engine::Create(Options(Transport::kRdma));
    ASSERT_TRUE(e) << e.error().message;
    // Registered memory, named in place.
    std::vector<std::byte> src(kSize), dst(kSize);
    Fill(src.data(), kSize, 3, 1);
    auto h1 = e->RegisterMemory(src.data(), src.size());
    auto h2 = e->RegisterMemory(dst.data(), dst.size());
    ASSERT_TRUE(h1 && h2);
    const auto [w0, r0] = RdmaBytes();
    const PutEntry p{"rdma/large", src.data(), kSize};
    auto put = e->BatchPut({&p, 1});
    ASSERT_TRUE(put.ok()) << CodeName(put.entries[0]) << ": " << put.outcome.message;
    GetEntry g{"rdma/large", dst.data(), kSize};
    auto got = e->BatchGet({&g, 1});
    ASSERT_TRUE(got.ok()) << CodeName(got.entries[0].status) << ": " << got.outcome.message;
    EXPECT_EQ(got.entries[0].length, kSize);
    EXPECT_TRUE(Check(dst.data(), kSize, 3, 1));
    // Unregistered memory (the bounce pool), and a range that starts inside
    // a piece: its piece sums are taken by the server as it stages.
    std::vector<std::byte> plain(kSize), back(kSize);
    Fill(plain.data(), kSize, 4, 2);
    const PutEntry q{"rdma/large-plain", plain.data(), kSize};
    ASSERT_TRUE(e->BatchPut({&q, 1}).ok());
    constexpr size_t kFrom = 4096 + 5, kLen = 9 << 20;
    GetEntry r{"rdma/large-plain", back.data(), kLen};
    r.offset = kFrom;
    r.length = kLen;
    auto range = e->BatchGet({&r, 1});
    ASSERT_TRUE(range.ok()) << CodeName(range.entries[0].status);
    EXPECT_EQ(range.entries[0].length, kLen);
    EXPECT_EQ(std::memcmp(back.data(), plain.data() + kFrom, kLen), 0);
    const auto [w1, r1] = RdmaBytes();
    EXPECT_EQ(r1 - r0, 2 * kSize);          // both puts READ from this process
    EXPECT_EQ(w1 - w0, kSize + kLen);      // both gets WRITTEN into it
  }

  // Piece sums that do not match the registered bytes (taken from a copy
  // with one byte changed, in the first stretch, then in the last): the put
  // fails whole and nothing is stored under the key.
  std::vector<std::byte> value(kSize);
  Fill(value.data(), kSize, 5, 3);
  auto opts = client::MakeConnectionOptions(server_->address(), "");
  ASSERT_TRUE(opts) << opts.error().message();
  std::string why;
  auto fabric = SteppedFabric::Open(&why);
  ASSERT_TRUE(fabric) << why;
  opts->rdma_endpoint = fabric->endpoint();
  auto conn = client::Connection::Connect(*opts);
  ASSERT_TRUE(conn) << conn.error().message();
  auto mr = fabric->fabric().Register(value.data(), kSize, rdma::access::kAll);
  ASSERT_TRUE(mr) << mr.error().message();
  for (const size_t at : {size_t{100}, kSize - 100}) {
    std::vector<std::byte> summed = value;
    summed[at] ^= std::byte{1};
    Reply<std::vector<proto::StatusCode>> reply;
    std::vector<client::RdmaPutEntry> put;
    put.push_back({"rdma/large-bad", summed.data(), kSize, (*mr)->RemoteAddress(value.data()),
                   static_cast<uint32_t>((*mr)->key())});
    conn->AsyncPutRdma(std::move(put), nullptr, client::Duration(0), reply.Callback());
    ASSERT_TRUE(fabric->StepUntil([&] { return reply.arrived(); })) << "the put never completed";
    auto res = reply.Take();
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ((*res)[0], proto::StatusCode::kChecksumMismatch)
        << "byte " << at << ": " << proto::StatusName((*res)[0]);
    auto x = conn->Exists({"rdma/large-bad"});
    ASSERT_TRUE(x) << x.error().message();
    EXPECT_EQ((*x)[0].status, proto::StatusCode::kNotFound) << "byte " << at;
  }
}

// A client whose fabric stops making progress (a process stopped in a
// debugger, a wedged progress thread): with libfabric's tcp provider the
// server's WRITEs into it never complete. Neither its connection closing
// nor the session's transfer bound may leave the server holding it.
TEST_F(RdmaRail, AClientWhoseFabricStopsIsLetGoWhenItsConnectionCloses) {
  const ServerHolds baseline = Holds();
  constexpr size_t kSize = 8 << 20;  // four pieces, more than loopback buffers hold unread
  std::vector<std::byte> value(kSize);
  Fill(value.data(), kSize, 11, 11);
  auto opts = client::MakeConnectionOptions(server_->address(), "");
  ASSERT_TRUE(opts) << opts.error().message();
  ASSERT_NO_FATAL_FAILURE(PutOverTcp(*opts, "rdma/stalled", value));
  std::string why;
  auto fabric = SteppedFabric::Open(&why);
  ASSERT_TRUE(fabric) << why;
  std::vector<std::byte> dest(kSize);
  auto mr = fabric->fabric().Register(dest.data(), kSize, rdma::access::kAll);
  ASSERT_TRUE(mr) << mr.error().message();
  Reply<std::vector<client::GetResult>> reply;
  {
    auto ropts = *opts;
    ropts.rdma_endpoint = fabric->endpoint();
    auto conn = client::Connection::Connect(ropts);
    ASSERT_TRUE(conn) << conn.error().message();
    ASSERT_TRUE(conn->attach_info().rails & proto::kRailRdma);
    std::vector<client::RdmaGetEntry> get;
    get.push_back({"rdma/stalled", 0, 0, dest, (*mr)->RemoteAddress(dest.data()),
                   static_cast<uint32_t>((*mr)->key()), 0});
    conn->AsyncGetRdma(std::move(get), nullptr, client::Duration(0), reply.Callback());
    // The fabric is never stepped: the server's WRITEs stay posted. Once the
    // server holds the peer and its request, the connection closes.
    for (int i = 0; i < 100 && Holds().peers == baseline.peers; ++i) std::this_thread::sleep_for(20ms);
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(reply.arrived());
  }
  EXPECT_EQ(HoldsOnceBackTo(baseline), baseline)
      << "the server still holds the session of a closed connection whose fabric stopped";

  // A put of 1 MiB from a client that never polls its fabric, whose
  // endpoint then closes, and then its connection: the server's READ was
  // posted to an endpoint that never accepted its connection.
  {
    auto quiet = SteppedFabric::Open(&why);
    ASSERT_TRUE(quiet) << why;
    std::vector<std::byte> src(1 << 20);
    Fill(src.data(), src.size(), 13, 13);
    auto src_mr = quiet->fabric().Register(src.data(), src.size(), rdma::access::kAll);
    ASSERT_TRUE(src_mr) << src_mr.error().message();
    Reply<std::vector<proto::StatusCode>> put_reply;  // outlives the connection that answers it
    auto ropts = *opts;
    ropts.rdma_endpoint = quiet->endpoint();
    auto conn = client::Connection::Connect(ropts);
    ASSERT_TRUE(conn) << conn.error().message();
    std::vector<client::RdmaPutEntry> put;
    put.push_back({"rdma/stalled-put", src.data(), src.size(), (*src_mr)->RemoteAddress(src.data()),
                   static_cast<uint32_t>((*src_mr)->key())});
    conn->AsyncPutRdma(std::move(put), nullptr, client::Duration(0), put_reply.Callback());
    std::this_thread::sleep_for(500ms);
    src_mr->reset();
    quiet.reset();  // the endpoint closes; the connection after it
  }
  EXPECT_EQ(HoldsOnceBackTo(baseline), baseline)
      << "the server still holds the session of a put whose client endpoint closed";
  ServesANewClientOverRdma("rdma/after-stall");
}

TEST_F(RdmaRail, ASessionWhoseTransfersMakeNoProgressIsClosedAfterTheTransferTimeout) {
  if (const std::string why = StartServer({"--set", "rdma.transfer_timeout=1s"}); !why.empty())
    GTEST_SKIP() << why;
  const ServerHolds baseline = Holds();
  constexpr size_t kSize = 8 << 20;
  std::vector<std::byte> value(kSize);
  Fill(value.data(), kSize, 12, 12);
  auto opts = client::MakeConnectionOptions(server_->address(), "");
  ASSERT_TRUE(opts) << opts.error().message();
  ASSERT_NO_FATAL_FAILURE(PutOverTcp(*opts, "rdma/stalled", value));
  std::string why;
  auto fabric = SteppedFabric::Open(&why);
  ASSERT_TRUE(fabric) << why;
  std::vector<std::byte> dest(kSize);
  auto mr = fabric->fabric().Register(dest.data(), kSize, rdma::access::kAll);
  ASSERT_TRUE(mr) << mr.error().message();
  auto ropts = *opts;
  ropts.rdma_endpoint = fabric->endpoint();
  auto conn = client::Connection::Connect(ropts);
  ASSERT_TRUE(conn) << conn.error().message();
  ASSERT_TRUE(conn->attach_info().rails & proto::kRailRdma);
  Reply<std::vector<client::GetResult>> reply;
  std::vector<client::RdmaGetEntry> get;
  get.push_back({"rdma/stalled", 0, 0, dest, (*mr)->RemoteAddress(dest.data()),
                 static_cast<uint32_t>((*mr)->key()), 0});
  conn->AsyncGetRdma(std::move(get), nullptr, client::Duration(0), reply.Callback());
  // The connection stays open on this side, the fabric is never stepped:
  // about a second later the server gives the session up and closes it.
  for (int i = 0; i < 600 && !reply.arrived(); ++i) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(reply.arrived()) << "the server kept a session whose transfers made no progress";
  auto r = reply.Take();
  EXPECT_FALSE(r && (*r)[0].status == proto::StatusCode::kOk) << "a get that never landed succeeded";
  EXPECT_EQ(HoldsOnceBackTo(baseline), baseline);
  ServesANewClientOverRdma("rdma/after-timeout");
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
