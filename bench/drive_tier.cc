#include "drive_tier.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "common/size.h"
#include "fio.h"
#include "io/block_device.h"
#include "server/loops.h"
#include "store/drives.h"
#include "store/error.h"
#include "store/store.h"
#include "verify.h"

namespace memkv::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using io::Awaitable;

constexpr uint64_t kPage = 4096;
// The store's page cost of a value: its pages, plus one checksum-table page
// per extent for values of more than 16 pages (store/journal_format.h).
uint64_t StorePages(uint64_t value_size) {
  const uint64_t pages = (value_size + kPage - 1) / kPage;
  return pages + (pages > 16 ? 1 : 0);
}

// The bench could not go on; what went wrong was reported on the way.
error_code Failed() { return boost::system::errc::make_error_code(boost::system::errc::io_error); }

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double GiBps(const Run& r) { return r.seconds > 0 ? r.bytes / r.seconds / double(1ull << 30) : 0; }
double Iops(const Run& r) { return r.seconds > 0 ? r.ops / r.seconds : 0; }

std::vector<double> Each(const Series& s, double (*f)(const Run&)) {
  std::vector<double> v;
  for (const Run& r : s.runs) v.push_back(f(r));
  return v;
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

// Keys of the bench: a prefix and the key's number, which is also what its
// value is generated from (verify.h).
std::string_view KeyName(char (&buf)[48], std::string_view prefix, uint64_t id) {
  std::memcpy(buf, prefix.data(), prefix.size());
  auto [end, ec] = std::to_chars(buf + prefix.size(), buf + sizeof buf, id);
  return {buf, static_cast<size_t>(end - buf)};
}

// A set of values written before a read workload; keys made once, up front.
struct KeySet {
  std::string prefix;
  uint64_t seed = 0;
  uint64_t value_size = 0;
  std::vector<std::string> keys;

  void Make(uint64_t count) {
    keys.reserve(count);
    char buf[48];
    for (uint64_t i = 0; i < count; ++i) keys.emplace_back(KeyName(buf, prefix, i));
  }
};

// xorshift64*: one multiply per number, no allocation.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ? seed : 0x853c49e6748fea9bull) {}
  uint64_t Next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545f4914f6cdd1dull;
  }
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t s_;
};

// What the workers of one memkv run count. Loop-confined: every worker of a
// run is on the one loop.
struct Counters {
  uint64_t ops = 0, bytes = 0, verify_failures = 0, errors = 0;
  std::string first_error;
  void Error(const std::string& what) {
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

// The coroutines of one phase: spawned here, each one's exception kept (the
// first) rather than lost, and Wait() returns when all have ended.
// Loop-confined.
class TaskGroup {
 public:
  explicit TaskGroup(const asio::any_io_executor& ex) : ex_(ex), done_(ex) {
    done_.expires_at(asio::steady_timer::time_point::max());
  }

  void Spawn(Awaitable<void> task) {
    ++live_;
    asio::co_spawn(ex_, std::move(task), [this](std::exception_ptr e) {
      if (e && failure_.empty()) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          failure_ = x.what();
        } catch (...) {
          failure_ = "unknown exception";
        }
      }
      if (--live_ == 0) done_.cancel();
    });
  }

  Awaitable<void> Wait() {
    while (live_ > 0) co_await done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  const std::string& failure() const { return failure_; }

 private:
  asio::any_io_executor ex_;
  asio::steady_timer done_;
  size_t live_ = 0;
  std::string failure_;
};

// Redraws progress every 200 ms until stopped; cancellable at once.
class Ticker {
 public:
  Ticker(const asio::any_io_executor& ex, std::function<void()> tick)
      : timer_(ex), tick_(std::move(tick)) {}
  Awaitable<void> Run() {
    while (!stop_) {
      tick_();
      timer_.expires_after(std::chrono::milliseconds(200));
      co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  void Stop() {
    stop_ = true;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  std::function<void()> tick_;
  bool stop_ = false;
};

Series MakeSeries(std::string id, std::string label, std::string what) {
  Series s;
  s.id = std::move(id);
  s.label = std::move(label);
  s.what = std::move(what);
  return s;
}

// Reads random values of `set` until `end`, checking each.
Awaitable<void> ReadLoop(store::Store& s, const KeySet& set, std::span<std::byte> buf,
                         uint64_t rng_seed, Clock::time_point end, Counters& c) {
  Rng rng(rng_seed);
  while (Clock::now() < end) {
    const uint64_t i = rng.Below(set.keys.size());
    auto got = co_await s.Get(set.keys[i], 0, buf);
    if (!got) {
      c.Error("get " + set.keys[i] + ": " + got.error().message());
      continue;
    }
    if (*got != buf.size()) {
      c.Error("get " + set.keys[i] + ": short read");
      continue;
    }
    if (!VerifyBlock(buf, i, set.seed)) ++c.verify_failures;
    ++c.ops;
    c.bytes += buf.size();
  }
}

// Puts values `prefix<id>` for ids taken from `next_id` up to `limit` or
// until `end`, each generated from its id.
Awaitable<void> PutLoop(store::Store& s, std::string_view prefix, uint64_t seed,
                        std::span<std::byte> buf, uint64_t& next_id, uint64_t limit,
                        Clock::time_point end, Counters& c) {
  char key_buf[48];
  while (next_id < limit && Clock::now() < end) {
    const uint64_t id = next_id++;
    FillBlock(buf, id, seed);
    const std::string_view key = KeyName(key_buf, prefix, id);
    auto st = co_await s.Put(key, buf);
    if (!st) {
      c.Error("put " + std::string(key) + ": " + st.error().message());
      continue;
    }
    ++c.ops;
    c.bytes += buf.size();
  }
}

// Deletes the keys of `set` from `next` on.
Awaitable<void> DeleteLoop(store::Store& s, const KeySet& set, size_t& next, Counters& c) {
  while (next < set.keys.size()) {
    const std::string& key = set.keys[next++];
    auto d = co_await s.Delete(key);
    if (!d) c.Error("delete " + key + ": " + d.error().message());
  }
}

// Captures what the store logs about recovery (records and ops replayed)
// and about O_DIRECT, which its API does not report. Guarded by the sink's
// mutex; read between operations, when nothing logs.
class StoreLogTap final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  int64_t records = -1, ops = -1;
  bool buffered_io = false;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (const size_t at = text.find("replayed "); at != std::string_view::npos) {
      long long r = -1, o = -1;
      const std::string tail(text.substr(at));
      if (std::sscanf(tail.c_str(), "replayed %lld records (%lld ops)", &r, &o) == 2) {
        records = r;
        ops = o;
      }
    }
    if (text.find("does not support O_DIRECT") != std::string_view::npos) buffered_io = true;
  }
  void flush_() override {}
};

// Adds the tap to the default logger for its life, letting info through
// to the tap only (the logger's own sinks keep the level they had).
class TapInstall {
 public:
  TapInstall() : logger_(spdlog::default_logger()), tap_(std::make_shared<StoreLogTap>()) {
    old_level_ = logger_->level();
    for (auto& sink : logger_->sinks()) sink->set_level(std::max(sink->level(), old_level_));
    tap_->set_level(spdlog::level::info);
    logger_->sinks().push_back(tap_);
    logger_->set_level(std::min(old_level_, spdlog::level::info));
  }
  ~TapInstall() {
    auto& sinks = logger_->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), tap_), sinks.end());
    logger_->set_level(old_level_);
  }
  StoreLogTap& tap() { return *tap_; }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<StoreLogTap> tap_;
  spdlog::level::level_enum old_level_;
};

// The bench's state while it runs.
class Bench {
 public:
  Bench(const DriveTierOptions& o, Progress& p, DriveTierResult& r, server::Loops& loops,
        StoreLogTap& tap)
      : o_(o), progress_(p), result_(r), loops_(loops), tap_(tap) {}

  Status Go();

 private:
  Status OpenMainStore();
  Result<std::unique_ptr<store::Store>> OpenStore(const std::string& path);
  Status PrepareFioFile();
  Status Fill(KeySet& set, uint64_t count, const std::string& what, double& seconds);
  Status DeleteSet(const KeySet& set);
  Status ReadWorkload(const std::string& id, uint64_t value_size, uint64_t wanted_keys);
  Status WriteWorkload();
  Status Reopen();

  // One memkv run: `make` spawns the workers into the group.
  Status MemkvRun(Series& series, int run, double seconds,
                  const std::function<void(TaskGroup&, Clock::time_point, Counters&)>& make,
                  Run& out, Counters& counters);
  // One fio run appended to `series`; a failure is a note and ends the series.
  void FioRun(Series& series, const FioJob& job, int run);

  void AddStats(Series& s, const store::StoreStats& before, const store::StoreStats& after);
  std::string RunLabel(const Series& s, int run) const {
    return s.label + ", run " + std::to_string(run + 1) + "/" + std::to_string(o_.runs);
  }

  const DriveTierOptions& o_;
  Progress& progress_;
  DriveTierResult& result_;
  server::Loops& loops_;
  StoreLogTap& tap_;
  std::unique_ptr<store::Store> store_;
  bool fio_ = false;
};

Result<std::unique_ptr<store::Store>> Bench::OpenStore(const std::string& path) {
  auto dev = store::OpenDrive(path, store::Mode::kFile, loops_.helpers());
  if (!dev) return dev.error();
  std::vector<std::unique_ptr<io::BlockDevice>> drives;
  drives.push_back(std::move(*dev));
  store::StoreOptions so;
  so.mode = store::Mode::kFile;
  so.memory_max_size = o_.memory;
  Result<std::unique_ptr<store::Store>> opened = store::errc::closed;
  auto st = loops_.RunBlocking([&]() -> Awaitable<Status> {
    opened = co_await store::Store::Open(std::move(drives), so);
    co_return Status{};
  });
  if (!st) return st.error();
  return opened;
}

Status Bench::OpenMainStore() {
  const std::string& path = result_.drive_file;
  if (auto st = store::CreateDriveFile(path, o_.size); !st) return st;
  {
    auto dev = store::OpenDrive(path, store::Mode::kFile, loops_.helpers());
    if (!dev) return dev.error();
    io::BlockDevice* one[] = {dev->get()};
    auto st = loops_.RunBlocking([&]() -> Awaitable<Status> {
      co_return co_await store::FormatSet(std::span<io::BlockDevice* const>(one));
    });
    if (!st) return st;
  }
  auto s = OpenStore(path);
  if (!s) return s.error();
  store_ = std::move(*s);
  if (tap_.buffered_io)
    result_.notes.push_back(result_.machine.filesystem +
                            " does not support O_DIRECT: the store fell back to buffered I/O, "
                            "so its reads may come from the page cache");
  result_.drive_data_bytes = store_->stats().drives.at(0).usable_bytes;
  return {};
}

Status Bench::PrepareFioFile() {
  FioJob job;
  job.filename = result_.fio_file;
  job.rw = "write";
  job.block_size = 1 << 20;
  job.iodepth = o_.qd;
  job.size = o_.size;
  progress_.Begin("fio: laying out " + result_.fio_file + " (" + FormatSize(o_.size) + ")");
  std::string error;
  const auto t0 = Clock::now();
  auto r = RunFio(job, error, [&] { progress_.Update(0, Fixed(SecondsSince(t0), 1) + " s"); });
  if (!r) {
    progress_.End("failed: " + error);
    return Failed();
  }
  progress_.End(Fixed(r->bw_bytes / double(1ull << 30), 2) + " GiB/s (not a figure: layout)");
  return {};
}

Status Bench::MemkvRun(Series& series, int run, double seconds,
                       const std::function<void(TaskGroup&, Clock::time_point, Counters&)>& make,
                       bench::Run& out, Counters& counters) {
  progress_.Begin(RunLabel(series, run));
  const store::StoreStats before = store_->stats();
  std::string failure;
  auto st = loops_.RunBlocking([&]() -> Awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    TaskGroup workers(ex), ticking(ex);
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(seconds));
    Ticker ticker(ex, [&] {
      const double t = SecondsSince(start);
      progress_.Update(t / seconds, Fixed(counters.bytes / t / double(1ull << 30), 2) +
                                        " GiB/s so far");
    });
    ticking.Spawn(ticker.Run());
    make(workers, end, counters);
    co_await workers.Wait();
    out.seconds = SecondsSince(start);
    ticker.Stop();
    co_await ticking.Wait();
    failure = workers.failure();
    co_return Status{};
  });
  if (!st) return st;
  if (!failure.empty()) counters.Error("a worker failed: " + failure);
  out.ops = counters.ops;
  out.bytes = counters.bytes;
  series.runs.push_back(out);
  AddStats(series, before, store_->stats());
  series.verify_failures += counters.verify_failures;
  series.errors += counters.errors;
  if (series.first_error.empty()) series.first_error = counters.first_error;
  std::string line = Fixed(GiBps(out), 3) + " GiB/s, " + Thousands(uint64_t(Iops(out))) + " ops/s";
  if (counters.errors) line += ", " + Thousands(counters.errors) + " errors: " + counters.first_error;
  if (counters.verify_failures)
    line += ", " + Thousands(counters.verify_failures) + " VERIFY FAILURES";
  progress_.End(line);
  return {};
}

void Bench::AddStats(Series& s, const store::StoreStats& a, const store::StoreStats& b) {
  s.gets += b.gets - a.gets;
  s.cache_hits += b.cache_hits - a.cache_hits;
  s.puts += b.puts - a.puts;
  s.evictions += b.evictions - a.evictions;
  s.journal_records += b.journal_records - a.journal_records;
  s.checkpoints += b.checkpoints - a.checkpoints;
  s.checksum_errors += b.checksum_errors - a.checksum_errors;
}

void Bench::FioRun(Series& series, const FioJob& job, int run) {
  if (!series.skipped.empty()) return;
  series.command = FioCommand(job);
  progress_.Begin(RunLabel(series, run));
  const auto t0 = Clock::now();
  std::string error;
  auto r = RunFio(job, error, [&] {
    progress_.Update(job.seconds > 0 ? SecondsSince(t0) / job.seconds : 0);
  });
  if (!r) {
    progress_.End("failed: " + error);
    series.skipped = "fio failed: " + error;
    series.runs.clear();
    return;
  }
  bench::Run out;
  out.seconds = r->seconds;
  out.bytes = r->bytes;
  out.ops = r->ios ? r->ios : r->bytes / job.block_size;
  series.runs.push_back(out);
  progress_.End(Fixed(r->bw_bytes / double(1ull << 30), 3) + " GiB/s, " +
                Thousands(uint64_t(r->iops)) + " IOPS");
}

Status Bench::Fill(KeySet& set, uint64_t count, const std::string& what, double& seconds) {
  set.Make(count);
  const uint32_t concurrency = set.value_size >= (64 << 10) ? o_.qd : o_.fill_qd;
  progress_.Begin("memkv: writing " + what);
  Counters c;
  uint64_t next = 0;
  std::vector<std::vector<std::byte>> bufs(concurrency, std::vector<std::byte>(set.value_size));
  std::string failure;
  auto st = loops_.RunBlocking([&]() -> Awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    TaskGroup workers(ex), ticking(ex);
    const auto start = Clock::now();
    Ticker ticker(ex, [&] {
      progress_.Update(double(next) / count, Thousands(next) + " of " + Thousands(count));
    });
    ticking.Spawn(ticker.Run());
    for (auto& b : bufs)
      workers.Spawn(PutLoop(*store_, set.prefix, set.seed, b, next, count,
                            Clock::time_point::max(), c));
    co_await workers.Wait();
    seconds = SecondsSince(start);
    ticker.Stop();
    co_await ticking.Wait();
    failure = workers.failure();
    co_return Status{};
  });
  if (!st) return st;
  if (c.errors || !failure.empty()) {
    progress_.End("failed: " + (failure.empty() ? c.first_error : failure));
    return Failed();
  }
  progress_.End(Thousands(count) + " puts in " + Fixed(seconds, 2) + " s (" +
                Thousands(uint64_t(count / seconds)) + " puts/s, " +
                Fixed(c.bytes / seconds / double(1ull << 30), 2) + " GiB/s)");
  return {};
}

Status Bench::DeleteSet(const KeySet& set) {
  progress_.Begin("memkv: deleting " + Thousands(set.keys.size()) + " keys " + set.prefix + "*");
  Counters c;
  size_t next = 0;
  auto st = loops_.RunBlocking([&]() -> Awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    TaskGroup workers(ex);
    for (uint32_t w = 0; w < o_.fill_qd; ++w) {
      workers.Spawn(DeleteLoop(*store_, set, next, c));
    }
    co_await workers.Wait();
    co_return Status{};
  });
  if (!st) return st;
  progress_.End(c.errors ? "failed: " + c.first_error : "done");
  if (c.errors) return Failed();
  return {};
}

Status Bench::ReadWorkload(const std::string& id, uint64_t value_size, uint64_t wanted_keys) {
  WorkloadResult w;
  w.id = id;
  w.block_size = value_size;
  w.qd = o_.qd;
  w.iops = value_size < (64 << 10);
  w.title = std::string(id == "read-1m" ? "(a) " : "(b) ") + FormatSize(value_size) +
            " random reads, queue depth " + std::to_string(o_.qd);
  // At most 75% of the drive's pages: below the store's eviction watermark.
  const uint64_t data_pages = result_.drive_data_bytes / kPage;
  const uint64_t fit = data_pages * 3 / 4 / StorePages(value_size);
  w.keys = std::min(wanted_keys, fit);
  if (w.keys < o_.qd) {
    result_.notes.push_back(w.id + " skipped: the drive holds only " + Thousands(fit) +
                            " values of " + FormatSize(value_size) + "; use a larger --size");
    return {};
  }
  w.working_set = w.keys * value_size;
  KeySet set;
  set.prefix = id + "/";
  set.seed = std::hash<std::string>{}(id) | 1;
  set.value_size = value_size;
  MEMKV_TRY(Fill(set, w.keys, Thousands(w.keys) + " values of " + FormatSize(value_size),
                 w.fill_seconds));
  w.setup = "memkv reads " + Thousands(w.keys) + " values of " + FormatSize(value_size) +
            " written just before (" + FormatSize(w.working_set) + ", uniformly at random); fio " +
            "reads the first " + FormatSize(w.working_set) + " of its file, at random " +
            FormatSize(value_size) + "-aligned offsets";

  Series fio = MakeSeries("fio", "fio randread", "fio, rw=randread bs=" + FormatSize(value_size) +
                                         " iodepth=" + std::to_string(o_.qd) +
                                         ": the drive's ceiling for this pattern");
  Series mk = MakeSeries("memkv", "memkv Get",
            "memkv Store::Get of whole values, " + std::to_string(o_.qd) +
                " concurrent coroutines on one loop, every value verified");
  mk.memkv = true;
  if (!fio_) fio.skipped = result_.fio_version.empty() ? "fio is not installed" : "--no-fio";
  FioJob job;
  job.filename = result_.fio_file;
  job.rw = "randread";
  job.block_size = value_size;
  job.iodepth = o_.qd;
  job.size = w.working_set;
  job.seconds = o_.seconds;
  job.readonly = true;

  std::vector<std::vector<std::byte>> bufs(o_.qd, std::vector<std::byte>(value_size));
  for (int run = 0; run < o_.runs; ++run) {
    FioRun(fio, job, run);
    Counters c;
    bench::Run out;
    MEMKV_TRY(MemkvRun(mk, run, o_.seconds,
                       [&](TaskGroup& g, Clock::time_point end, Counters& cc) {
                         for (uint32_t i = 0; i < o_.qd; ++i)
                           g.Spawn(ReadLoop(*store_, set, bufs[i],
                                            (uint64_t(run) << 32) + i + 1, end, cc));
                       },
                       out, c));
    mk.verified += c.ops;
  }
  w.series.push_back(std::move(fio));
  w.series.push_back(std::move(mk));
  MEMKV_TRY(DeleteSet(set));
  result_.workloads.push_back(std::move(w));
  return {};
}

Status Bench::WriteWorkload() {
  WorkloadResult w;
  w.id = "write-1m";
  w.block_size = 1 << 20;
  w.qd = o_.qd;
  w.title = "(c) 1 MiB sequential writes, queue depth " + std::to_string(o_.qd);
  w.working_set = o_.size;
  w.setup = "fio writes its " + FormatSize(o_.size) +
            " file front to back, wrapping around; memkv puts values of 1 MiB under fresh keys "
            "(the store places them next to each other; a full drive evicts, as a cache does)";
  const std::string q = std::to_string(o_.qd);
  Series plain = MakeSeries("fio", "fio write, no sync",
               "fio, rw=write bs=1M iodepth=" + q +
                   ", no fsync: O_DIRECT only, NOT durable (the drive's cache is not flushed)");
  Series synced = MakeSeries("fio-fdatasync", "fio write, fdatasync/" + q,
                "fio, rw=write bs=1M iodepth=" + q + " fdatasync=" + q +
                    ": an fdatasync after every " + q +
                    " writes, durable like memkv's group commit");
  Series mk = MakeSeries("memkv", "memkv Put (durable)",
            "memkv Store::Put of 1 MiB values, " + q +
                " concurrent coroutines: returns once data and journal record are flushed "
                "(group commit: per group, a data flush unless an earlier journal flush covered the "
                "data, then the journal write and its flush)");
  mk.memkv = true;
  if (!fio_) {
    plain.skipped = synced.skipped =
        result_.fio_version.empty() ? "fio is not installed" : "--no-fio";
  }
  FioJob job;
  job.filename = result_.fio_file;
  job.rw = "write";
  job.block_size = 1 << 20;
  job.iodepth = o_.qd;
  job.size = o_.size;
  job.seconds = o_.seconds;
  FioJob sync_job = job;
  sync_job.fdatasync = o_.qd;

  const uint64_t seed = 0xc0ffee;
  std::vector<std::vector<std::byte>> bufs(o_.qd, std::vector<std::byte>(w.block_size));
  uint64_t next = 0;  // key numbers go on across runs: every put is a fresh key
  for (int run = 0; run < o_.runs; ++run) {
    FioRun(plain, job, run);
    FioRun(synced, sync_job, run);
    Counters c;
    bench::Run out;
    MEMKV_TRY(MemkvRun(mk, run, o_.seconds,
                       [&](TaskGroup& g, Clock::time_point end, Counters& cc) {
                         for (uint32_t i = 0; i < o_.qd; ++i)
                           g.Spawn(PutLoop(*store_, "write-1m/", seed, bufs[i], next,
                                           UINT64_MAX, end, cc));
                       },
                       out, c));
  }
  w.keys = next;
  // Read back the newest values (the older ones may be evicted): what was
  // acknowledged reads back exactly.
  progress_.Begin("memkv: reading back the last values written");
  Counters c;
  auto st = loops_.RunBlocking([&]() -> Awaitable<Status> {
    char key_buf[48];
    std::vector<std::byte> buf(w.block_size);
    for (uint64_t id = next > 256 ? next - 256 : 0; id < next; ++id) {
      const std::string_view key = KeyName(key_buf, "write-1m/", id);
      if (!store_->Stat(key)) continue;  // a put that failed or an eviction
      auto got = co_await store_->Get(key, 0, buf);
      if (!got || *got != buf.size()) {
        c.Error("get " + std::string(key) + ": " +
                (got ? std::string("short read") : got.error().message()));
        continue;
      }
      ++c.ops;
      if (!VerifyBlock(buf, id, seed)) ++c.verify_failures;
    }
    co_return Status{};
  });
  MEMKV_TRY(st);
  mk.verified += c.ops;
  mk.verify_failures += c.verify_failures;
  mk.errors += c.errors;
  if (mk.first_error.empty()) mk.first_error = c.first_error;
  progress_.End(Thousands(c.ops) + " values verified, " + Thousands(c.verify_failures) +
                " failures");
  w.series.push_back(std::move(plain));
  w.series.push_back(std::move(synced));
  w.series.push_back(std::move(mk));
  result_.workloads.push_back(std::move(w));
  return {};
}

Status Bench::Reopen() {
  ReopenResult r;
  r.keys = o_.reopen_keys;
  r.replay_keys = o_.replay_keys;
  // 1-byte values take one page each; the drive is made big enough (sparse)
  // to hold them all below the eviction watermark, with room to spare.
  const uint64_t pages = r.keys + r.replay_keys;
  const uint64_t data_bytes = static_cast<uint64_t>(pages * 1.05 / 0.9) * kPage;
  uint64_t size = static_cast<uint64_t>((data_bytes + (8ull << 20)) / 0.92);
  size = std::max<uint64_t>(o_.size, (size + (1ull << 30) - 1) / (1ull << 30) * (1ull << 30));
  r.drive_size = size;
  const std::string path =
      (std::filesystem::path(result_.machine.dir) / "memkv-bench-reopen.drive").string();
  std::filesystem::remove(path);
  if (auto st = store::CreateDriveFile(path, size); !st) {
    progress_.Note("memkv-bench: " + path + ": " + st.error().message());
    return st;
  }
  {
    auto dev = store::OpenDrive(path, store::Mode::kFile, loops_.helpers());
    if (!dev) return dev.error();
    io::BlockDevice* one[] = {dev->get()};
    MEMKV_TRY(loops_.RunBlocking([&]() -> Awaitable<Status> {
      co_return co_await store::FormatSet(std::span<io::BlockDevice* const>(one));
    }));
  }
  auto opened = OpenStore(path);
  if (!opened) return opened.error();
  store_ = std::move(*opened);

  KeySet set;
  set.prefix = "reopen/";
  set.seed = 0x5eed;
  set.value_size = 1;
  MEMKV_TRY(Fill(set, r.keys, Thousands(r.keys) + " keys with 1-byte values", r.fill_seconds));

  progress_.Begin("memkv: Close (checkpoint of " + Thousands(r.keys) + " keys)");
  auto t0 = Clock::now();
  MEMKV_TRY(loops_.RunBlocking([&]() -> Awaitable<Status> { co_return co_await store_->Close(); }));
  r.close_seconds = SecondsSince(t0);
  store_.reset();
  progress_.End(Fixed(r.close_seconds, 3) + " s");

  auto verify_sample = [&](uint64_t lo, uint64_t hi) -> Status {
    return loops_.RunBlocking([&]() -> Awaitable<Status> {
      Rng rng(hi);
      std::byte b[1];
      for (int i = 0; i < 1000 && hi > lo; ++i) {
        const uint64_t id = lo + rng.Below(hi - lo);
        char key_buf[48];
        auto got = co_await store_->Get(KeyName(key_buf, set.prefix, id), 0, b);
        ++r.verified;
        if (!got || *got != 1 || !VerifyBlock(b, id, set.seed)) ++r.verify_failures;
      }
      co_return Status{};
    });
  };

  tap_.records = tap_.ops = -1;
  progress_.Begin("memkv: Store::Open after Close");
  t0 = Clock::now();
  opened = OpenStore(path);
  r.open_after_close = SecondsSince(t0);
  if (!opened) return opened.error();
  store_ = std::move(*opened);
  r.close_journal_records = tap_.records;
  r.close_journal_ops = tap_.ops;
  r.keys_after_close = store_->stats().keys;
  progress_.End(Fixed(r.open_after_close, 3) + " s, " + Thousands(r.keys_after_close) + " keys");
  MEMKV_TRY(verify_sample(0, r.keys));

  // More puts, then the store is dropped without Close: the next open
  // replays the journal on top of the last checkpoint.
  const uint64_t checkpoints_before = store_->stats().checkpoints;
  {
    // Numbers go on from r.keys so that the values stay distinct.
    progress_.Begin("memkv: " + Thousands(r.replay_keys) + " more puts, then a drop without Close");
    Counters c;
    uint64_t next = r.keys;
    const uint64_t limit = r.keys + r.replay_keys;
    std::vector<std::vector<std::byte>> bufs(o_.fill_qd, std::vector<std::byte>(1));
    MEMKV_TRY(loops_.RunBlocking([&]() -> Awaitable<Status> {
      auto ex = co_await asio::this_coro::executor;
      TaskGroup workers(ex);
      for (auto& b : bufs)
        workers.Spawn(PutLoop(*store_, set.prefix, set.seed, b, next, limit,
                              Clock::time_point::max(), c));
      co_await workers.Wait();
      co_return Status{};
    }));
    if (c.errors) {
      progress_.End("failed: " + c.first_error);
      return Failed();
    }
    progress_.End("done");
  }
  r.checkpoints_during_replay_puts = store_->stats().checkpoints - checkpoints_before;
  store_.reset();  // no Close: no checkpoint

  tap_.records = tap_.ops = -1;
  progress_.Begin("memkv: Store::Open after a drop");
  t0 = Clock::now();
  opened = OpenStore(path);
  r.open_after_drop = SecondsSince(t0);
  if (!opened) return opened.error();
  store_ = std::move(*opened);
  r.drop_journal_records = tap_.records;
  r.drop_journal_ops = tap_.ops;
  r.keys_after_drop = store_->stats().keys;
  progress_.End(Fixed(r.open_after_drop, 3) + " s, " + Thousands(r.keys_after_drop) + " keys");
  MEMKV_TRY(verify_sample(0, r.keys));
  MEMKV_TRY(verify_sample(r.keys, r.keys + r.replay_keys));
  r.drive_allocated = AllocatedBytes(path);
  MEMKV_TRY(loops_.RunBlocking([&]() -> Awaitable<Status> { co_return co_await store_->Close(); }));
  store_.reset();
  if (!o_.keep) std::filesystem::remove(path);
  result_.reads_verified += r.verified;
  result_.verify_failures += r.verify_failures;
  if (r.verify_failures || r.keys_after_close != r.keys ||
      r.keys_after_drop != r.keys + r.replay_keys)
    result_.ok = false;
  result_.reopen = r;
  return {};
}

Status Bench::Go() {
  fio_ = o_.use_fio && !result_.fio_version.empty();
  if (o_.use_fio && !fio_)
    progress_.Note("fio is not installed (apt-get install fio): measuring memkv alone");
  if (auto st = OpenMainStore(); !st) {
    progress_.Note("memkv-bench: " + result_.drive_file + ": " + st.error().message());
    return st;
  }
  if (fio_ && !std::all_of(o_.workloads.begin(), o_.workloads.end(),
                           [](const std::string& w) { return w == "reopen"; })) {
    if (!PrepareFioFile()) {
      result_.notes.push_back("fio could not lay out its file: the fio side is skipped");
      fio_ = false;
    }
  }
  auto wants = [&](const char* w) {
    return std::find(o_.workloads.begin(), o_.workloads.end(), w) != o_.workloads.end();
  };
  if (wants("read-1m")) MEMKV_TRY(ReadWorkload("read-1m", 1 << 20, UINT64_MAX));
  if (wants("read-4k")) MEMKV_TRY(ReadWorkload("read-4k", 4 << 10, o_.small_set / (4 << 10)));
  if (wants("write-1m")) MEMKV_TRY(WriteWorkload());
  MEMKV_TRY(loops_.RunBlocking([&]() -> Awaitable<Status> { co_return co_await store_->Close(); }));
  store_.reset();
  result_.notes.push_back("disk use: " + result_.drive_file + " " +
                          FormatSize(AllocatedBytes(result_.drive_file)) + " allocated of " +
                          FormatSize(o_.size) + "; " + result_.fio_file + " " +
                          FormatSize(AllocatedBytes(result_.fio_file)) + " allocated");
  if (!o_.keep) {
    std::filesystem::remove(result_.drive_file);
    std::filesystem::remove(result_.fio_file);
  }
  if (wants("reopen") && o_.reopen_keys > 0) MEMKV_TRY(Reopen());

  for (WorkloadResult& w : result_.workloads) {
    const Series* mk = nullptr;
    for (const Series& s : w.series)
      if (s.memkv) mk = &s;
    for (const Series& s : w.series) {
      if (s.memkv || s.runs.empty() || !mk || mk->runs.empty()) continue;
      const double den = SpreadOf(Each(s, GiBps)).median;
      w.ratios.push_back({mk->id, s.id, den > 0 ? SpreadOf(Each(*mk, GiBps)).median / den : 0});
    }
    for (const Series& s : w.series) {
      result_.verify_failures += s.verify_failures;
      result_.reads_verified += s.verified;
      if (s.verify_failures || s.errors || s.checksum_errors) result_.ok = false;
    }
  }
  return {};
}

}  // namespace

Result<DriveTierResult> RunDriveTier(const DriveTierOptions& options, Progress& progress) {
  DriveTierResult result;
  result.options = options;
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return error_code(ec.value(), boost::system::system_category());
  result.machine = DescribeMachine(options.dir);
  const std::filesystem::path dir(result.machine.dir);
  result.drive_file = (dir / "memkv-bench.drive").string();
  result.fio_file = (dir / "fio-bench.dat").string();
  // Files of an earlier run that was interrupted.
  std::filesystem::remove(result.drive_file, ec);
  std::filesystem::remove(result.fio_file, ec);
  if (options.use_fio) result.fio_version = FioVersion().value_or("");

  auto loops = server::Loops::Create(1, 512, server::Loops::BackendNamed(options.io_backend));
  if (!loops) return loops.error();
  result.io_backend = (*loops)->backend();
  TapInstall tap;
  Bench bench(options, progress, result, **loops, tap.tap());
  MEMKV_TRY(bench.Go());
  return result;
}

// ---- output ----

namespace {

std::string Pad(std::string s, size_t width) {
  // Width in characters, counting the multibyte dash as one.
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xc0) != 0x80;
  if (chars < width) s.append(width - chars, ' ');
  return s;
}
std::string PadLeft(const std::string& s, size_t width) {
  size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xc0) != 0x80;
  return chars < width ? std::string(width - chars, ' ') + s : s;
}

const Series* Find(const WorkloadResult& w, const std::string& id) {
  for (const Series& s : w.series)
    if (s.id == id) return &s;
  return nullptr;
}

}  // namespace

std::string DriveTierTable(const DriveTierResult& r) {
  const DriveTierOptions& o = r.options;
  const MachineInfo& m = r.machine;
  std::string t;
  auto line = [&](const std::string& s) { t += s + "\n"; };
  line("memkv-bench --tier drive");
  line("machine  " + m.cpu_model + ", " + std::to_string(m.cpus) + " CPUs, " + m.kernel + ", " +
       m.filesystem + " on " + m.device + " (" + m.dir + "), " + m.date);
  line("fio      " + (r.fio_version.empty() ? std::string("not run (not installed or --no-fio)")
                                            : r.fio_version + ", ioengine=io_uring direct=1, one job, on " +
                                                  r.fio_file + " (" + FormatSize(o.size) + ")"));
  line("memkv    Store over one file drive (storage.mode file, O_DIRECT FileDevice) " +
       r.drive_file + " (" + FormatSize(o.size) + " sparse, data region " +
       FormatSize(r.drive_data_bytes) + "), memory.max_size " + FormatSize(o.memory) +
       ", one loop, I/O on " + (r.io_backend.empty() ? std::string("io_uring") : r.io_backend));
  line("runs     " + std::to_string(o.runs) + " per side, " + Fixed(o.seconds, 1) +
       " s each, interleaved fio, memkv, fio, memkv, ...; queue depth " + std::to_string(o.qd) +
       " = fio iodepth = memkv concurrent coroutines");
  for (const WorkloadResult& w : r.workloads) {
    line("");
    line(w.title);
    line("  " + w.setup);
    line("  " + Pad("side", 28) + PadLeft("GiB/s median", 13) + "  " + Pad("min–max", 13) +
         PadLeft("IOPS median", 13) + "  " + Pad("IOPS min–max", 17) + "memkv ÷ this row");
    for (const Series& s : w.series) {
      if (s.runs.empty()) {
        line("  " + Pad(s.label, 28) + "skipped: " + s.skipped);
        continue;
      }
      const Spread g = SpreadOf(Each(s, GiBps));
      const Spread i = SpreadOf(Each(s, Iops));
      std::string ratio;
      for (const Ratio& x : w.ratios)
        if (x.denominator == s.id) ratio = Fixed(x.value, 2);
      line("  " + Pad(s.label, 28) + PadLeft(Fixed(g.median, 3), 13) + "  " +
           Pad(Fixed(g.min, 3) + "–" + Fixed(g.max, 3), 13) +
           PadLeft(Thousands(uint64_t(i.median)), 13) + "  " +
           Pad(Thousands(uint64_t(i.min)) + "–" + Thousands(uint64_t(i.max)), 17) + ratio);
    }
    for (const Series& s : w.series) {
      if (!s.memkv) continue;
      std::string stats = "  memkv counters: " + Thousands(s.gets) + " gets, " +
                          Thousands(s.cache_hits) + " DRAM cache hits";
      if (s.gets) {
        stats += " (" + Fixed(100.0 * s.cache_hits / s.gets, 2) + "%";
        if (s.cache_hits && !s.runs.empty()) {
          double secs = 0;
          for (const bench::Run& x : s.runs) secs += x.seconds;
          stats += "; drive reads alone: " + Thousands(uint64_t((s.gets - s.cache_hits) / secs)) +
                   "/s";
        }
        stats += ")";
      }
      if (s.puts) {
        stats += ", " + Thousands(s.puts) + " puts, " + Thousands(s.journal_records) +
                 " journal records (group commits, evictions' deletes included), " +
                 Thousands(s.evictions) + " evictions, " + Thousands(s.checkpoints) +
                 " checkpoints";
      }
      stats += "; " + Thousands(s.verified) + " reads verified, " +
               Thousands(s.verify_failures) + " verify failures, " + Thousands(s.errors) +
               " errors";
      if (!s.first_error.empty()) stats += " (first: " + s.first_error + ")";
      line(stats);
    }
    for (const Series& s : w.series)
      line("  " + Pad(s.label, 28) + s.what);
    if (const Series* f = Find(w, "fio"); f && !f->command.empty()) {
      std::string cmd;
      for (const auto& a : f->command) cmd += (cmd.empty() ? "" : " ") + a;
      line("  fio command: " + cmd);
    }
    if (const Series* f = Find(w, "fio-fdatasync"); f && !f->command.empty()) {
      std::string cmd;
      for (const auto& a : f->command) cmd += (cmd.empty() ? "" : " ") + a;
      line("  fio command: " + cmd);
    }
  }
  if (r.reopen) {
    const ReopenResult& x = *r.reopen;
    auto journal = [](int64_t records, int64_t ops) {
      if (records < 0) return std::string("journal replay: not reported");
      return "journal replay: " + Thousands(uint64_t(records)) + " records, " +
             Thousands(uint64_t(ops)) + " ops";
    };
    line("");
    line("reopen with " + Thousands(x.keys) + " keys");
    line("  1-byte values, one 4 KiB page each, on a separate " + FormatSize(x.drive_size) +
         " sparse drive (" + FormatSize(x.drive_allocated) + " allocated at the end)");
    line("  fill                    " + Thousands(x.keys) + " puts in " + Fixed(x.fill_seconds, 1) +
         " s (" + Thousands(uint64_t(x.keys / std::max(x.fill_seconds, 1e-9))) + " puts/s, " +
         std::to_string(o.fill_qd) + " concurrent)");
    line("  Close                   " + Fixed(x.close_seconds, 3) +
         " s (writes the checkpoint of every key)");
    line("  Open after Close        " + Fixed(x.open_after_close, 3) + " s: " +
         Thousands(x.keys_after_close) + " keys, from the checkpoint; " +
         journal(x.close_journal_records, x.close_journal_ops));
    line("  Open after a drop       " + Fixed(x.open_after_drop, 3) + " s: " +
         Thousands(x.keys_after_drop) + " keys = the checkpoint of " + Thousands(x.keys) +
         " + " + journal(x.drop_journal_records, x.drop_journal_ops) + " (" +
         Thousands(x.replay_keys) + " puts after the last Close, dropped without Close" +
         (x.checkpoints_during_replay_puts
              ? "; the journal filled and " + Thousands(x.checkpoints_during_replay_puts) +
                    " checkpoints were written meanwhile"
              : "") +
         ")");
    line("  " + Thousands(x.verified) + " values verified after the opens, " +
         Thousands(x.verify_failures) + " failures");
  }
  line("");
  for (const std::string& n : r.notes) line("note: " + n);
  line(std::string(r.ok ? "PASS" : "FAIL") + ": " + Thousands(r.reads_verified) +
       " memkv reads verified, " + Thousands(r.verify_failures) + " verify failures");
  return t;
}

boost::json::object DriveTierJson(const DriveTierResult& r) {
  namespace json = boost::json;
  const DriveTierOptions& o = r.options;
  json::object out;
  out["tier"] = "drive";
  out["ok"] = r.ok;
  out["machine"] = {{"cpu_model", r.machine.cpu_model}, {"cpus", r.machine.cpus},
                    {"kernel", r.machine.kernel},       {"dir", r.machine.dir},
                    {"filesystem", r.machine.filesystem}, {"device", r.machine.device},
                    {"mount_point", r.machine.mount_point}, {"date", r.machine.date}};
  out["options"] = {{"size_bytes", o.size},       {"runs", o.runs},
                    {"seconds", o.seconds},       {"queue_depth", o.qd},
                    {"memory_max_size", o.memory}, {"small_set_bytes", o.small_set},
                    {"reopen_keys", o.reopen_keys}, {"replay_keys", o.replay_keys},
                    {"fill_concurrency", o.fill_qd}};
  out["fio_version"] = r.fio_version.empty() ? json::value(nullptr) : json::value(r.fio_version);
  out["io_backend"] = r.io_backend;
  out["fio_file"] = r.fio_file;
  out["drive_file"] = r.drive_file;
  out["drive_data_bytes"] = r.drive_data_bytes;
  json::array workloads;
  for (const WorkloadResult& w : r.workloads) {
    json::object wo;
    wo["id"] = w.id;
    wo["title"] = w.title;
    wo["setup"] = w.setup;
    wo["block_size"] = w.block_size;
    wo["queue_depth"] = w.qd;
    wo["working_set_bytes"] = w.working_set;
    wo["keys"] = w.keys;
    wo["fill_seconds"] = w.fill_seconds;
    json::array series;
    for (const Series& s : w.series) {
      json::object so;
      so["id"] = s.id;
      so["label"] = s.label;
      so["what"] = s.what;
      if (!s.skipped.empty()) so["skipped"] = s.skipped;
      if (!s.command.empty()) {
        json::array cmd;
        for (const auto& a : s.command) cmd.push_back(json::value(a));
        so["command"] = std::move(cmd);
      }
      json::array runs;
      for (const Run& x : s.runs)
        runs.push_back(json::object{{"seconds", x.seconds},
                                    {"ops", x.ops},
                                    {"bytes", x.bytes},
                                    {"gib_per_s", GiBps(x)},
                                    {"iops", Iops(x)}});
      so["runs"] = std::move(runs);
      const Spread g = SpreadOf(Each(s, GiBps));
      const Spread i = SpreadOf(Each(s, Iops));
      so["gib_per_s"] = {{"median", g.median}, {"min", g.min}, {"max", g.max}};
      so["iops"] = {{"median", i.median}, {"min", i.min}, {"max", i.max}};
      if (s.memkv) {
        so["store"] = {{"gets", s.gets},
                       {"cache_hits", s.cache_hits},
                       {"puts", s.puts},
                       {"journal_records", s.journal_records},
                       {"evictions", s.evictions},
                       {"checkpoints", s.checkpoints},
                       {"checksum_errors", s.checksum_errors}};
        so["verified"] = s.verified;
        so["verify_failures"] = s.verify_failures;
        so["errors"] = s.errors;
        if (!s.first_error.empty()) so["first_error"] = s.first_error;
      }
      series.push_back(std::move(so));
    }
    wo["series"] = std::move(series);
    json::array ratios;
    for (const Ratio& x : w.ratios)
      ratios.push_back(json::object{{"numerator", x.numerator},
                                    {"denominator", x.denominator},
                                    {"median_ratio", x.value}});
    wo["ratios"] = std::move(ratios);
    workloads.push_back(std::move(wo));
  }
  out["workloads"] = std::move(workloads);
  if (r.reopen) {
    const ReopenResult& x = *r.reopen;
    out["reopen"] = {{"keys", x.keys},
                     {"value_size", 1},
                     {"replay_keys", x.replay_keys},
                     {"drive_size", x.drive_size},
                     {"drive_allocated_bytes", x.drive_allocated},
                     {"fill_seconds", x.fill_seconds},
                     {"close_seconds", x.close_seconds},
                     {"open_after_close_seconds", x.open_after_close},
                     {"open_after_drop_seconds", x.open_after_drop},
                     {"keys_after_close", x.keys_after_close},
                     {"keys_after_drop", x.keys_after_drop},
                     {"after_close_journal_records", x.close_journal_records},
                     {"after_close_journal_ops", x.close_journal_ops},
                     {"after_drop_journal_records", x.drop_journal_records},
                     {"after_drop_journal_ops", x.drop_journal_ops},
                     {"checkpoints_during_replay_puts", x.checkpoints_during_replay_puts},
                     {"verified", x.verified},
                     {"verify_failures", x.verify_failures}};
  }
  json::array notes;
  for (const auto& n : r.notes) notes.push_back(json::value(n));
  out["notes"] = std::move(notes);
  out["reads_verified"] = r.reads_verified;
  out["verify_failures"] = r.verify_failures;
  return out;
}

}  // namespace memkv::bench
