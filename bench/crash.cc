// memkv-crash: SIGKILL cycles against a real `memkv server` in file mode,
// end to end through the client library. Writer threads put and delete
// keys (each thread its own keys, reused so overwrites and deletes of
// existing keys happen) and keep a ledger of what was acknowledged; the
// server is killed with SIGKILL at a random moment (sometimes in the middle
// of a burst of large puts, sometimes while it starts), restarted on the
// same drives, and every key is read back and judged against the ledger
// (crash_ledger.h). The in-library version of this test is
// tests/store/crash_test.cc; this one goes through the binary, the wire and
// the engine, as a user's data does.

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "child.h"
#include "common/size.h"
#include "crash_ledger.h"
#include "memkv/engine.h"
#include "verify.h"

namespace memkv::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Options {
  uint32_t cycles = 1000;
  uint32_t threads = 4;
  uint32_t keys_per_thread = 64;
  uint64_t max_value_size = 1 << 20;
  uint32_t max_delay_ms = 1000;
  double burst_fraction = 0.3;
  double startup_fraction = 0.05;
  double shutdown_fraction = 0.1;
  std::string drives = "setup";  // setup | embedded
  uint64_t drive_size = 1ull << 30;
  std::string stripe_unit = "256KiB";  // setup's --block-size
  std::string transport = "both";      // tcp | unix | both
  std::string memkv = MEMKV_BINARY;
  std::string dir;
  bool keep = false;
  uint64_t seed = 0;
  uint32_t progress = 10;
  double max_seconds = 0;
  uint32_t server_threads = 0;
  bool verbose = false;
};

std::string Elapsed(Clock::time_point since) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - since).count();
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

std::string Tail(const std::string& path, size_t bytes = 4000) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  return s.size() > bytes ? "..." + s.substr(s.size() - bytes) : s;
}

// Keys of varied length (a journal record is not always the same size).
std::string KeyName(uint32_t id) {
  return "crash-" + std::to_string(id) + "-" + std::string((id * 37u) % 300u, 'k');
}

// A `memkv server` on the run's drives, killed and restarted many times.
// Used from the main thread only.
class CrashServer {
 public:
  CrashServer(const Options& o, std::string dir, std::string config)
      : o_(o), dir_(std::move(dir)), config_(std::move(config)) {
    sock_ = dir_ + "/memkv.sock";
    log_ = dir_ + "/server.log";
  }

  const std::string& log() const { return log_; }
  const std::string& socket_path() const { return sock_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Starts it and waits until it accepts on tcp and on its Unix socket.
  // A killed server's drives stay locked until the kernel has torn down its
  // io_uring requests, and its port may be taken meanwhile: a server that
  // exits at start is tried again, for up to 30 seconds.
  bool Start(std::string& error) {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    if (port_ == 0) port_ = FreePortPair();
    while (Clock::now() < deadline) {
      auto child = Spawn(error);
      if (!child) return false;
      bool up = false;
      int status = 0;
      bool exited = false;
      while (!up && Clock::now() < deadline) {
        if (child->Exited(&status)) {
          exited = true;
          break;
        }
        struct stat st {};
        up = PortAccepts(port_) && ::stat(sock_.c_str(), &st) == 0;
        if (!up) std::this_thread::sleep_for(milliseconds(20));
      }
      if (up) {
        child_ = std::move(*child);
        return true;
      }
      if (!exited) break;
      const std::string tail = Tail(log_, 2000);
      if (tail.find("ddress already in use") != std::string::npos) port_ = FreePortPair();
      ++start_retries_;
      std::this_thread::sleep_for(milliseconds(100));
    }
    error = "the server did not start within 30 s; the end of " + log_ + ":\n" + Tail(log_);
    return false;
  }

  // Starts it and kills it after `delay`, ready or not (a kill during
  // recovery).
  bool StartAndKillAfter(milliseconds delay, std::string& error) {
    auto child = Spawn(error);
    if (!child) return false;
    std::this_thread::sleep_for(delay);
    ::kill(child->pid(), SIGKILL);
    if (!child->Wait(std::chrono::seconds(30))) {
      error = "the server did not die within 30 s of SIGKILL";
      return false;
    }
    return true;
  }

  // SIGTERM without waiting: a clean stop begins (SIGKILL may cut it).
  void Terminate() {
    if (child_.running()) ::kill(child_.pid(), SIGTERM);
  }

  // SIGKILL, and wait until it is gone.
  bool Kill(std::string& error) {
    if (!child_.running()) return true;
    ::kill(child_.pid(), SIGKILL);
    if (!child_.Wait(std::chrono::seconds(30))) {
      error = "the server did not die within 30 s of SIGKILL";
      return false;
    }
    return true;
  }

  // SIGTERM: a clean stop that must exit 0.
  bool Stop(std::string& error) {
    if (!child_.running()) return true;
    ::kill(child_.pid(), SIGTERM);
    int status = 0;
    if (!child_.Wait(std::chrono::seconds(60), &status)) {
      error = "the server did not stop within 60 s of SIGTERM";
      return false;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      error = "the server's clean stop exited with status " + std::to_string(status) +
              "; the end of " + log_ + ":\n" + Tail(log_);
      return false;
    }
    return true;
  }

  uint32_t start_retries() const { return start_retries_; }

 private:
  std::optional<ChildProcess> Spawn(std::string& error) {
    std::vector<std::string> args = {o_.memkv, "--log-level", "info", "server"};
    if (!config_.empty()) {
      args.push_back("--config");
      args.push_back(config_);
    }
    args.insert(args.end(), {"--address", address(), "--unix-socket", sock_});
    if (o_.server_threads) {
      args.push_back("--threads");
      args.push_back(std::to_string(o_.server_threads));
    }
    // The embedded default keeps its drives in ./var/memkv: the run's dir.
    auto child = ChildProcess::Spawn(args, log_, error, dir_);
    if (!child) error = "cannot start " + o_.memkv + ": " + error;
    return child;
  }

  const Options& o_;
  const std::string dir_, config_;
  std::string sock_, log_;
  uint16_t port_ = 0;
  ChildProcess child_;
  uint32_t start_retries_ = 0;
};

struct Finding {
  Verdict verdict;
  uint32_t cycle;
  std::string key, expected, found;
};

struct Counts {
  uint64_t acked_puts = 0, acked_deletes = 0;
  uint64_t checked_puts = 0, checked_deletes = 0, resolved = 0, landed_puts = 0;
  uint64_t lost = 0, wrong = 0, resurrected = 0, unreadable = 0;
  uint64_t errors_before_kill = 0, live_reads = 0;
  uint32_t burst_kills = 0, startup_kills = 0, shutdown_kills = 0;

  bool clean() const { return lost + wrong + resurrected + unreadable == 0; }
};

// One writer thread's part of a cycle. Owns keys [first, first + count)
// and their ledger entries while it runs; the main thread reads its counts
// and findings after joining it.
class Writer {
 public:
  Writer(const Options& o, uint32_t first, uint32_t count, std::vector<KeyLedger>& ledger)
      : o_(o), ledger_(ledger) {
    for (uint32_t i = 0; i < count; ++i) order_.push_back(first + i);
  }

  struct Shared {
    std::atomic<uint64_t>* next_seed;
    std::atomic<bool>* stop;
    std::atomic<bool>* killed;
    std::atomic<int>* bursts_in_flight;
  };

  // Runs puts and deletes until `stop`, or until an operation fails (after
  // a failure its outcome is unknown; another operation on its key could be
  // overtaken by it).
  void Run(Engine& engine, const Shared& sh, uint32_t cycle, uint64_t rng_seed) {
    std::mt19937_64 rng(rng_seed);
    while (!sh.stop->load()) {
      const uint32_t pick = static_cast<uint32_t>(rng() % 100);
      bool ok;
      if (pick < 10) {
        ok = Put(engine, sh, cycle, rng, 8 + rng() % 9, /*burst=*/true);
      } else if (pick < 65) {
        ok = Put(engine, sh, cycle, rng, 1 + rng() % 8, /*burst=*/false);
      } else if (pick < 85) {
        ok = Delete(engine, sh, cycle, rng, 1 + rng() % 4);
      } else {
        ok = Read(engine, sh, cycle, rng, 1 + rng() % 8);
      }
      if (!ok) break;
    }
  }

  uint64_t acked_puts = 0, acked_deletes = 0, errors_before_kill = 0, live_reads = 0;
  std::string first_error;
  std::vector<Finding> findings;

 private:
  // `n` distinct keys of this writer, at random.
  std::span<const uint32_t> Pick(std::mt19937_64& rng, size_t n) {
    n = std::min<size_t>(n, order_.size());
    for (size_t i = 0; i < n; ++i) std::swap(order_[i], order_[i + rng() % (order_.size() - i)]);
    return {order_.data(), n};
  }

  void NoteFailure(const Shared& sh, uint32_t id, Code code, const std::string& what) {
    if (sh.killed->load()) return;
    ++errors_before_kill;
    if (first_error.empty())
      first_error = what + " " + KeyName(id).substr(0, 16) + "...: " + CodeName(code);
  }

  bool Put(Engine& engine, const Shared& sh, uint32_t cycle, std::mt19937_64& rng, size_t n,
           bool burst) {
    const auto ids = Pick(rng, n);
    std::vector<uint64_t> seeds;
    uint64_t total = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      uint64_t seed = sh.next_seed->fetch_add(1);
      // A burst is large values: the kill lands while the server moves them.
      for (int tries = 0; burst && tries < 64 &&
                          CrashValueSize(seed, o_.max_value_size) <
                              std::min<uint64_t>(o_.max_value_size, 256 << 10);
           ++tries)
        seed = sh.next_seed->fetch_add(1);
      seeds.push_back(seed);
      total += CrashValueSize(seed, o_.max_value_size);
    }
    buffer_.resize(total);
    std::vector<std::string> keys;
    std::vector<PutEntry> entries;
    uint64_t at = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint64_t size = CrashValueSize(seeds[i], o_.max_value_size);
      FillBlock({buffer_.data() + at, size}, ids[i], seeds[i]);
      keys.push_back(KeyName(ids[i]));
      at += size;
    }
    at = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint64_t size = CrashValueSize(seeds[i], o_.max_value_size);
      entries.push_back({keys[i], buffer_.data() + at, size});
      at += size;
      ledger_[ids[i]].BeginPut(seeds[i], cycle);
    }
    if (burst) sh.bursts_in_flight->fetch_add(1);
    const PutResults r = engine.BatchPut(entries);
    if (burst) sh.bursts_in_flight->fetch_sub(1);
    bool all_ok = true;
    for (size_t i = 0; i < ids.size(); ++i) {
      const Code c = i < r.entries.size() ? r.entries[i] : r.outcome.code;
      if (c == Code::kOk) {
        ledger_[ids[i]].Ack();
        ++acked_puts;
      } else {
        NoteFailure(sh, ids[i], c, "put");
        all_ok = false;
      }
    }
    return all_ok;
  }

  // Reads keys while the server runs (from its DRAM cache or its drives):
  // none of this writer's keys has an operation in flight now, so each must
  // hold exactly what the ledger says.
  bool Read(Engine& engine, const Shared& sh, uint32_t cycle, std::mt19937_64& rng, size_t n) {
    const auto ids = Pick(rng, n);
    read_buffer_.resize(ids.size() * o_.max_value_size);
    std::vector<std::string> keys;
    std::vector<GetEntry> entries;
    for (uint32_t id : ids) keys.push_back(KeyName(id));
    for (size_t i = 0; i < ids.size(); ++i)
      entries.push_back(
          {keys[i], read_buffer_.data() + i * o_.max_value_size, o_.max_value_size, 0, 0});
    const GetResults r = engine.BatchGet(entries);
    for (size_t i = 0; i < ids.size(); ++i) {
      const GetResult g = i < r.entries.size() ? r.entries[i] : GetResult{r.outcome.code};
      if (g.status != Code::kOk && g.status != Code::kNotFound) {
        // After the kill, failures are expected; before it, a server that
        // is slow or busy is noted, and any other failure (a checksum
        // mismatch, an I/O error) is judged.
        if (sh.killed->load()) return false;
        if (g.status == Code::kBusy || g.status == Code::kTimeout ||
            g.status == Code::kUnavailable) {
          NoteFailure(sh, ids[i], g.status, "get");
          return false;
        }
      }
      const std::span<const std::byte> got(read_buffer_.data() + i * o_.max_value_size, g.length);
      const ReadKind kind = g.status == Code::kNotFound                         ? ReadKind::kMiss
                            : g.status == Code::kOk && g.length == g.value_size ? ReadKind::kValue
                                                                                : ReadKind::kError;
      auto holds = [&](uint64_t seed) {
        return g.length == CrashValueSize(seed, o_.max_value_size) &&
               VerifyBlock(got, ids[i], seed);
      };
      const Judgement j =
          Judge(ledger_[ids[i]], kind, g.length, CodeName(g.status), holds, o_.max_value_size);
      if (j.verdict != Verdict::kOk && !sh.killed->load()) {
        findings.push_back({j.verdict, cycle, keys[i], j.expected, j.found});
        return false;
      }
      ++live_reads;
    }
    return true;
  }

  bool Delete(Engine& engine, const Shared& sh, uint32_t cycle, std::mt19937_64& rng, size_t n) {
    const auto ids = Pick(rng, n);
    std::vector<std::string> keys;
    for (uint32_t id : ids) {
      keys.push_back(KeyName(id));
      ledger_[id].BeginDelete();
    }
    std::vector<std::string_view> views(keys.begin(), keys.end());
    const DeleteResults r = engine.Delete(views);
    bool all_ok = true;
    for (size_t i = 0; i < ids.size(); ++i) {
      const Code c = i < r.entries.size() ? r.entries[i] : r.outcome.code;
      KeyLedger& k = ledger_[ids[i]];
      if (c == Code::kNotFound && k.acked.kind == KeyState::Kind::kValue) {
        // The server says there was nothing to delete, yet a put of this
        // key was acknowledged and nothing removed it since.
        findings.push_back({Verdict::kLost, cycle, keys[i],
                            DescribeState(k.acked, o_.max_value_size),
                            "a miss (the delete answered NotFound)"});
      }
      if (c == Code::kOk || c == Code::kNotFound) {
        k.Ack();
        ++acked_deletes;
      } else {
        NoteFailure(sh, ids[i], c, "delete");
        all_ok = false;
      }
    }
    return all_ok;
  }

  const Options& o_;
  std::vector<KeyLedger>& ledger_;  // shared; this writer touches its own keys only
  std::vector<uint32_t> order_;
  std::vector<std::byte> buffer_, read_buffer_;
};

class CrashRun {
 public:
  explicit CrashRun(const Options& o) : o_(o), rng_(o.seed) {}

  int Main() {
    start_ = Clock::now();
    std::string error;
    if (!Prepare(error)) {
      std::fprintf(stderr, "memkv-crash: %s\n", error.c_str());
      return 2;
    }
    std::fprintf(stderr,
                 "memkv-crash: %u cycles, %u threads x %u keys, values 1 B to %s, drives %s%s, "
                 "transport %s, seed %llu, in %s\n",
                 o_.cycles, o_.threads, o_.keys_per_thread, FormatSize(o_.max_value_size).c_str(),
                 o_.drives.c_str(),
                 o_.drives == "setup" ? (" (stripe unit " + o_.stripe_unit + ")").c_str() : "",
                 o_.transport.c_str(), static_cast<unsigned long long>(o_.seed), dir_.c_str());
    const int rc = Cycles();
    PrintSummary();
    if (rc == 0 && !o_.keep && made_dir_) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    } else {
      std::fprintf(stderr, "memkv-crash: drives and server log kept in %s\n", dir_.c_str());
    }
    return rc;
  }

 private:
  bool Prepare(std::string& error) {
    if (o_.dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/memkv-crash.XXXXXX";
      if (!::mkdtemp(templ.data())) {
        error = templ + ": " + std::strerror(errno);
        return false;
      }
      dir_ = templ;
      made_dir_ = true;
    } else {
      dir_ = std::filesystem::absolute(o_.dir).string();
      std::error_code ec;
      std::filesystem::create_directories(dir_, ec);
      if (!std::filesystem::is_empty(dir_, ec)) {
        error = "--dir " + dir_ + ": not empty (the run formats its own drives there)";
        return false;
      }
    }
    std::string config;
    if (o_.drives == "setup") {
      const std::string size = std::to_string(o_.drive_size);
      std::vector<std::string> drives = {dir_ + "/drive0.img", dir_ + "/drive1.img"};
      for (const std::string& d : drives) {
        const ChildOutput r = RunChild({o_.memkv, "drive", "init", d, "--size", size});
        if (r.status != 0) {
          error = "memkv drive init " + d + " failed: " + r.spawn_error + r.err;
          return false;
        }
      }
      const ChildOutput r = RunChild(
          {o_.memkv, "setup", "--drives", drives[0], drives[1], "--block-size", o_.stripe_unit});
      if (r.status != 0) {
        error = "memkv setup failed: " + r.spawn_error + r.err;
        return false;
      }
      config = dir_ + "/config.yaml";
      std::ofstream(config) << r.out;
      // The client needs the key that setup generated.
      std::istringstream lines(r.out);
      for (std::string line; std::getline(lines, line);) {
        const size_t at = line.find("auth_key:");
        if (at == std::string::npos) continue;
        std::istringstream value(line.substr(at + 9));
        value >> auth_key_;
      }
      if (auth_key_.size() != 64) {
        error = "memkv setup printed no auth_key in its config:\n" + r.out;
        return false;
      }
    }
    server_ = std::make_unique<CrashServer>(o_, dir_, config);
    ledger_.resize(size_t{o_.threads} * o_.keys_per_thread);
    return server_->Start(error);
  }

  std::optional<Engine> MakeEngine(uint32_t cycle) {
    EngineOptions eo;
    const bool unix_socket = o_.transport == "unix" || (o_.transport == "both" && cycle % 2 == 0);
    eo.servers = {unix_socket ? server_->socket_path() : server_->address()};
    eo.auth_key = auth_key_;
    eo.transport = Transport::kTcp;
    eo.timeout = std::chrono::seconds(20);
    eo.connect_timeout = std::chrono::seconds(5);
    // The server comes back within a second or so: retry soon.
    eo.reconnect_backoff = milliseconds(10);
    eo.max_reconnect_backoff = milliseconds(200);
    auto e = Engine::Create(std::move(eo));
    if (!e) {
      std::fprintf(stderr, "memkv-crash: cannot create the client engine: %s\n",
                   e.error().message.c_str());
      return std::nullopt;
    }
    return std::move(*e);
  }

  // Reads every key back and judges it; `cycle` is the cycle whose kill
  // is being checked. False when something was lost, wrong or resurrected.
  bool Verify(Engine& engine, uint32_t cycle, const char* when) {
    const size_t per_batch =
        std::max<size_t>(1, std::min<size_t>(64, (16u << 20) / o_.max_value_size));
    std::vector<std::byte> buf(per_batch * o_.max_value_size);
    for (size_t first = 0; first < ledger_.size(); first += per_batch) {
      const size_t n = std::min(per_batch, ledger_.size() - first);
      std::vector<std::string> keys;
      std::vector<GetEntry> entries;
      for (size_t i = 0; i < n; ++i) keys.push_back(KeyName(static_cast<uint32_t>(first + i)));
      for (size_t i = 0; i < n; ++i)
        entries.push_back({keys[i], buf.data() + i * o_.max_value_size, o_.max_value_size, 0, 0});
      // The engine may still be backing off from the dead server: a batch
      // that could not reach the server is tried again, for a while.
      GetResults r;
      for (int attempt = 0;; ++attempt) {
        r = engine.BatchGet(entries);
        bool retry = !r.outcome.ok() && r.outcome.code == Code::kUnavailable;
        for (const GetResult& g : r.entries) retry = retry || g.status == Code::kUnavailable;
        if (!retry || attempt >= 100) break;
        std::this_thread::sleep_for(milliseconds(100));
      }
      for (size_t i = 0; i < n; ++i) {
        const uint32_t id = static_cast<uint32_t>(first + i);
        const GetResult g = i < r.entries.size() ? r.entries[i] : GetResult{r.outcome.code};
        ReadKind kind = ReadKind::kValue;
        std::string error;
        if (g.status == Code::kNotFound) {
          kind = ReadKind::kMiss;
        } else if (g.status != Code::kOk) {
          kind = ReadKind::kError;
          error = std::string(CodeName(g.status)) +
                  (r.outcome.message.empty() ? "" : " (" + r.outcome.message + ")");
        } else if (g.length != g.value_size) {
          kind = ReadKind::kError;
          error =
              "read " + std::to_string(g.length) + " of " + std::to_string(g.value_size) + " bytes";
        }
        const std::span<const std::byte> got(buf.data() + i * o_.max_value_size, g.length);
        auto holds = [&](uint64_t seed) {
          return g.length == CrashValueSize(seed, o_.max_value_size) && VerifyBlock(got, id, seed);
        };
        KeyLedger& k = ledger_[id];
        const Judgement j = Judge(k, kind, g.length, error, holds, o_.max_value_size);
        if (j.verdict != Verdict::kOk) {
          Report({j.verdict, cycle, keys[i], j.expected, j.found}, when);
          continue;
        }
        counts_.checked_puts += j.checked_acked_put;
        counts_.checked_deletes += j.checked_acked_delete;
        counts_.resolved += j.resolved_flight;
        counts_.landed_puts += j.resolved_flight && k.flight &&
                               k.flight->kind == KeyState::Kind::kValue && j.now == *k.flight;
        Settle(k, j);
      }
    }
    return counts_.clean();
  }

  void Report(const Finding& f, const char* when) {
    switch (f.verdict) {
      case Verdict::kLost:
        ++counts_.lost;
        break;
      case Verdict::kWrong:
        ++counts_.wrong;
        break;
      case Verdict::kResurrected:
        ++counts_.resurrected;
        break;
      case Verdict::kUnreadable:
        ++counts_.unreadable;
        break;
      case Verdict::kOk:
        return;
    }
    std::string key = f.key.size() > 40
                          ? f.key.substr(0, 40) + "...(" + std::to_string(f.key.size()) + " bytes)"
                          : f.key;
    std::fprintf(stderr, "memkv-crash: %s: key %s, cycle %u (%s): expected %s; found %s\n",
                 VerdictName(f.verdict), key.c_str(), f.cycle, when, f.expected.c_str(),
                 f.found.c_str());
  }

  // One cycle's writes, ended by a SIGKILL. False when the server could
  // not be killed.
  bool WriteAndKill(Engine& engine, uint32_t cycle) {
    std::atomic<bool> stop{false}, killed{false};
    std::atomic<int> bursts{0};
    Writer::Shared sh{&next_seed_, &stop, &killed, &bursts};
    std::vector<std::unique_ptr<Writer>> writers;
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < o_.threads; ++t)
      writers.push_back(
          std::make_unique<Writer>(o_, t * o_.keys_per_thread, o_.keys_per_thread, ledger_));
    for (auto& w : writers)
      threads.emplace_back([&, w = w.get(), s = rng_()] { w->Run(engine, sh, cycle, s); });
    const bool burst = std::uniform_real_distribution<>(0, 1)(rng_) < o_.burst_fraction;
    if (burst) {
      // Kill in the middle of a burst of large puts: wait for one to be
      // sent, then a few hundred microseconds at most.
      const auto give_up = Clock::now() + milliseconds(std::max<uint32_t>(o_.max_delay_ms, 1000));
      while (bursts.load() == 0 && Clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 2000));
      counts_.burst_kills += bursts.load() > 0;
    } else {
      std::this_thread::sleep_for(milliseconds(rng_() % (o_.max_delay_ms + 1)));
    }
    killed = true;
    // Now and then the kill cuts a clean stop (requests drained, checkpoints
    // being written) instead.
    if (std::uniform_real_distribution<>(0, 1)(rng_) < o_.shutdown_fraction) {
      server_->Terminate();
      std::this_thread::sleep_for(milliseconds(rng_() % 300));
      ++counts_.shutdown_kills;
    }
    std::string error;
    const bool ok = server_->Kill(error);
    stop = true;
    for (auto& t : threads) t.join();
    for (auto& w : writers) {
      counts_.acked_puts += w->acked_puts;
      counts_.acked_deletes += w->acked_deletes;
      counts_.errors_before_kill += w->errors_before_kill;
      counts_.live_reads += w->live_reads;
      if (!w->first_error.empty() && first_error_.empty())
        first_error_ = "cycle " + std::to_string(cycle) + ": " + w->first_error;
      for (const Finding& f : w->findings) Report(f, "answered while running");
    }
    if (!ok) std::fprintf(stderr, "memkv-crash: cycle %u: %s\n", cycle, error.c_str());
    return ok;
  }

  bool Restart(uint32_t cycle) {
    std::string error;
    // Now and then a kill while the server starts: recovery itself is cut.
    if (std::uniform_real_distribution<>(0, 1)(rng_) < o_.startup_fraction) {
      if (!server_->StartAndKillAfter(milliseconds(rng_() % 200), error)) {
        std::fprintf(stderr, "memkv-crash: cycle %u: %s\n", cycle, error.c_str());
        return false;
      }
      ++counts_.startup_kills;
    }
    if (!server_->Start(error)) {
      std::fprintf(stderr, "memkv-crash: cycle %u: restart after SIGKILL: %s\n", cycle,
                   error.c_str());
      return false;
    }
    return true;
  }

  int Cycles() {
    uint32_t cycle = 0;
    for (uint32_t c = 1; c <= o_.cycles; ++c) {
      if (o_.max_seconds > 0 &&
          std::chrono::duration<double>(Clock::now() - start_).count() >= o_.max_seconds) {
        std::fprintf(stderr, "memkv-crash: --max-seconds %.0f reached after %u cycles\n",
                     o_.max_seconds, cycle);
        break;
      }
      auto engine = MakeEngine(c);
      if (!engine) return 1;
      if (c > 1 && !Verify(*engine, cycle, "after the restart")) return Fail(cycle);
      if (!WriteAndKill(*engine, c)) return Fail(c);
      cycle = c;
      cycles_done_ = c;
      if (!counts_.clean()) return Fail(cycle);
      engine.reset();
      if (!Restart(c)) return Fail(c);
      if (o_.progress && c % o_.progress == 0) {
        std::fprintf(stderr, "memkv-crash: cycle %u/%u: %s; %s\n", c, o_.cycles,
                     CountsLine().c_str(), Elapsed(start_).c_str());
      }
    }
    // The last kill's check, then a clean stop and start: the checkpoint
    // written at shutdown must say the same.
    auto engine = MakeEngine(cycle + 1);
    if (!engine) return 1;
    if (cycle > 0 && !Verify(*engine, cycle, "after the restart")) return Fail(cycle);
    engine.reset();
    std::string error;
    if (!server_->Stop(error) || !server_->Start(error)) {
      std::fprintf(stderr, "memkv-crash: clean restart: %s\n", error.c_str());
      return Fail(cycle);
    }
    engine = MakeEngine(cycle + 1);
    if (!engine) return 1;
    if (!Verify(*engine, cycle, "after a clean stop and start")) return Fail(cycle);
    engine.reset();
    if (!server_->Stop(error)) {
      std::fprintf(stderr, "memkv-crash: clean stop: %s\n", error.c_str());
      return Fail(cycle);
    }
    return 0;
  }

  int Fail(uint32_t cycle) {
    std::string error;
    server_->Kill(error);
    std::fprintf(stderr, "memkv-crash: FAILED in cycle %u; the server log is %s\n", cycle,
                 server_->log().c_str());
    return 1;
  }

  std::string CountsLine() const {
    char buf[640];
    std::snprintf(buf, sizeof buf,
                  "%llu puts and %llu deletes acknowledged; read back after restarts %llu "
                  "acknowledged values and %llu acknowledged deletes, %llu in-flight outcomes "
                  "(%llu puts landed); %llu keys read while it ran; %llu lost, %llu wrong, "
                  "%llu resurrected, %llu unreadable",
                  static_cast<unsigned long long>(counts_.acked_puts),
                  static_cast<unsigned long long>(counts_.acked_deletes),
                  static_cast<unsigned long long>(counts_.checked_puts),
                  static_cast<unsigned long long>(counts_.checked_deletes),
                  static_cast<unsigned long long>(counts_.resolved),
                  static_cast<unsigned long long>(counts_.landed_puts),
                  static_cast<unsigned long long>(counts_.live_reads),
                  static_cast<unsigned long long>(counts_.lost),
                  static_cast<unsigned long long>(counts_.wrong),
                  static_cast<unsigned long long>(counts_.resurrected),
                  static_cast<unsigned long long>(counts_.unreadable));
    return buf;
  }

  void PrintSummary() {
    std::printf(
        "memkv-crash: %u cycles (%u SIGKILLs in a burst of puts, %u 0-300 ms after a SIGTERM, "
        "%u more during start-up), %s; "
        "%llu operations failed before a kill; %s\n",
        cycles_done_, counts_.burst_kills, counts_.shutdown_kills, counts_.startup_kills,
        CountsLine().c_str(), static_cast<unsigned long long>(counts_.errors_before_kill),
        Elapsed(start_).c_str());
    if (!first_error_.empty())
      std::printf("memkv-crash: first operation that failed before a kill: %s\n",
                  first_error_.c_str());
    std::fflush(stdout);
  }

  const Options& o_;
  std::mt19937_64 rng_;
  Clock::time_point start_;
  std::string dir_;
  bool made_dir_ = false;
  std::string auth_key_;
  std::unique_ptr<CrashServer> server_;
  std::vector<KeyLedger> ledger_;
  std::atomic<uint64_t> next_seed_{1};
  Counts counts_;
  uint32_t cycles_done_ = 0;
  std::string first_error_;
};

}  // namespace
}  // namespace memkv::bench

int main(int argc, char** argv) {
  using memkv::bench::Options;
  Options o;
  std::string max_value = "1MiB", drive_size = "1GiB";
  CLI::App app{
      "memkv-crash: SIGKILL cycles against a real memkv server in file mode, through the "
      "client library. Writer threads put (1 B to --max-value-size) and delete their own keys "
      "and keep a ledger of what the server acknowledged; the server is killed with SIGKILL at "
      "a random moment (sometimes in a burst of large puts, sometimes in a clean stop begun "
      "by SIGTERM, sometimes while it starts), "
      "restarted on the same drives, and every key is read back: an acknowledged put must read "
      "back exactly, an acknowledged delete must be a miss, and a put or delete in flight at "
      "the kill may have landed or not, nothing else. Writers also read their keys while the "
      "server runs, each read held to the same ledger. After the last cycle the server is also "
      "stopped cleanly, started and checked once more. Progress and findings go to stderr, "
      "the result line to stdout; operations that fail while the server still runs are "
      "counted in it, not judged (a read that fails otherwise is). Exit status 0 when nothing was "
      "lost, "
      "wrong, resurrected or unreadable; 1 when something was (each named on stderr: key, "
      "cycle, expected, found) or the server did not come back; 2 for bad arguments or a "
      "set-up that failed. The drives and the server log are kept on failure."};
  // A later option wins, so scripts/crash.sh's defaults can be overridden.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--cycles", o.cycles, "SIGKILL cycles to run")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--threads", o.threads, "Writer threads (each owns its keys)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--keys", o.keys_per_thread, "Keys per writer thread (reused every cycle)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--max-value-size", max_value, "Largest value (sizes are log-uniform from 1 B)")
      ->capture_default_str();
  app.add_option("--max-delay-ms", o.max_delay_ms,
                 "A kill comes a uniform 0 to this many ms after the writes begin")
      ->capture_default_str()
      ->check(CLI::Range(0u, 600000u));
  app.add_option("--burst-fraction", o.burst_fraction,
                 "Fraction of kills timed inside a burst of large puts instead")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--startup-fraction", o.startup_fraction,
                 "Fraction of restarts that are themselves killed 0-200 ms into start-up")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--shutdown-fraction", o.shutdown_fraction,
                 "Fraction of kills sent 0-300 ms after a SIGTERM (cutting a clean stop)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--drives", o.drives,
                 "setup: two sparse files made with `memkv drive init` and formatted with "
                 "`memkv setup` (its config, with auth); embedded: the server's embedded "
                 "default (no config, drives in DIR/var/memkv)")
      ->capture_default_str()
      ->check(CLI::IsMember({"setup", "embedded"}));
  app.add_option("--drive-size", drive_size,
                 "Size of each drive file with --drives setup: keep it well above threads x keys x "
                 "max value size, or evictions read as lost puts")
      ->capture_default_str();
  app.add_option("--stripe-unit", o.stripe_unit,
                 "The stripe unit `memkv setup --block-size` formats the drives with (--drives "
                 "setup; the embedded default has 4 MiB): below --max-value-size, values span "
                 "stripes on both drives")
      ->capture_default_str();
  app.add_option("--transport", o.transport,
                 "How the client reaches the server: tcp (loopback), unix (its Unix socket), "
                 "both (alternating by cycle)")
      ->capture_default_str()
      ->check(CLI::IsMember({"tcp", "unix", "both"}));
  app.add_option("--memkv", o.memkv, "The memkv binary to run")->capture_default_str();
  app.add_option("--dir", o.dir,
                 "Directory for drives, config, socket and server log (empty or new; kept). "
                 "Default: a fresh directory under $TMPDIR, removed after a clean run");
  app.add_flag("--keep", o.keep, "Keep the default directory after a clean run too");
  app.add_option("--seed", o.seed,
                 "Seed of the random choices (default: from the clock; printed at the start). "
                 "Timing, and so the kills' moments, cannot be replayed");
  app.add_option("--progress", o.progress, "A progress line on stderr every N cycles (0: none)")
      ->capture_default_str();
  app.add_option("--max-seconds", o.max_seconds,
                 "Start no new cycle after this many seconds (0: no limit); the last kill is "
                 "still checked")
      ->capture_default_str();
  app.add_option("--server-threads", o.server_threads, "The server's loops (default: its own)");
  app.add_flag("--verbose", o.verbose, "Show the client library's warnings (reconnects)");
  CLI11_PARSE(app, argc, argv);

  auto mv = memkv::ParseSize(max_value);
  auto ds = memkv::ParseSize(drive_size);
  if (!mv || *mv == 0) {
    std::fprintf(stderr, "memkv-crash: --max-value-size %s: not a size\n", max_value.c_str());
    return 2;
  }
  if (!ds) {
    std::fprintf(stderr, "memkv-crash: --drive-size %s: not a size\n", drive_size.c_str());
    return 2;
  }
  if (*mv > (16ull << 20)) {
    std::fprintf(stderr, "memkv-crash: --max-value-size above 16 MiB is not supported\n");
    return 2;
  }
  o.max_value_size = *mv;
  o.drive_size = *ds;
  if (o.seed == 0)
    o.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  // Every kill makes the client library warn that the server went away.
  spdlog::set_level(o.verbose ? spdlog::level::info : spdlog::level::err);
  memkv::bench::InstallCleanupHandler();
  return memkv::bench::CrashRun(o).Main();
}
