#include "rail_tier.h"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "child.h"
#include "client/connection.h"
#include "client/error.h"
#include "client/options.h"
#include "client/shared_region.h"
#include "common/size.h"
#include "proto/auth.h"
#include "proto/messages.h"
#include "proto/status.h"
#include "raw_fabric.h"
#include "rdma/fabric_api.h"
#include "verify.h"

namespace memkv::bench {

namespace {

using Clock = std::chrono::steady_clock;
using proto::StatusCode;

constexpr uint32_t kMaxBatch = kMaxAutoBatch;       // also the goals' batch
constexpr uint64_t kRequestBytes = kAutoBatchBytes;  // what an auto batch moves
constexpr uint32_t kSampleEvery = 16;           // verify sample: one request in 16

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
constexpr double kGiB = double(1ull << 30);

double GiBps(const RailRun& r) { return r.seconds > 0 ? r.bytes / r.seconds / kGiB : 0; }
double GiBps(const BaselineRun& r) { return r.seconds > 0 ? r.bytes / r.seconds / kGiB : 0; }
double EntriesPerS(const RailRun& r) { return r.seconds > 0 ? r.entries / r.seconds : 0; }
double EntriesPerS(const BaselineRun& r) { return r.seconds > 0 ? r.entries / r.seconds : 0; }

template <class R>
Spread SpreadOfRuns(const std::vector<R>& runs, double (*f)(const R&)) {
  std::vector<double> v;
  for (const R& r : runs) v.push_back(f(r));
  return SpreadOf(v);
}

std::string KeyOf(uint64_t size, uint64_t id) {
  return "rail/" + std::to_string(size) + "/" + std::to_string(id);
}
// A different value pattern for every size.
uint64_t SeedOf(uint64_t size) { return size * 0x9e37 + 11; }

// Whether a whole request was refused (the client would not send it, or the
// server answered it with a status) rather than lost: a refused size is
// reported as n/a and the run goes on; a lost connection is an error.
bool IsRefusal(const error_code& ec) {
  if (ec == client::errc::value_too_large_for_frame || ec == client::errc::bad_argument)
    return true;
  return ec.category() == client::status_category();
}

// A per-entry status that refuses the value for what it is (its size).
bool IsRefusal(StatusCode s) {
  return s == StatusCode::kTooLarge || s == StatusCode::kInvalidArgument;
}

std::string MemcpyId(uint64_t size, uint32_t batch) {
  return "memcpy/" + std::to_string(size) + "x" + std::to_string(batch);
}
std::string IperfId(uint64_t size) { return "iperf3/" + std::to_string(size); }
std::string RedisBenchmarkId(const std::string& op, uint64_t size, uint32_t batch, uint32_t conns) {
  return "redis-benchmark-" + std::string(op == "read" ? "get" : "set") + "/" + std::to_string(size) +
         "x" + std::to_string(batch) + "/c" + std::to_string(conns);
}

// The rdma rows' baseline: the raw libfabric loop (raw_fabric.h) over the
// rail's provider, posting what the server posts for that row: WRITEs into
// the client for reads, READs from it for writes, both for mixed; in pieces
// of memory.block_size (the default of the bench's own server) at most, as
// many in flight as the server's rdma.max_inflight_per_peer default.
constexpr const char* kRdmaProvider = "tcp;ofi_rxm";
constexpr uint64_t kRdmaPiece = 2ull << 20;
constexpr uint32_t kRdmaDepth = 64;
std::string FabricKind(const std::string& op) {
  return op == "read" ? "fi-write" : op == "write" ? "fi-read" : "fi-mixed";
}
std::string FabricId(const std::string& op, uint64_t size) {
  return FabricKind(op) + "/" + std::to_string(size);
}

std::string RedisKind(const std::string& op) {
  return op == "read" ? "redis-get" : op == "write" ? "redis-set" : "redis-mixed";
}
std::string RedisId(const std::string& op, uint64_t size, uint32_t batch, uint32_t conns) {
  return RedisKind(op) + "/" + std::to_string(size) + "x" + std::to_string(batch) + "/c" +
         std::to_string(conns);
}

// One server the bench talks to, with its connections (one per rail).
struct Target {
  std::string address;      // host:port
  std::string unix_socket;  // from Attach; empty when not on this host
  std::string auth_hex;     // empty: no key
  std::optional<client::Connection> tcp, shm, rdma;
  std::string shm_unavailable;   // why there is no shm connection
  std::string rdma_unavailable;  // why there is no rdma connection
};

// One client thread's buffers and keys for a point. Touched only by its
// thread while the point runs.
struct Worker {
  uint32_t index = 0;
  Target* target = nullptr;
  std::vector<std::string> keys;
  std::vector<uint64_t> ids;
  std::shared_ptr<std::vector<std::byte>> src;  // tcp: the values to put
  std::vector<std::byte> dst;                   // tcp: where gets land
  std::shared_ptr<client::SharedRegion> region;  // shm: values, then room for gets
  std::unique_ptr<rdma::MemoryRegion> src_mr, dst_mr;  // rdma: src and dst registered
  // This run's figures.
  RailRun run;
  std::vector<double> latencies;
  uint64_t verified = 0, verify_failures = 0, errors = 0;
  std::string first_error, refused;
  void Error(const std::string& e) {
    ++errors;
    if (first_error.empty()) first_error = e;
  }
};

class RailBench {
 public:
  RailBench(const RailTierOptions& o, Progress& p, RailTierResult& r) : o_(o), progress_(p), r_(r) {}
  ~RailBench() { Cleanup(); }

  Status Go();

 private:
  Status StartServers();
  Status ConnectTargets();
  Result<std::vector<Target>*> TargetsFor(bool auth);
  void PlanPoints();
  void PlanBaselines();
  void PrepareSize(uint64_t size);
  Status Populate(uint64_t size, uint32_t threads, uint32_t keys_per_thread, bool auth);
  void DeleteSize(uint64_t size, bool auth);
  void RunPoint(RailPoint& p, int run);
  void RunBaseline(BaselineSeries& b, int run);
  void RunRedis(BaselineSeries& b, BaselineRun& out);
  bool PrepareRedisSize(uint64_t size, uint32_t conns, uint32_t keys_per_thread, std::string& error);
  void ComputeRatios();
  void ComputeGoals();
  void Cleanup();

  std::string PointLabel(const RailPoint& p) const;
  // The end of our servers' logs (why a connection was lost); empty with
  // --servers.
  std::string ServerLogTail() const;

  const RailTierOptions& o_;
  Progress& progress_;
  RailTierResult& r_;
  std::string dir_;  // our temp dir (own servers)
  std::vector<ChildProcess> servers_;
  std::vector<std::string> registered_;
  std::vector<Target> targets_off_, targets_on_;
  // Per size: keys per thread and threads the points at that size need.
  std::map<uint64_t, std::pair<uint32_t, uint32_t>> key_space_;
  std::map<uint64_t, std::string> size_refused_;  // per auth-independent size
  std::set<std::pair<uint64_t, bool>> populated_;
  // Baselines each point owns (runs interleaved with its runs).
  std::map<size_t, std::vector<size_t>> owned_;
  std::optional<RedisServer> redis_;
  uint64_t redis_size_ = 0;
  std::set<uint64_t> redis_populated_;
  // The rdma rail: this process's one fabric endpoint (libfabric's tcp
  // provider on loopback), its completions on a loop of its own.
  boost::asio::io_context fabric_loop_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> fabric_work_;
  std::thread fabric_thread_;
  std::unique_ptr<rdma::Fabric> fabric_;
  std::string fabric_error_;
  bool OpenFabric();
  void CloseFabric();
};

bool RailBench::OpenFabric() {
  if (fabric_) return true;
  if (!fabric_error_.empty()) return false;
  rdma::FabricOptions f;
  f.ofi_provider = "tcp;ofi_rxm";
  f.node = "127.0.0.1";
  auto fab = rdma::Fabric::Open(f, fabric_loop_.get_executor(), &fabric_error_);
  if (!fab) {
    if (fabric_error_.empty()) fabric_error_ = fab.error().message();
    return false;
  }
  fabric_ = std::move(*fab);
  fabric_work_.emplace(fabric_loop_.get_executor());
  fabric_thread_ = std::thread([this] { fabric_loop_.run(); });
  return true;
}

void RailBench::CloseFabric() {
  if (!fabric_) return;
  std::promise<void> stopped;
  boost::asio::co_spawn(
      fabric_loop_,
      [this, &stopped]() -> boost::asio::awaitable<void> {
        co_await fabric_->Stop();
        stopped.set_value();
      },
      boost::asio::detached);
  stopped.get_future().wait();
  fabric_work_.reset();
  fabric_loop_.stop();
  fabric_thread_.join();
  fabric_.reset();
}

std::string RailBench::PointLabel(const RailPoint& p) const {
  return "memkv " + p.rail + " " + p.op + " " + SizeName(p.block_size) + " x" +
         std::to_string(p.batch) + ", " + std::to_string(p.threads) + " thread" +
         (p.threads == 1 ? "" : "s") + ", auth " + (p.auth ? "on" : "off");
}

std::string RailBench::ServerLogTail() const {
  std::string tail;
  for (const char* name : {"open.log", "auth.log"}) {
    std::ifstream in(dir_ + "/" + name);
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    std::string t = text.str();
    if (t.size() > 2000) t = "..." + t.substr(t.size() - 2000);
    if (!t.empty()) tail += std::string(name) + ": " + t;
  }
  return tail;
}

void RailBench::Cleanup() {
  for (auto* ts : {&targets_off_, &targets_on_})
    for (Target& t : *ts) {
      t.tcp.reset();
      t.shm.reset();
      t.rdma.reset();
    }
  CloseFabric();
  for (ChildProcess& c : servers_) c.Stop();
  servers_.clear();
  redis_.reset();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    for (const std::string& p : registered_) ForgetPath(p);
    registered_.clear();
    dir_.clear();
  }
}

Status RailBench::StartServers() {
  // $TMPDIR or /tmp; short, because a Unix socket path is (108 bytes at most).
  std::error_code tmp_ec;
  std::string tmpl = (std::filesystem::temp_directory_path(tmp_ec) / "memkv-bench-rail-XXXXXX").string();
  if (tmp_ec) tmpl = "/tmp/memkv-bench-rail-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return error_code(errno, boost::system::system_category());
  dir_ = tmpl;
  RegisterPath(dir_);
  registered_.push_back(dir_);
  // Working set: every key of the largest size's space, twice over (an
  // overwrite holds old and new values for a moment), and room to spare.
  uint64_t ws = 0;
  for (auto& [size, space] : key_space_)
    ws = std::max(ws, size * space.first * space.second);
  const uint64_t memory =
      o_.server_memory ? o_.server_memory : (2 * ws + (512ull << 20) + (1ull << 20) - 1) >> 20 << 20;
  for (bool auth : {false, true}) {
    if (std::find(o_.auth.begin(), o_.auth.end(), auth) == o_.auth.end()) continue;
    const std::string name = auth ? "auth" : "open";
    Target t;
    const std::string sock = dir_ + "/" + name + ".sock";
    const std::string log = dir_ + "/" + name + ".log";
    for (const std::string& p : {sock, log}) {
      RegisterPath(p);
      registered_.push_back(p);
    }
    if (auth) t.auth_hex = proto::AuthKey::Generate().ToHex();
    progress_.Begin("starting memkv server (" + name + ", " + FormatSize(memory) + ")");
    // Another process may take the port pair between the probe and the
    // server's bind: a server that exits at start is tried on another pair.
    std::optional<ChildProcess> child;
    std::string failure;
    for (int attempt = 0; attempt < 5 && !child; ++attempt) {
      const uint16_t port = FreePortPair();
      t.address = "127.0.0.1:" + std::to_string(port);
      std::vector<std::string> args = {o_.memkv_binary, "--log-level", "warn", "server",
                                       "--mode", "memory", "--memory", std::to_string(memory),
                                       "--address", t.address, "--unix-socket", sock};
      if (o_.server_threads) {
        args.push_back("--threads");
        args.push_back(std::to_string(o_.server_threads));
      }
      if (auth) {
        args.push_back("--set");
        args.push_back("network.auth_key=" + t.auth_hex);
      }
      if (std::find(o_.rails.begin(), o_.rails.end(), "rdma") != o_.rails.end()) {
        args.push_back("--set");
        args.push_back("rdma.provider=ofi");
      }
      std::string error;
      child = ChildProcess::Spawn(args, log, error, dir_);
      if (!child) {
        progress_.End("failed: " + error);
        return client::errc::connect_failed;
      }
      bool up = false;
      int status = 0;
      for (int i = 0; i < 200 && !up; ++i) {
        if (child->Exited(&status)) break;
        up = PortAccepts(port);
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (up) {
        std::string shown;
        for (const std::string& a : args)
          shown += (shown.empty() ? "" : " ") +
                   (a.rfind("network.auth_key=", 0) == 0 ? std::string("network.auth_key=<random>") : a);
        r_.server_commands.push_back(shown);
        break;
      }
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      failure = text.str();
      child.reset();  // stopped and reaped
    }
    if (!child) {
      progress_.End("failed: the server did not start; its log: " + failure);
      return client::errc::connect_failed;
    }
    progress_.End("listening on " + t.address + " and " + sock);
    servers_.push_back(std::move(*child));
    (auth ? targets_on_ : targets_off_).push_back(std::move(t));
  }
  return {};
}

Status RailBench::ConnectTargets() {
  const bool want_shm = std::find(o_.rails.begin(), o_.rails.end(), "shm") != o_.rails.end();
  const bool want_rdma = std::find(o_.rails.begin(), o_.rails.end(), "rdma") != o_.rails.end();
  for (auto* ts : {&targets_off_, &targets_on_}) {
    for (Target& t : *ts) {
      auto opts = client::MakeConnectionOptions(t.address, t.auth_hex);
      if (!opts) return opts.error();
      opts->request_timeout = std::chrono::milliseconds(120000);
      auto c = client::Connection::Connect(*opts);
      if (!c) {
        progress_.Note("memkv-bench: " + t.address + ": " + c.error().message());
        return c.error();
      }
      r_.memkv_version = "protocol " + std::to_string(c->attach_info().version);
      t.unix_socket = c->attach_info().unix_socket;
      t.tcp.emplace(std::move(*c));
      if (want_rdma) {
        if (!OpenFabric()) {
          t.rdma_unavailable = "no fabric: " + fabric_error_;
        } else {
          auto ropts = *opts;
          ropts.rdma_endpoint = fabric_->provider_name() + "|" + fabric_->address();
          auto r = client::Connection::Connect(ropts);
          if (!r) {
            t.rdma_unavailable = r.error().message();
          } else if (!(r->attach_info().rails & proto::kRailRdma)) {
            t.rdma_unavailable = "the server took no rdma endpoint (see its log)";
          } else {
            t.rdma.emplace(std::move(*r));
          }
        }
      }
      if (!want_shm) continue;
      if (t.unix_socket.empty()) {
        t.shm_unavailable = t.address + " is not on this host (no Unix socket in its Attach reply)";
        continue;
      }
      opts->address = t.unix_socket;
      auto s = client::Connection::Connect(*opts);
      if (!s) {
        t.shm_unavailable = t.unix_socket + ": " + s.error().message();
        continue;
      }
      t.shm.emplace(std::move(*s));
    }
  }
  return {};
}

Result<std::vector<Target>*> RailBench::TargetsFor(bool auth) {
  auto* ts = auth ? &targets_on_ : &targets_off_;
  if (ts->empty()) return client::errc::not_attached;
  return ts;
}

void RailBench::PlanPoints() {
  std::vector<uint32_t> batches = o_.batches;
  const uint32_t min_threads = *std::min_element(o_.threads.begin(), o_.threads.end());
  for (uint64_t size : o_.sizes) {
    std::vector<std::pair<uint32_t, bool>> size_batches;  // (batch, goal point)
    for (uint32_t b : batches) {
      const uint32_t batch = b ? b : AutoBatch(size);
      if (std::none_of(size_batches.begin(), size_batches.end(),
                       [&](auto& x) { return x.first == batch; }))
        size_batches.push_back({batch, false});
    }
    if (o_.goal_points && size == (4u << 10) &&
        std::none_of(size_batches.begin(), size_batches.end(),
                     [](auto& x) { return x.first == kMaxBatch; }))
      size_batches.push_back({kMaxBatch, true});
    for (auto [batch, goal] : size_batches) {
      for (uint32_t threads : o_.threads) {
        if (goal && threads != min_threads) continue;
        for (const std::string& rail : o_.rails)
          for (const std::string& op : o_.ops)
            for (bool auth : o_.auth) {
              RailPoint p;
              p.rail = rail;
              p.op = op;
              p.block_size = size;
              p.threads = threads;
              p.batch = batch;
              p.auth = auth;
              p.goal_point = goal;
              r_.points.push_back(p);
              auto& space = key_space_[size];
              space.first = std::max(space.first, batch);
              space.second = std::max(space.second, threads);
            }
      }
    }
  }
}

void RailBench::PlanBaselines() {
  if (!o_.baseline) return;
  auto find = [&](const std::string& id) -> std::optional<size_t> {
    for (size_t i = 0; i < r_.baselines.size(); ++i)
      if (r_.baselines[i].id == id) return i;
    return std::nullopt;
  };
  const bool any_off = std::find(o_.auth.begin(), o_.auth.end(), false) != o_.auth.end();
  std::string redis_skip, iperf_skip;
  if (r_.redis_version.empty())
    redis_skip = "redis-server is not installed (Debian: apt-get install redis-server)";
  if (r_.iperf3_version.empty())
    iperf_skip = "iperf3 is not installed (Debian: apt-get install iperf3)";
  for (size_t i = 0; i < r_.points.size(); ++i) {
    const RailPoint& p = r_.points[i];
    if (p.auth && any_off) continue;  // baselines beside the auth-off runs
    auto add = [&](BaselineSeries b) {
      if (find(b.id)) return;
      owned_[i].push_back(r_.baselines.size());
      r_.baselines.push_back(std::move(b));
    };
    BaselineSeries m;
    m.id = MemcpyId(p.block_size, p.batch);
    m.kind = "memcpy";
    m.label = "memcpy " + SizeName(p.block_size) + " x" + std::to_string(p.batch) + ", 1 thread";
    m.block_size = p.block_size;
    m.batch = p.batch;
    add(m);
    if (p.rail == "rdma") {
      BaselineSeries f;
      f.id = FabricId(p.op, p.block_size);
      f.kind = FabricKind(p.op);
      const uint64_t piece = std::min(p.block_size, kRdmaPiece);
      f.label = std::string("raw ") +
                (p.op == "read"    ? "fi_writemsg"
                 : p.op == "write" ? "fi_readmsg"
                                   : "fi_write+read") +
                " " + SizeName(p.block_size) +
                (piece < p.block_size ? " (" + SizeName(piece) + " ops)" : "") + ", depth " +
                std::to_string(kRdmaDepth) + ", " + kRdmaProvider;
      f.block_size = p.block_size;
      add(f);
    }
    if (p.rail == "tcp") {
      // One TCP stream writing blocks of the point's size (-l), its first
      // second left out (-O 1).
      BaselineSeries b;
      b.id = IperfId(p.block_size);
      b.kind = "iperf3";
      b.label = "iperf3 -l " + SizeName(Iperf3Block(p.block_size)) + " -O 1, 1 TCP stream over loopback";
      b.block_size = p.block_size;
      b.skipped = iperf_skip;
      add(b);
    }
    BaselineSeries rd;
    rd.id = RedisId(p.op, p.block_size, p.batch, p.threads);
    rd.kind = RedisKind(p.op);
    rd.label = std::string("Redis ") + (p.op == "read" ? "GET" : p.op == "write" ? "SET" : "GET+SET") +
               " " + SizeName(p.block_size) + ", pipeline " + std::to_string(p.batch) + ", " +
               std::to_string(p.threads) + " connection" + (p.threads == 1 ? "" : "s");
    rd.block_size = p.block_size;
    rd.batch = p.batch;
    rd.connections = p.threads;
    rd.skipped = redis_skip;
    add(rd);
    if (p.op == "read" || p.op == "write") {
      // The same figure from redis-benchmark, the client Redis users run.
      BaselineSeries rb = rd;
      rb.id = RedisBenchmarkId(p.op, p.block_size, p.batch, p.threads);
      rb.kind = std::string("redis-benchmark-") + (p.op == "read" ? "get" : "set");
      rb.label = std::string("redis-benchmark ") + (p.op == "read" ? "GET" : "SET") + " " +
                 SizeName(p.block_size) + ", -P " + std::to_string(p.batch) + " -c " +
                 std::to_string(p.threads);
      if (rb.skipped.empty() && !RedisBenchmarkInstalled())
        rb.skipped = "redis-benchmark is not installed (Debian: apt-get install redis-tools)";
      add(rb);
    }
  }
}

void RailBench::DeleteSize(uint64_t size, bool auth) {
  if (!populated_.count({size, auth})) return;
  populated_.erase({size, auth});
  auto ts = TargetsFor(auth);
  if (!ts) return;
  const auto [per_thread, threads] = key_space_[size];
  for (uint32_t t = 0; t < threads; ++t) {
    Target& target = (**ts)[t % (*ts)->size()];
    if (!target.tcp) continue;
    std::vector<std::string> keys;
    for (uint32_t i = 0; i < per_thread; ++i) {
      keys.push_back(KeyOf(size, uint64_t(t) * per_thread + i));
      if (keys.size() == kMaxBatch || i + 1 == per_thread) {
        (void)target.tcp->Delete(std::move(keys));
        keys.clear();
      }
    }
  }
}

Status RailBench::Populate(uint64_t size, uint32_t threads, uint32_t per_thread, bool auth) {
  auto ts = TargetsFor(auth);
  if (!ts) return ts.error();
  progress_.Begin("writing " + Thousands(uint64_t(threads) * per_thread) + " values of " +
                  SizeName(size) + " (auth " + (auth ? "on" : "off") + ")");
  const uint32_t chunk = std::max<uint32_t>(1, std::min<uint64_t>(kMaxBatch, kRequestBytes / size));
  std::vector<std::byte> buf;
  for (uint32_t t = 0; t < threads; ++t) {
    Target& target = (**ts)[t % (*ts)->size()];
    // Over shm when there is one (no frame limit on the value), else tcp.
    std::shared_ptr<client::SharedRegion> region;
    if (target.shm) {
      auto rg = client::SharedRegion::Create(uint64_t(chunk) * size, "memkv-bench-fill");
      if (rg && target.shm->RegisterRegion(*rg)) region = *rg;
    }
    for (uint32_t first = 0; first < per_thread; first += chunk) {
      const uint32_t n = std::min(chunk, per_thread - first);
      Result<std::vector<StatusCode>> put = client::errc::closed;
      if (region) {
        client::ShmPutBatch b{region, {}};
        for (uint32_t i = 0; i < n; ++i) {
          const uint64_t id = uint64_t(t) * per_thread + first + i;
          FillBlock(region->span().subspan(i * size, size), id, SeedOf(size));
          b.entries.push_back({KeyOf(size, id), i * size, size});
        }
        put = target.shm->PutShm(std::move(b));
      } else {
        buf.resize(n * size);
        client::PutBatch b;
        for (uint32_t i = 0; i < n; ++i) {
          const uint64_t id = uint64_t(t) * per_thread + first + i;
          std::span<std::byte> v(buf.data() + i * size, size);
          FillBlock(v, id, SeedOf(size));
          b.entries.push_back({KeyOf(size, id), v});
        }
        put = target.tcp->Put(std::move(b));
      }
      if (!put) {
        progress_.End("failed: " + put.error().message());
        if (region) (void)target.shm->ReleaseRegion(region);
        if (IsRefusal(put.error())) {
          size_refused_[size] = put.error().message();
          return {};
        }
        return put.error();
      }
      for (StatusCode s : *put)
        if (s != StatusCode::kOk) {
          progress_.End(std::string("failed: ") + proto::StatusName(s));
          if (region) (void)target.shm->ReleaseRegion(region);
          if (IsRefusal(s)) {
            size_refused_[size] = proto::StatusName(s);
            return {};
          }
          return client::make_status_error(s);
        }
      progress_.Update(double(t * per_thread + first + n) / (double(threads) * per_thread));
    }
    if (region) (void)target.shm->ReleaseRegion(region);
  }
  populated_.insert({size, auth});
  progress_.End("done");
  return {};
}

void RailBench::RunPoint(RailPoint& p, int run) {
  if (!p.refused.empty()) return;
  if (auto it = size_refused_.find(p.block_size); it != size_refused_.end()) {
    p.refused = "refused: " + it->second;
    return;
  }
  auto ts = TargetsFor(p.auth);
  if (!ts) {
    p.refused = "no server for auth " + std::string(p.auth ? "on" : "off");
    return;
  }
  const uint64_t size = p.block_size;
  const uint32_t per_thread = key_space_[size].first;
  const bool shm = p.rail == "shm";
  const bool over_rdma = p.rail == "rdma";
  const uint64_t bytes = uint64_t(p.batch) * size;
  const std::string label = PointLabel(p) + ", run " + std::to_string(run + 1) + "/" +
                            std::to_string(o_.runs);
  progress_.Begin(label);

  std::vector<Worker> workers(p.threads);
  for (uint32_t t = 0; t < p.threads; ++t) {
    Worker& w = workers[t];
    w.index = t;
    w.target = &(**ts)[t % (*ts)->size()];
    if (shm && !w.target->shm) {
      p.refused = "n/a: " + (w.target->shm_unavailable.empty() ? std::string("no shm connection")
                                                               : w.target->shm_unavailable);
      progress_.End(p.refused);
      return;
    }
    if (over_rdma && !w.target->rdma) {
      p.refused = "n/a: " + (w.target->rdma_unavailable.empty() ? std::string("no rdma connection")
                                                                : w.target->rdma_unavailable);
      progress_.End(p.refused);
      return;
    }
    for (uint32_t i = 0; i < p.batch; ++i) {
      w.ids.push_back(uint64_t(t) * per_thread + i);
      w.keys.push_back(KeyOf(size, w.ids.back()));
    }
    if (shm) {
      auto rg = client::SharedRegion::Create(2 * bytes, "memkv-bench");
      if (!rg) {
        p.refused = "n/a: cannot create a shared region of " + FormatSize(2 * bytes) + ": " +
                    rg.error().message();
        progress_.End(p.refused);
        return;
      }
      if (auto st = w.target->shm->RegisterRegion(*rg); !st) {
        p.refused = "n/a: cannot register a region: " + st.error().message();
        progress_.End(p.refused);
        for (Worker& x : workers)
          if (x.region) (void)x.target->shm->ReleaseRegion(x.region);
        return;
      }
      w.region = *rg;
      for (uint32_t i = 0; i < p.batch; ++i)
        FillBlock(w.region->span().subspan(i * size, size), w.ids[i], SeedOf(size));
    } else {
      w.src = std::make_shared<std::vector<std::byte>>(bytes);
      w.dst.assign(bytes, std::byte{0});
      for (uint32_t i = 0; i < p.batch; ++i)
        FillBlock(std::span(w.src->data() + i * size, size), w.ids[i], SeedOf(size));
      if (over_rdma) {  // registered once, as a program's KV buffers are
        auto a = fabric_->Register(w.src->data(), bytes, rdma::access::kAll);
        auto b = fabric_->Register(w.dst.data(), bytes, rdma::access::kAll);
        if (!a || !b) {
          p.refused = "n/a: cannot register " + FormatSize(bytes) + " with the fabric: " +
                      (!a ? a.error() : b.error()).message();
          progress_.End(p.refused);
          return;
        }
        w.src_mr = std::move(*a);
        w.dst_mr = std::move(*b);
      }
    }
  }

  std::atomic<uint64_t> moved{0};
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> done{0};
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o_.seconds));
  auto body = [&](Worker& w) {
    // At least one request, however late the thread starts on a busy machine.
    for (uint64_t k = 0; (k == 0 || Clock::now() < end) && !stop.load(std::memory_order_relaxed);
         ++k) {
      const bool put = p.op == "write" || (p.op == "mixed" && k % 2 == 1);
      const bool check = !put && (o_.verify_all || k % kSampleEvery == 0);
      std::span<std::byte> dest = shm ? w.region->span().subspan(bytes, bytes)
                                      : std::span<std::byte>(w.dst);
      if (check) std::memset(dest.data(), 0xa5, dest.size());  // a stale buffer cannot pass
      const auto t0 = Clock::now();
      error_code ec;
      std::vector<StatusCode> statuses;
      std::vector<client::GetResult> gets;
      if (over_rdma) {
        // The connection's asynchronous calls, waited for here.
        if (put) {
          std::vector<client::RdmaPutEntry> b;
          b.reserve(p.batch);
          for (uint32_t i = 0; i < p.batch; ++i) {
            const std::byte* v = w.src->data() + i * size;
            b.push_back({w.keys[i], v, size, w.src_mr->RemoteAddress(v),
                         static_cast<uint32_t>(w.src_mr->key())});
          }
          std::promise<Result<std::vector<StatusCode>>> pr;
          w.target->rdma->AsyncPutRdma(std::move(b), nullptr, client::Duration{0},
                                       [&pr](Result<std::vector<StatusCode>> r) {
                                         pr.set_value(std::move(r));
                                       });
          auto r = pr.get_future().get();
          if (r) statuses = std::move(*r); else ec = r.error();
        } else {
          std::vector<client::RdmaGetEntry> b;
          b.reserve(p.batch);
          for (uint32_t i = 0; i < p.batch; ++i) {
            std::byte* d = w.dst.data() + i * size;
            b.push_back({w.keys[i], 0, 0, {d, size}, w.dst_mr->RemoteAddress(d),
                         static_cast<uint32_t>(w.dst_mr->key()), 0});
          }
          std::promise<Result<std::vector<client::GetResult>>> pr;
          w.target->rdma->AsyncGetRdma(std::move(b), nullptr, client::Duration{0},
                                       [&pr](Result<std::vector<client::GetResult>> r) {
                                         pr.set_value(std::move(r));
                                       });
          auto r = pr.get_future().get();
          if (r) gets = std::move(*r); else ec = r.error();
        }
      } else if (put && shm) {
        client::ShmPutBatch b{w.region, {}};
        b.entries.reserve(p.batch);
        for (uint32_t i = 0; i < p.batch; ++i) b.entries.push_back({w.keys[i], i * size, size});
        auto r = w.target->shm->PutShm(std::move(b));
        if (r) statuses = std::move(*r); else ec = r.error();
      } else if (put) {
        client::PutBatch b;
        b.owner = w.src;
        b.entries.reserve(p.batch);
        for (uint32_t i = 0; i < p.batch; ++i)
          b.entries.push_back({w.keys[i], {w.src->data() + i * size, size}});
        auto r = w.target->tcp->Put(std::move(b));
        if (r) statuses = std::move(*r); else ec = r.error();
      } else if (shm) {
        client::ShmGetBatch b{w.region, {}};
        b.entries.reserve(p.batch);
        for (uint32_t i = 0; i < p.batch; ++i)
          b.entries.push_back({w.keys[i], 0, 0, bytes + i * size, size});
        auto r = w.target->shm->GetShm(std::move(b));
        if (r) gets = std::move(*r); else ec = r.error();
      } else {
        std::vector<client::GetEntry> b;
        b.reserve(p.batch);
        for (uint32_t i = 0; i < p.batch; ++i)
          b.push_back({w.keys[i], 0, 0, {w.dst.data() + i * size, size}});
        auto r = w.target->tcp->Get(std::move(b));
        if (r) gets = std::move(*r); else ec = r.error();
      }
      w.latencies.push_back(Ms(Clock::now() - t0));
      if (ec) {
        if (IsRefusal(ec)) {
          w.refused = ec.message();
        } else {
          w.Error(std::string(put ? "put" : "get") + ": " + ec.message());
        }
        stop = true;  // a broken connection fails every later request too
        break;
      }
      // Only entries that came back OK count as moved; a status that
      // refuses the value for its size makes the point n/a.
      uint64_t ok_entries = 0;
      std::string refusal;
      for (size_t i = 0; i < statuses.size(); ++i) {
        if (statuses[i] == StatusCode::kOk) {
          ++ok_entries;
          continue;
        }
        if (IsRefusal(statuses[i])) refusal = std::string("put: ") + proto::StatusName(statuses[i]);
        w.Error("put " + w.keys[i] + ": " + proto::StatusName(statuses[i]));
      }
      for (size_t i = 0; i < gets.size(); ++i) {
        if (gets[i].status != StatusCode::kOk || gets[i].length != size) {
          if (IsRefusal(gets[i].status))
            refusal = std::string("get: ") + proto::StatusName(gets[i].status);
          w.Error("get " + w.keys[i] + ": " +
                  (gets[i].status != StatusCode::kOk ? std::string(proto::StatusName(gets[i].status))
                                                     : "short read"));
          continue;
        }
        ++ok_entries;
        if (check) {
          ++w.verified;
          if (!VerifyBlock(dest.subspan(i * size, size), w.ids[i], SeedOf(size))) {
            if (w.verify_failures++ == 0) w.Error("get " + w.keys[i] + ": WRONG BYTES");
          }
        }
      }
      if (!refusal.empty()) {
        w.refused = refusal + " for a value of " + SizeName(size);
        stop = true;
        break;
      }
      w.run.bytes += ok_entries * size;
      w.run.entries += ok_entries;
      ++w.run.requests;
      if (w.errors > 100) break;  // the first errors say it all
      moved.fetch_add(ok_entries * size, std::memory_order_relaxed);
    }
    done.fetch_add(1);
  };
  std::vector<std::thread> threads;
  for (Worker& w : workers) threads.emplace_back(body, std::ref(w));
  while (done.load() < p.threads) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const double t = SecondsSince(start);
    progress_.Update(t / o_.seconds, Fixed(moved.load() / t / kGiB, 2) + " GiB/s so far");
  }
  for (auto& th : threads) th.join();
  RailRun out;
  out.seconds = SecondsSince(start);
  for (Worker& w : workers) {
    out.bytes += w.run.bytes;
    out.entries += w.run.entries;
    out.requests += w.run.requests;
    p.latencies_ms.insert(p.latencies_ms.end(), w.latencies.begin(), w.latencies.end());
    p.verified += w.verified;
    p.verify_failures += w.verify_failures;
    p.errors += w.errors;
    if (p.first_error.empty()) p.first_error = w.first_error;
    if (p.refused.empty() && !w.refused.empty()) p.refused = "refused: " + w.refused;
    if (w.region) (void)w.target->shm->ReleaseRegion(w.region);
  }
  if (!p.refused.empty()) {
    // The entries' statuses of a refused point are the refusal, not errors.
    p.runs.clear();
    p.latencies_ms.clear();
    p.errors = 0;
    p.first_error.clear();
    progress_.End("n/a (" + p.refused + ")");
    return;
  }
  p.runs.push_back(out);
  std::string line = Fixed(GiBps(out), 3) + " GiB/s, " + Thousands(uint64_t(EntriesPerS(out))) +
                     " entries/s";
  if (p.errors) line += ", " + Thousands(p.errors) + " errors: " + p.first_error;
  if (p.verify_failures) line += ", " + Thousands(p.verify_failures) + " VERIFY FAILURES";
  progress_.End(line);
}

bool RailBench::PrepareRedisSize(uint64_t size, uint32_t conns, uint32_t per_thread,
                                 std::string& error) {
  if (redis_size_ != size) {
    auto c = RedisConnection::Connect(redis_->port(), error);
    if (!c) return false;
    std::string reply;
    if (!c->Command({"FLUSHALL"}, reply, error)) return false;
    redis_size_ = size;
    redis_populated_.clear();
  }
  auto c = RedisConnection::Connect(redis_->port(), error);
  if (!c) return false;
  std::vector<std::byte> value(size);
  for (uint32_t t = 0; t < conns; ++t) {
    if (redis_populated_.count(t)) continue;
    for (uint32_t first = 0; first < per_thread;) {
      std::vector<std::string> keys;
      std::vector<std::string> values;
      uint64_t bytes = 0;
      for (; first < per_thread && bytes < kRequestBytes; ++first) {
        const uint64_t id = uint64_t(t) * per_thread + first;
        FillBlock(value, id, SeedOf(size));
        keys.push_back(KeyOf(size, id));
        values.emplace_back(reinterpret_cast<const char*>(value.data()), size);
        bytes += size;
      }
      std::vector<std::string_view> views(values.begin(), values.end());
      if (!c->Set(keys, views, error)) return false;
    }
    redis_populated_.insert(t);
  }
  return true;
}

void RailBench::RunRedis(BaselineSeries& b, BaselineRun& out) {
  const uint64_t size = b.block_size;
  const uint32_t per_thread = key_space_[size].first;
  if (!PrepareRedisSize(size, b.connections, per_thread, out.error)) return;
  struct Conn {
    std::optional<RedisConnection> c;
    std::vector<std::string> keys;
    std::vector<uint64_t> ids;
    std::vector<std::byte> values;
    std::string sets, gets;
    BaselineRun run;
  };
  std::vector<Conn> conns(b.connections);
  for (uint32_t t = 0; t < b.connections; ++t) {
    Conn& c = conns[t];
    auto connected = RedisConnection::Connect(redis_->port(), out.error);
    if (!connected) return;
    c.c.emplace(std::move(*connected));
    c.values.resize(uint64_t(b.batch) * size);
    std::vector<std::string_view> views;
    for (uint32_t i = 0; i < b.batch; ++i) {
      c.ids.push_back(uint64_t(t) * per_thread + i);
      c.keys.push_back(KeyOf(size, c.ids.back()));
      std::span<std::byte> v(c.values.data() + i * size, size);
      FillBlock(v, c.ids.back(), SeedOf(size));
      views.emplace_back(reinterpret_cast<const char*>(v.data()), size);
    }
    // The pipelines' bytes are made here, outside the clock, as memkv's
    // values are filled before its runs.
    c.sets = RedisConnection::SetCommands(c.keys, views);
    c.gets = RedisConnection::GetCommands(c.keys);
  }
  std::atomic<uint64_t> moved{0};
  std::atomic<uint32_t> finished{0};
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o_.seconds));
  auto body = [&](Conn& c) {
    for (uint64_t k = 0; k == 0 || Clock::now() < end; ++k) {
      const bool set = b.kind == "redis-set" || (b.kind == "redis-mixed" && k % 2 == 1);
      const bool check = !set && (o_.verify_all || k % kSampleEvery == 0);
      const auto t0 = Clock::now();
      bool ok;
      if (set) {
        ok = c.c->Set(c.sets, c.keys, c.run.error);
      } else {
        ok = c.c->Get(c.gets, c.keys,
                      [&](size_t i, std::string_view v) {
                        if (!check) return;
                        if (v.size() != size ||
                            !VerifyBlock(std::as_bytes(std::span(v.data(), v.size())), c.ids[i],
                                         SeedOf(size)))
                          ++c.run.verify_failures;
                      },
                      c.run.error);
      }
      c.run.latencies_ms.push_back(Ms(Clock::now() - t0));
      if (!ok) break;
      c.run.bytes += uint64_t(b.batch) * size;
      c.run.entries += b.batch;
      ++c.run.requests;
      moved.fetch_add(uint64_t(b.batch) * size, std::memory_order_relaxed);
    }
    finished.fetch_add(1);
  };
  std::vector<std::thread> threads;
  for (Conn& c : conns) threads.emplace_back(body, std::ref(c));
  while (finished.load() < conns.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const double t = SecondsSince(start);
    progress_.Update(t / o_.seconds, Fixed(moved.load() / t / kGiB, 2) + " GiB/s so far");
  }
  for (auto& th : threads) th.join();
  out.seconds = SecondsSince(start);
  for (Conn& c : conns) {
    out.bytes += c.run.bytes;
    out.entries += c.run.entries;
    out.requests += c.run.requests;
    out.verify_failures += c.run.verify_failures;
    out.latencies_ms.insert(out.latencies_ms.end(), c.run.latencies_ms.begin(),
                            c.run.latencies_ms.end());
    if (out.error.empty()) out.error = c.run.error;
  }
}

void RailBench::RunBaseline(BaselineSeries& b, int run) {
  if (!b.skipped.empty()) return;
  progress_.Begin(b.label + ", run " + std::to_string(run + 1) + "/" + std::to_string(o_.runs));
  BaselineRun out;
  if (b.kind == "memcpy") {
    out = RunMemcpy(b.block_size, b.batch, o_.seconds);
  } else if (b.kind.rfind("fi-", 0) == 0) {
    RawFabricOptions f;
    f.provider = kRdmaProvider;
    f.block = std::min(b.block_size, kRdmaPiece);
    f.depth = kRdmaDepth;
    f.read = b.kind == "fi-read";
    f.mixed = b.kind == "fi-mixed";
    f.seconds = o_.seconds;
    const RawFabricRun raw = RunRawFabric(f);
    if (!raw.error.empty()) {
      b.skipped = "the raw libfabric loop could not run: " + raw.error;
      progress_.End(b.skipped);
      return;
    }
    r_.fabric_provider = raw.provider;
    out.seconds = raw.seconds;
    out.bytes = raw.bytes;
    out.entries = raw.bytes / b.block_size;
    out.requests = raw.ops;
  } else if (b.kind == "iperf3") {
    const auto t0 = Clock::now();
    out = RunIperf3(o_.seconds, b.block_size);
    (void)t0;
  } else {
    if (!redis_) {
      std::string error, log;
      if (!dir_.empty()) {
        log = dir_ + "/redis.log";
        RegisterPath(log);
        registered_.push_back(log);
      }
      redis_ = RedisServer::Start(log, error);
      if (!redis_) {
        b.skipped = "redis-server did not start: " + error;
        progress_.End(b.skipped);
        for (BaselineSeries& x : r_.baselines)
          if (x.kind.rfind("redis", 0) == 0 && x.skipped.empty()) x.skipped = b.skipped;
        return;
      }
    }
    if (b.kind.rfind("redis-benchmark", 0) == 0) {
      out = RunRedisBenchmark(redis_->port(), b.kind == "redis-benchmark-get" ? "GET" : "SET",
                              b.block_size, b.batch, b.connections, o_.seconds);
    } else {
      RunRedis(b, out);
    }
  }
  if (!out.error.empty()) {
    b.skipped = "failed: " + out.error;
    b.runs.clear();
    progress_.End(b.skipped);
    return;
  }
  b.verify_failures += out.verify_failures;
  b.latencies_ms.insert(b.latencies_ms.end(), out.latencies_ms.begin(), out.latencies_ms.end());
  out.latencies_ms.clear();
  std::string line = Fixed(GiBps(out), 3) + " GiB/s";
  if (out.entries) line += ", " + Thousands(uint64_t(EntriesPerS(out))) + " entries/s";
  if (out.verify_failures) line += ", " + Thousands(out.verify_failures) + " VERIFY FAILURES";
  b.runs.push_back(std::move(out));
  progress_.End(line);
}

void RailBench::ComputeRatios() {
  std::map<std::string, const BaselineSeries*> by_id;
  for (const BaselineSeries& b : r_.baselines)
    if (!b.runs.empty()) by_id[b.id] = &b;
  auto median_of = [&](const std::string& id) {
    auto it = by_id.find(id);
    return it == by_id.end() ? std::nan("") : MedianGiBps(it->second->runs);
  };
  for (RailPoint& p : r_.points) {
    p.memcpy_id = MemcpyId(p.block_size, p.batch);
    p.redis_id = RedisId(p.op, p.block_size, p.batch, p.threads);
    p.iperf3_id = p.rail == "tcp" ? IperfId(p.block_size) : "";
    p.fabric_id = p.rail == "rdma" ? FabricId(p.op, p.block_size) : "";
    const double mk = p.runs.empty() ? std::nan("") : MedianGiBps(p.runs);
    p.vs_memcpy = RatioOf(mk, median_of(p.memcpy_id));
    // Against the faster of the two Redis clients (memkv-bench's own RESP
    // pipeline and redis-benchmark): the baseline beyond doubt.
    double redis = median_of(p.redis_id);
    if (p.op == "read" || p.op == "write")
      redis = std::fmax(redis, median_of(RedisBenchmarkId(p.op, p.block_size, p.batch, p.threads)));
    p.vs_redis = RatioOf(mk, redis);
    p.vs_iperf3 = p.iperf3_id.empty() ? std::nan("") : RatioOf(mk, median_of(p.iperf3_id));
    p.vs_fabric = p.fabric_id.empty() ? std::nan("") : RatioOf(mk, median_of(p.fabric_id));
  }
}

const RailPoint* FindPoint(const RailTierResult& r, const std::string& rail, const std::string& op,
                           uint64_t size, uint32_t batch, bool auth, uint32_t threads) {
  for (const RailPoint& p : r.points)
    if (p.rail == rail && p.op == op && p.block_size == size && p.batch == batch &&
        p.auth == auth && p.threads == threads)
      return &p;
  return nullptr;
}

void RailBench::ComputeGoals() {
  const uint32_t t1 = *std::min_element(o_.threads.begin(), o_.threads.end());
  const double nan = std::nan("");
  auto ratio_goal = [&](std::string id, std::string text, const RailPoint* p, double value,
                        double target, std::string base) {
    Goal g{std::move(id), std::move(text), nan, target, "x", ""};
    if (!p) {
      g.how = "not measured: the sweep has no such point";
    } else if (!p->refused.empty()) {
      g.how = "memkv: n/a (" + p->refused + ")";
    } else {
      g.value = value;
      g.how = PointLabel(*p) + ": " + Fixed(MedianGiBps(p->runs), 3) + " GiB/s" +
              (std::isfinite(value) ? "; " + base : "; " + base + " not measured");
    }
    r_.goals.push_back(std::move(g));
  };
  auto base_text = [&](const std::string& id) {
    for (const BaselineSeries& b : r_.baselines)
      if (b.id == id)
        return b.runs.empty() ? b.label + ": " + b.skipped
                              : b.label + ": " + Fixed(MedianGiBps(b.runs), 3) + " GiB/s";
    return id + ": not run (--baseline)";
  };
  // Redis figures come with redis-benchmark's for the same values, pipeline
  // and connections, measured in the same run.
  auto redis_text = [&](const std::string& op, uint64_t size, uint32_t batch, uint32_t conns) {
    return base_text(RedisId(op, size, batch, conns)) + "; " +
           base_text(RedisBenchmarkId(op, size, batch, conns));
  };
  const RailPoint* shm16 =
      FindPoint(r_, "shm", "read", 16u << 20, AutoBatch(16u << 20), false, t1);
  ratio_goal("shm-16m-read-vs-memcpy",
             "shm 16 MiB reads >= 0.8x memcpy (memkv: the server copies and the client checks, "
             "two processes on two cores; memcpy: one core)",
             shm16, shm16 ? shm16->vs_memcpy : nan, 0.8,
             base_text(shm16 ? shm16->memcpy_id : MemcpyId(16u << 20, 1)));
  const uint32_t b1m = AutoBatch(1u << 20);
  const RailPoint* tcp1 = FindPoint(r_, "tcp", "read", 1u << 20, b1m, false, t1);
  ratio_goal("tcp-1m-read-vs-iperf3", "tcp 1 MiB reads, one connection >= 0.9x iperf3 (-l 1 MiB)",
             tcp1, tcp1 ? tcp1->vs_iperf3 : nan, 0.9, base_text(IperfId(1u << 20)));
  ratio_goal("tcp-1m-read-vs-redis-get", "tcp 1 MiB reads, one connection >= 1x Redis GET (1 connection)",
             tcp1, tcp1 ? tcp1->vs_redis : nan, 1.0, redis_text("read", 1u << 20, b1m, t1));
  const RailPoint* tcp1w = FindPoint(r_, "tcp", "write", 1u << 20, b1m, false, t1);
  ratio_goal("tcp-1m-write-vs-redis-set", "tcp 1 MiB writes, one connection >= 1x Redis SET (1 connection)",
             tcp1w, tcp1w ? tcp1w->vs_redis : nan, 1.0, redis_text("write", 1u << 20, b1m, t1));
  for (const std::string op : {"read", "write"}) {
    const RailPoint* p4 = FindPoint(r_, "tcp", op, 1u << 20, b1m, false, 4);
    ratio_goal("tcp-1m-" + op + "-4-threads-vs-redis",
               "tcp 1 MiB " + op + "s, 4 client threads >= 1.2x Redis " +
                   (op == "read" ? "GET" : "SET") + " (4 connections)",
               p4, p4 ? p4->vs_redis : nan, 1.2, redis_text(op, 1u << 20, b1m, 4));
  }
  const RailPoint* tcp4 = FindPoint(r_, "tcp", "read", 4u << 10, kMaxBatch, false, t1);
  const RailPoint* shm4 = FindPoint(r_, "shm", "read", 4u << 10, kMaxBatch, false, t1);
  ratio_goal("tcp-4k-x7500-read-vs-redis-get",
             "4 KiB x 7,500-entry batches over tcp >= 2x Redis pipelined GET", tcp4,
             tcp4 ? tcp4->vs_redis : nan, 2.0, redis_text("read", 4u << 10, kMaxBatch, t1));
  ratio_goal("shm-4k-x7500-read-vs-redis-get",
             "4 KiB x 7,500-entry batches over shm >= 4x Redis pipelined GET", shm4,
             shm4 ? shm4->vs_redis : nan, 4.0, redis_text("read", 4u << 10, kMaxBatch, t1));
  for (const RailPoint* p : {tcp4, shm4}) {
    if (!p) continue;
    const double p50 = p->latencies_ms.empty() ? nan : Percentile(p->latencies_ms, 50);
    const double p99 = p->latencies_ms.empty() ? nan : Percentile(p->latencies_ms, 99);
    for (auto [q, v] : {std::pair{50, p50}, std::pair{99, p99}}) {
      Goal g;
      g.id = p->rail + "-4k-x7500-read-p" + std::to_string(q);
      g.text = "p" + std::to_string(q) + " latency of one 7,500 x 4 KiB batch read, " + p->rail;
      g.unit = "ms";
      g.value = v;
      g.how = std::to_string(p->latencies_ms.size()) + " requests, " + PointLabel(*p);
      r_.goals.push_back(g);
    }
    // p99 at most 2x p50, as a ratio that must reach 0.5.
    Goal g{p->rail + "-4k-x7500-read-p50-over-p99",
           "p50 ÷ p99 of a 7,500 x 4 KiB batch read, " + p->rail + " >= 0.5 (p99 at most 2x p50)",
           RatioOf(p50, p99), 0.5, "x", Fixed(p50, 2) + " ms ÷ " + Fixed(p99, 2) + " ms"};
    r_.goals.push_back(g);
  }
  // The rdma rail against the raw libfabric loop over the same provider: a
  // figure (no target: over tcp;ofi_rxm on loopback it says what memkv adds
  // to the provider, not what a NIC does).
  for (const std::string op : {"read", "write"})
    for (uint64_t size : {uint64_t{1} << 20, uint64_t{16} << 20}) {
      const RailPoint* p = FindPoint(r_, "rdma", op, size, AutoBatch(size), false, t1);
      if (!p || !std::isfinite(p->vs_fabric)) continue;
      Goal g;
      g.id = "rdma-" + std::to_string(size >> 20) + "m-" + op + "-vs-raw-fabric";
      g.text = "rdma " + SizeName(size) + " " + op + "s ÷ the raw " +
               (op == "read" ? "fi_writemsg" : "fi_readmsg") + " loop, same provider";
      g.value = p->vs_fabric;
      g.unit = "x";
      g.how = PointLabel(*p) + ": " + Fixed(MedianGiBps(p->runs), 3) + " GiB/s; " +
              base_text(p->fabric_id);
      r_.goals.push_back(g);
    }
  // The cost of the auth key: GiB/s with the key over GiB/s without it.
  for (const std::string rail : {"tcp", "shm"})
    for (auto [size, batch] : {std::pair<uint64_t, uint32_t>{4u << 10, kMaxBatch},
                               {1u << 20, AutoBatch(1u << 20)}}) {
      const RailPoint* on = FindPoint(r_, rail, "read", size, batch, true, t1);
      const RailPoint* off = FindPoint(r_, rail, "read", size, batch, false, t1);
      if (!on || !off) continue;
      Goal g;
      g.id = "auth-cost-" + rail + "-" + std::to_string(size) + "x" + std::to_string(batch);
      g.text = "auth key on ÷ off, " + rail + " reads of " + SizeName(size) + " x" +
               std::to_string(batch);
      g.value = (on->runs.empty() || off->runs.empty())
                    ? nan
                    : RatioOf(MedianGiBps(on->runs), MedianGiBps(off->runs));
      g.how = "1.00 = free; " + Fixed(on->runs.empty() ? nan : MedianGiBps(on->runs), 3) +
              " vs " + Fixed(off->runs.empty() ? nan : MedianGiBps(off->runs), 3) + " GiB/s";
      r_.goals.push_back(g);
    }
}

Status RailBench::Go() {
  PlanPoints();
  if (o_.baseline) {
    r_.redis_version = RedisVersion().value_or("");
    r_.iperf3_version = Iperf3Version().value_or("");
    if (r_.redis_version.empty())
      r_.notes.push_back("Redis baseline skipped: redis-server is not installed (Debian: apt-get "
                         "install redis-server)");
    if (r_.iperf3_version.empty())
      r_.notes.push_back("iperf3 baseline skipped: iperf3 is not installed (Debian: apt-get "
                         "install iperf3)");
    for (const std::string& n : r_.notes) progress_.Note(n);
  }
  PlanBaselines();
  if (o_.servers.empty()) {
    MEMKV_TRY(StartServers());
  } else {
    for (const std::string& s : o_.servers) {
      Target t;
      t.address = s;
      t.auth_hex = o_.auth_key_hex;
      (o_.auth_key_hex.empty() ? targets_off_ : targets_on_).push_back(std::move(t));
    }
  }
  MEMKV_TRY(ConnectTargets());

  uint64_t current = 0;
  for (size_t i = 0; i < r_.points.size(); ++i) {
    RailPoint& p = r_.points[i];
    if (p.block_size != current) {
      for (bool auth : {false, true}) DeleteSize(current, auth);
      current = p.block_size;
    }
    if (!populated_.count({p.block_size, p.auth}) && !size_refused_.count(p.block_size)) {
      const auto [per_thread, threads] = key_space_[p.block_size];
      if (auto st = Populate(p.block_size, threads, per_thread, p.auth); !st) {
        if (const std::string log = ServerLogTail(); !log.empty())
          progress_.Note("memkv-bench: the server's log ends with:\n" + log);
        return st;
      }
    }
    for (int run = 0; run < o_.runs; ++run) {
      RunPoint(p, run);
      for (size_t b : owned_[i]) RunBaseline(r_.baselines[b], run);
    }
  }
  for (bool auth : {false, true}) DeleteSize(current, auth);
  for (const RailPoint& p : r_.points)
    if (p.errors && !dir_.empty()) {
      if (const std::string log = ServerLogTail(); !log.empty())
        r_.notes.push_back("the server's log ends with: " + log);
      break;
    }
  ComputeRatios();
  ComputeGoals();
  for (const RailPoint& p : r_.points) {
    r_.verified += p.verified;
    r_.verify_failures += p.verify_failures;
    if (p.verify_failures || p.errors) r_.ok = false;
  }
  for (const BaselineSeries& b : r_.baselines) r_.verify_failures += b.verify_failures;
  return {};
}

}  // namespace

Result<RailTierResult> RunRailTier(const RailTierOptions& options, Progress& progress) {
  RailTierResult result;
  result.options = options;
  result.machine = DescribeMachine("/tmp");
  InstallCleanupHandler();
  RailBench bench(options, progress, result);
  MEMKV_TRY(bench.Go());
  return result;
}

}  // namespace memkv::bench
