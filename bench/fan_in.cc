#include "fan_in.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>

#include "child.h"
#include "common/size.h"
#include "http/client.h"
#include "memkv/engine.h"
#include "verify.h"

namespace memkv::bench {
namespace {

using Clock = std::chrono::steady_clock;

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------------------
// A client process.

// What a client process counts; atomics, shared by its worker threads.
struct ChildStats {
  std::atomic<uint64_t> ok{0}, failed{0}, verify_failed{0}, batches{0}, threads{0}, bytes{0};
  std::mutex mu;
  std::string first_error;  // guarded by mu
  void Error(const std::string& what) {
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = what;
  }
};

// One worker slot of a client process: its arena (registered once, for the
// process's life) and keys. One thread at a time works in a slot; the main
// thread replaces it when it ends.
struct Slot {
  std::unique_ptr<std::byte[]> arena;
  size_t capacity = 0;
  std::vector<std::string> keys;
  std::vector<size_t> route;  // each key's server
  uint64_t next_seed = 0;     // the batch number; touched by the slot's thread only
  std::atomic<bool> retired{false};  // a put timed out on registered memory: the arena may still be read
  std::thread thread;
  std::atomic<bool> running{false};
};

uint64_t KeyId(int process, int slot, int i) {
  return (uint64_t(process) << 40) | (uint64_t(slot) << 20) | uint64_t(i);
}

class FanInChild {
 public:
  FanInChild(const FanInOptions& o, Engine engine, uint64_t nonce)
      : o_(o), engine_(std::move(engine)), nonce_(nonce) {}

  int Run() {
    const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(o_.seconds));
    std::vector<std::unique_ptr<Slot>> slots;
    std::vector<MemoryHandle> handles;
    for (int s = 0; s < o_.workers; ++s) {
      auto slot = std::make_unique<Slot>();
      slot->capacity = size_t(o_.entries) * o_.max_value;
      slot->arena.reset(new std::byte[slot->capacity]);  // untouched until used
      for (int i = 0; i < o_.entries; ++i) {
        slot->keys.push_back("fan-in/p" + std::to_string(o_.child) + "/s" + std::to_string(s) +
                             "/" + std::to_string(i));
        slot->route.push_back(engine_.RouteKey(slot->keys.back()));
      }
      if (register_) {
        auto h = engine_.RegisterMemory(slot->arena.get(), slot->capacity);
        if (!h) {
          std::printf("memkv-bench: RegisterMemory: %s\n", h.error().message.c_str());
          return 1;
        }
        handles.push_back(*h);
      }
      slots.push_back(std::move(slot));
    }
    // Threads come and go: each runs a few batches and exits; its slot gets
    // a new thread while the run lasts.
    for (;;) {
      const bool more = Clock::now() < end;
      bool any = false;
      for (auto& slot : slots) {
        if (slot->running.load()) {
          any = true;
          continue;
        }
        if (slot->thread.joinable()) slot->thread.join();
        if (!more || slot->retired) continue;
        slot->running.store(true);
        stats_.threads += 1;
        Slot* s = slot.get();
        const int index = static_cast<int>(&slot - slots.data());
        slot->thread = std::thread([this, s, index, end] {
          for (int b = 0; b < o_.worker_batches && Clock::now() < end && !s->retired; ++b)
            Batch(*s, index);
          s->running.store(false);
        });
        any = true;
      }
      if (!any && !more) break;
      if (!any && std::all_of(slots.begin(), slots.end(), [](auto& s) { return s->retired.load(); })) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& h : handles) engine_.UnregisterMemory(h);
    std::string first;
    {
      std::lock_guard lock(stats_.mu);
      first = stats_.first_error;
    }
    std::printf("RESULT ok=%" PRIu64 " failed=%" PRIu64 " verify_failed=%" PRIu64
                " batches=%" PRIu64 " threads=%" PRIu64 " bytes=%" PRIu64 " first_error=%s\n",
                stats_.ok.load(), stats_.failed.load(), stats_.verify_failed.load(),
                stats_.batches.load(), stats_.threads.load(), stats_.bytes.load(), first.c_str());
    std::fflush(stdout);
    return 0;
  }

  void set_register(bool r) { register_ = r; }
  // Trace lines go to this descriptor (O_APPEND), owned by the caller.
  void set_trace_fd(int fd) { trace_fd_ = fd; }

 private:
  size_t SizeOf(uint64_t key_id, uint64_t seed) const {
    return o_.min_value + PatternBase(key_id, seed ^ 0x5157) % (o_.max_value - o_.min_value + 1);
  }

  // Puts every entry of the slot, reads them back into the zeroed arena and
  // checks each byte.
  void Batch(Slot& s, int slot) {
    const uint64_t seed = nonce_ + s.next_seed++;
    const size_t n = s.keys.size();
    std::vector<size_t> at(n), size(n);
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      at[i] = total;
      size[i] = SizeOf(KeyId(o_.child, slot, int(i)), seed);
      total += size[i];
    }
    std::byte* base = s.arena.get();
    for (size_t i = 0; i < n; ++i)
      FillBlock({base + at[i], size[i]}, KeyId(o_.child, slot, int(i)), seed);
    std::vector<PutEntry> puts(n);
    for (size_t i = 0; i < n; ++i) puts[i] = {s.keys[i], base + at[i], size[i]};
    const double started = UnixNow();
    PutResults put = engine_.BatchPut(puts);
    if (!put.outcome) Error("put: " + put.outcome.message);
    if (register_) {
      for (Code c : put.entries)
        if (c == Code::kTimeout) s.retired = true;  // the library may still read the arena
      if (s.retired) Error("a put timed out on registered memory: its slot is retired");
    }
    GetResults got;
    if (!s.retired) {
      std::memset(base, 0, total);  // a stale buffer cannot pass
      std::vector<GetEntry> gets(n);
      for (size_t i = 0; i < n; ++i) gets[i] = {s.keys[i], base + at[i], size[i]};
      got = engine_.BatchGet(gets);
      if (!got.outcome) Error("get: " + got.outcome.message);
    }
    const double ended = UnixNow();
    // Per server: entries good, entries failed, the first failure's name.
    const size_t servers = engine_.server_count();
    std::vector<uint64_t> ok(servers), failed(servers);
    std::vector<std::string> why(servers);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      const Code pc = i < put.entries.size() ? put.entries[i] : Code::kInternal;
      const Code gc = i < got.entries.size() ? got.entries[i].status : Code::kInternal;
      bool good = pc == Code::kOk && gc == Code::kOk;
      std::string fail;
      if (pc != Code::kOk) {
        fail = std::string("put ") + CodeName(pc);
      } else if (gc != Code::kOk) {
        fail = std::string("get ") + CodeName(gc);
      } else if (got.entries[i].length != size[i] ||
                 !VerifyBlock({base + at[i], size[i]}, KeyId(o_.child, slot, int(i)), seed)) {
        // Acknowledged, read back Ok, and other bytes: the one thing that
        // must never happen.
        good = false;
        fail = "wrong bytes";
        stats_.verify_failed += 1;
      }
      if (good) {
        ok[s.route[i]] += 1;
        bytes += 2 * size[i];
      } else {
        failed[s.route[i]] += 1;
        if (why[s.route[i]].empty()) why[s.route[i]] = fail;
        Error(s.keys[i] + " (server " + engine_.server(s.route[i]) + "): " + fail);
      }
    }
    uint64_t all_ok = 0, all_failed = 0;
    for (size_t v = 0; v < servers; ++v) {
      all_ok += ok[v];
      all_failed += failed[v];
    }
    stats_.ok += all_ok;
    stats_.failed += all_failed;
    stats_.bytes += bytes;
    stats_.batches += 1;
    if (trace_fd_ >= 0) {
      std::string lines;
      for (size_t v = 0; v < servers; ++v) {
        if (ok[v] + failed[v] == 0) continue;
        char line[256];
        std::snprintf(line, sizeof line, "%.3f %.3f %d %d %zu %" PRIu64 " %" PRIu64 " %s\n", started,
                      ended, o_.child, slot, v, ok[v], failed[v],
                      why[v].empty() ? "-" : why[v].substr(why[v].find(' ') + 1).c_str());
        lines += line;
      }
      // O_APPEND: the lines of one write() stay together across processes.
      (void)!::write(trace_fd_, lines.data(), lines.size());
    }
  }

  void Error(const std::string& what) { stats_.Error(what); }

  const FanInOptions& o_;
  Engine engine_;
  const uint64_t nonce_;
  bool register_ = true;
  int trace_fd_ = -1;
  ChildStats stats_;
};

// ---------------------------------------------------------------------------
// The parent.

struct Sample {
  double at = 0;  // seconds since the clients started
  int64_t sessions = -1;
  int64_t fds = -1;
  int64_t rss = -1;  // bytes
};

int64_t CountFds(pid_t pid) {
  std::error_code ec;
  int64_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return ec ? -1 : n;
}

int64_t VmRss(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  return -1;
}

int64_t Sessions(uint16_t admin_port) {
  auto url = http::ParseUrl("127.0.0.1:" + std::to_string(admin_port));
  if (!url) return -1;
  auto r = http::Fetch(*url, "GET", "/v1/status");
  if (!r || r->status != 200) return -1;
  boost::system::error_code ec;
  auto v = boost::json::parse(r->body, ec);
  if (ec || !v.is_object()) return -1;
  const auto* s = v.as_object().if_contains("sessions");
  if (!s || !s->is_object()) return -1;
  const auto* a = s->as_object().if_contains("active");
  return a && a->is_int64() ? a->as_int64() : (a && a->is_uint64() ? int64_t(a->as_uint64()) : -1);
}

std::string Mib(int64_t bytes) {
  if (bytes < 0) return "?";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", double(bytes) / (1 << 20));
  return b;
}

std::string Show(int64_t v) { return v < 0 ? "?" : std::to_string(v); }

// A client process's RESULT line, parsed.
struct ChildResult {
  bool reported = false;
  uint64_t ok = 0, failed = 0, verify_failed = 0, batches = 0, threads = 0, bytes = 0;
  std::string first_error, log_tail;
  std::vector<std::string> log_lines;  // what else the client printed (the library's warnings)
  int status = -1;
};

ChildResult ReadResult(const std::string& log) {
  ChildResult r;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RESULT ", 0) != 0) {
      r.log_tail = line;
      if (r.log_lines.size() < 20) r.log_lines.push_back(line);
      continue;
    }
    r.reported = true;
    std::istringstream words(line.substr(7));
    std::string w;
    while (words >> w) {
      const auto eq = w.find('=');
      if (eq == std::string::npos) continue;
      const std::string k = w.substr(0, eq), v = w.substr(eq + 1);
      if (k == "first_error") {
        std::string rest;
        std::getline(words, rest);
        r.first_error = v + rest;
        break;
      }
      const uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
      if (k == "ok") r.ok = n;
      if (k == "failed") r.failed = n;
      if (k == "verify_failed") r.verify_failed = n;
      if (k == "batches") r.batches = n;
      if (k == "threads") r.threads = n;
      if (k == "bytes") r.bytes = n;
    }
  }
  return r;
}

std::string Fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

void AddFanInOptions(CLI::App& app, FanInOptions& o) {
  const std::string g = "fan-in (--tier fan-in)";
  app.add_option("--processes", o.processes, "fan-in: client processes")
      ->capture_default_str()->check(CLI::Range(1, 64))->group(g);
  app.add_option("--workers", o.workers, "fan-in: worker threads alive at once per process")
      ->capture_default_str()->check(CLI::Range(1, 64))->group(g);
  app.add_option("--worker-batches", o.worker_batches,
                 "fan-in: batches a worker thread runs before a new thread replaces it")
      ->capture_default_str()->check(CLI::Range(1, 1000000))->group(g);
  app.add_option("--entries", o.entries, "fan-in: entries per batch")
      ->capture_default_str()->check(CLI::Range(1, 1000000))->group(g);
  app.add_option("--min-value", o.min_value, "fan-in: smallest value, bytes")
      ->capture_default_str()->check(CLI::Range(1, 1 << 24))->group(g);
  app.add_option("--max-value", o.max_value, "fan-in: largest value, bytes")
      ->capture_default_str()->check(CLI::Range(1, 1 << 24))->group(g);
  app.add_option("--minutes", o.seconds, "fan-in: length of the run in minutes (or --seconds)")
      ->transform([](std::string s) { return std::to_string(std::stod(s) * 60); })
      ->group(g);
  app.add_option("--warmup", o.warmup,
                 "fan-in: seconds before the first sample compared (default: a fifth of the "
                 "run, at most 60)")->group(g);
  app.add_option("--sample", o.sample, "fan-in: seconds between samples of the server")
      ->capture_default_str()->check(CLI::Range(0.2, 600.0))->group(g);
  app.add_option("--fan-in-servers", o.servers,
                 "fan-in: use these servers (host:port, comma-separated) instead of starting one")
      ->delimiter(',')->group(g);
  app.add_option("--fan-in-auth-key", o.auth_key_hex, "fan-in: the auth key of --fan-in-servers")
      ->group(g);
  app.add_option("--transport", o.transport,
                 "fan-in: the client's transport (rdma: libfabric's tcp provider, the client's "
                 "address from MEMKV_RDMA_ADDRESS, else 127.0.0.1; the server started has "
                 "rdma.provider=ofi)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "tcp", "shm", "rdma"}))->group(g);
  app.add_option("--timeout", o.timeout, "fan-in: the client's deadline of every call, seconds")
      ->capture_default_str()->check(CLI::Range(0.1, 3600.0))->group(g);
  app.add_option("--connect-timeout", o.connect_timeout, "fan-in: connect and attach, seconds")
      ->capture_default_str()->check(CLI::Range(0.1, 600.0))->group(g);
  app.add_option("--trace", o.trace_path,
                 "fan-in: append one line per batch and server to this file")->group(g);
  app.add_flag("--allow-failures", o.allow_failures,
               "fan-in: report failed entries without failing the run (wrong bytes still fail)")
      ->group(g);
  app.add_option("--fd-slack", o.fd_slack,
                 "fan-in: descriptors the server may gain between the warm sample and the end")
      ->capture_default_str()->group(g);
  app.add_option("--fan-in-server-memory", o.server_memory,
                 "fan-in: memory.max_size of our server, bytes (default: from the working set)")
      ->group(g);
  app.add_option("--fan-in-child", o.child, "(internal) run as client process N")
      ->group("");
}

int RunFanInChild(const FanInOptions& o) {
  EngineOptions eo;
  eo.servers = o.servers;
  eo.auth_key = o.auth_key_hex;
  eo.transport = o.transport == "shm"    ? Transport::kShm
                 : o.transport == "auto" ? Transport::kAuto
                 : o.transport == "rdma" ? Transport::kRdma
                                         : Transport::kTcp;
  if (eo.transport == Transport::kRdma) {
    const char* a = std::getenv("MEMKV_RDMA_ADDRESS");
    eo.rdma_address = a && *a ? a : "127.0.0.1";
  }
  eo.timeout = std::chrono::milliseconds(int64_t(o.timeout * 1000));
  eo.connect_timeout = std::chrono::milliseconds(int64_t(o.connect_timeout * 1000));
  auto engine = Engine::Create(std::move(eo));
  if (!engine) {
    std::printf("memkv-bench: %s\n", engine.error().message.c_str());
    return 1;
  }
  // A run's values differ from an earlier run's over the same server.
  const uint64_t nonce = uint64_t(UnixNow() * 1000) << 20;
  FanInChild child(o, std::move(*engine), nonce);
  // Timed-out puts may leave registered memory with the library; a run that
  // expects failures copies its values instead (the arena is reused).
  child.set_register(!o.allow_failures);
  int trace_fd = -1;
  if (!o.trace_path.empty()) {
    trace_fd = ::open(o.trace_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (trace_fd < 0) {
      std::printf("memkv-bench: %s: %s\n", o.trace_path.c_str(), std::strerror(errno));
      return 1;
    }
    child.set_trace_fd(trace_fd);
  }
  const int rc = child.Run();
  if (trace_fd >= 0) ::close(trace_fd);
  return rc;
}

int RunFanIn(const FanInOptions& o, const std::string& self, Progress& progress) {
  if (o.min_value > o.max_value) {
    std::fprintf(stderr, "memkv-bench: --min-value is above --max-value\n");
    return 1;
  }
  InstallCleanupHandler();
  char dir_template[] = "/tmp/memkv-fan-in-XXXXXX";
  if (!::mkdtemp(dir_template)) {
    std::fprintf(stderr, "memkv-bench: mkdtemp: %s\n", std::strerror(errno));
    return 1;
  }
  const std::string dir = dir_template;
  RegisterPath(dir);
  std::vector<std::string> files;
  auto cleanup = [&] {
    for (const auto& f : files) {
      ::unlink(f.c_str());
      ForgetPath(f);
    }
    ::rmdir(dir.c_str());
    ForgetPath(dir);
  };

  // Our server, unless --fan-in-servers names some.
  std::optional<ChildProcess> server;
  std::vector<std::string> servers = o.servers;
  uint16_t admin_port = 0;
  std::string server_command, server_log;
  if (servers.empty()) {
    uint64_t memory = o.server_memory;
    if (memory == 0) {  // the working set with room to spare
      const uint64_t set = uint64_t(o.processes) * o.workers * o.entries * o.max_value;
      memory = std::max<uint64_t>(256ull << 20, (set + set / 4 + (64ull << 20)) >> 20 << 20);
    }
    const std::string log = dir + "/server.log", sock = dir + "/memkv.sock";
    server_log = log;
    for (const auto& p : {log, sock}) {
      RegisterPath(p);
      files.push_back(p);
    }
    progress.Begin("starting memkv server (memory mode, " + FormatSize(memory) + ")");
    for (int attempt = 0; attempt < 5 && !server; ++attempt) {
      const uint16_t port = FreePortPair();
      std::vector<std::string> args = {o.memkv_binary, "--log-level", "warn", "server",
                                       "--mode", "memory", "--memory", std::to_string(memory),
                                       "--address", "127.0.0.1:" + std::to_string(port),
                                       "--unix-socket", sock,
                                       "--threads", std::to_string(o.server_threads)};
      if (o.transport == "rdma") {
        args.insert(args.end(), {"--set", "rdma.provider=ofi", "--set", "rdma.address=127.0.0.1"});
      }
      std::string error;
      server = ChildProcess::Spawn(args, log, error, dir);
      if (!server) {
        progress.End("failed: " + error);
        cleanup();
        return 1;
      }
      bool up = false;
      for (int i = 0; i < 200 && !up; ++i) {
        if (server->Exited()) break;
        up = PortAccepts(port) && Sessions(uint16_t(port + 1)) >= 0;
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!up) {
        server.reset();
        continue;
      }
      servers = {"127.0.0.1:" + std::to_string(port)};
      admin_port = uint16_t(port + 1);
      for (const auto& a : args) server_command += (server_command.empty() ? "" : " ") + a;
    }
    if (!server) {
      progress.End("failed: the server did not start; see its log");
      std::ifstream in(log);
      std::fprintf(stderr, "%s", std::string(std::istreambuf_iterator<char>(in), {}).c_str());
      cleanup();
      return 1;
    }
    progress.End("listening on " + servers[0] + " (pid " + std::to_string(server->pid()) + ")");
  }
  auto sample = [&](double at) {
    Sample s;
    s.at = at;
    if (server) {
      s.sessions = Sessions(admin_port);
      s.fds = CountFds(server->pid());
      s.rss = VmRss(server->pid());
    }
    return s;
  };
  const Sample baseline = sample(0);

  // The client processes.
  std::string joined;
  for (const auto& s : servers) joined += (joined.empty() ? "" : ",") + s;
  std::vector<ChildProcess> children;
  std::vector<std::string> logs;
  const auto started = Clock::now();
  for (int p = 0; p < o.processes; ++p) {
    std::vector<std::string> args = {
        self, "--tier", "fan-in", "--fan-in-child", std::to_string(p),
        "--fan-in-servers", joined, "--transport", o.transport,
        "--seconds", Fmt("%.3f", o.seconds), "--workers", std::to_string(o.workers),
        "--worker-batches", std::to_string(o.worker_batches),
        "--entries", std::to_string(o.entries),
        "--min-value", std::to_string(o.min_value), "--max-value", std::to_string(o.max_value),
        "--timeout", Fmt("%.3f", o.timeout), "--connect-timeout", Fmt("%.3f", o.connect_timeout)};
    if (!o.auth_key_hex.empty()) {
      args.push_back("--fan-in-auth-key");
      args.push_back(o.auth_key_hex);
    }
    if (!o.trace_path.empty()) {
      args.push_back("--trace");
      args.push_back(o.trace_path);
    }
    if (o.allow_failures) args.push_back("--allow-failures");
    const std::string log = dir + "/client" + std::to_string(p) + ".log";
    RegisterPath(log);
    files.push_back(log);
    logs.push_back(log);
    std::string error;
    auto c = ChildProcess::Spawn(args, log, error);
    if (!c) {
      std::fprintf(stderr, "memkv-bench: %s\n", error.c_str());
      children.clear();
      cleanup();
      return 1;
    }
    children.push_back(std::move(*c));
  }
  const double warmup = o.warmup >= 0 ? o.warmup : std::min(60.0, o.seconds / 5);
  progress.Note("fan-in: " + std::to_string(o.processes) + " client processes x " +
                std::to_string(o.workers) + " rotating worker threads (" +
                std::to_string(o.worker_batches) + " batches each), " +
                std::to_string(o.entries) + "-entry batches of " + std::to_string(o.min_value) +
                "-" + std::to_string(o.max_value) + " B values, " + Fmt("%.0f", o.seconds) +
                " s against " + joined);

  // Samples while the clients run; the first after the warm-up and the
  // last one before the first client exits are compared.
  std::vector<Sample> samples;
  std::optional<Sample> warm, last;
  const double limit = o.seconds + o.timeout * 2 + 60;  // a stuck client is killed after this
  size_t alive = children.size();
  std::vector<int> statuses(children.size(), -1);
  double next_sample = 0;
  while (alive > 0) {
    const double t = std::chrono::duration<double>(Clock::now() - started).count();
    if (t >= next_sample) {
      next_sample = t + o.sample;
      if (server && alive == children.size()) {
        const Sample s = sample(t);
        samples.push_back(s);
        if (!warm && t >= warmup) warm = s;
        last = s;
        progress.Note(Fmt("fan-in: %6.0f s", t) + "  sessions " + Show(s.sessions) + "  fds " +
                      Show(s.fds) + "  rss " + Mib(s.rss));
      }
    }
    if (t > limit) {
      progress.Note("fan-in: clients still running " + Fmt("%.0f", t) + " s in: killing them");
      for (auto& c : children) c.Stop(std::chrono::milliseconds(1000));
    }
    for (size_t i = 0; i < children.size(); ++i) {
      int st = 0;
      if (children[i].running() && children[i].Exited(&st)) {
        statuses[i] = st;
        --alive;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double ran = std::chrono::duration<double>(Clock::now() - started).count();

  // After the clients: the server must let their sessions go.
  Sample after;
  if (server) {
    for (int i = 0; i < 100; ++i) {  // up to 10 s
      after = sample(ran);
      if (after.sessions == baseline.sessions) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  ChildResult total;
  int bad_children = 0;
  std::string first_error;
  std::string client_logs;  // of the clients with failures, shown when the run fails
  for (size_t i = 0; i < logs.size(); ++i) {
    ChildResult r = ReadResult(logs[i]);
    if ((r.failed > 0 || r.verify_failed > 0 || !r.reported) && !r.log_lines.empty()) {
      client_logs += "client " + std::to_string(i) + " printed:\n";
      for (const auto& l : r.log_lines) client_logs += "  " + l + "\n";
    }
    const bool clean = r.reported && WIFEXITED(statuses[i]) && WEXITSTATUS(statuses[i]) == 0;
    if (!clean) {
      ++bad_children;
      if (first_error.empty())
        first_error = "client " + std::to_string(i) + " ended without a result: " + r.log_tail;
    }
    total.ok += r.ok;
    total.failed += r.failed;
    total.verify_failed += r.verify_failed;
    total.batches += r.batches;
    total.threads += r.threads;
    total.bytes += r.bytes;
    if (first_error.empty() && !r.first_error.empty())
      first_error = "client " + std::to_string(i) + ": " + r.first_error;
  }

  // The report.
  const uint64_t entries = total.ok + total.failed;
  const double success = entries ? 100.0 * double(total.ok) / double(entries) : 0;
  std::printf("memkv-bench --tier fan-in\n");
  if (!server_command.empty()) std::printf("server: %s\n", server_command.c_str());
  std::printf("clients: %d processes x %d worker threads at a time, a new thread every %d "
              "batches; %d entries per batch, values %" PRIu64 "-%" PRIu64 " B, transport %s\n",
              o.processes, o.workers, o.worker_batches, o.entries, o.min_value, o.max_value,
              o.transport.c_str());
  std::printf("ran %.1f s: %" PRIu64 " batches, %" PRIu64 " worker threads, %" PRIu64
              " entries (put + get + check), %s moved (%.1f MiB/s)\n",
              ran, total.batches, total.threads, entries, FormatSize(total.bytes).c_str(),
              double(total.bytes) / (1 << 20) / std::max(ran, 1e-3));
  std::printf("success: %.4f %% (%" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64
              " wrong bytes, %d clients without a clean result)\n",
              success, total.ok, total.failed, total.verify_failed, bad_children);
  if (!first_error.empty()) std::printf("first failure: %s\n", first_error.c_str());
  bool flat = true;
  std::string why;
  if (server) {
    const Sample w = warm.value_or(samples.empty() ? baseline : samples.front());
    const Sample l = last.value_or(w);
    std::printf("%-28s %10s %10s %14s\n", "server", "sessions", "fds", "VmRSS");
    auto row = [](const char* name, const Sample& s) {
      std::printf("%-28s %10s %10s %14s\n", name, Show(s.sessions).c_str(), Show(s.fds).c_str(),
                  Mib(s.rss).c_str());
    };
    row("before the clients", baseline);
    row(Fmt("warm (%.0f s)", w.at).c_str(), w);
    row(Fmt("end (%.0f s)", l.at).c_str(), l);
    row("after the clients exit", after);
    const double growth = w.rss > 0 ? 100.0 * double(l.rss - w.rss) / double(w.rss) : 0;
    std::printf("warm -> end: sessions %+" PRId64 ", fds %+" PRId64 ", VmRSS %+.1f MiB (%+.1f %%)\n",
                l.sessions - w.sessions, l.fds - w.fds, double(l.rss - w.rss) / (1 << 20), growth);
    if (after.sessions != baseline.sessions) {
      flat = false;
      why += " sessions not back to the baseline;";
    }
    if (l.fds > w.fds + int64_t(o.fd_slack) || after.fds > baseline.fds + int64_t(o.fd_slack)) {
      flat = false;
      why += " descriptors grew beyond --fd-slack;";
    }
  }
  const bool entries_ok = o.allow_failures || (total.failed == 0 && entries > 0);
  const bool ok = entries_ok && total.verify_failed == 0 && bad_children == 0 && flat;
  std::printf("result: %s%s\n", ok ? "PASS" : "FAIL", why.c_str());
  if (server) {
    server->Stop();
    server.reset();
  }
  if (!ok) {  // what the failing clients and our server (warnings and up) said
    std::printf("%s", client_logs.c_str());
    if (!server_log.empty()) {
      std::ifstream in(server_log);
      std::vector<std::string> lines;
      for (std::string line; std::getline(in, line);) lines.push_back(line);
      const size_t from = lines.size() > 40 ? lines.size() - 40 : 0;
      std::printf("server log (%zu lines, the last %zu):\n", lines.size(), lines.size() - from);
      for (size_t i = from; i < lines.size(); ++i) std::printf("  %s\n", lines[i].c_str());
    }
  }
  std::fflush(stdout);
  children.clear();
  cleanup();
  return ok ? 0 : 1;
}

}  // namespace memkv::bench
