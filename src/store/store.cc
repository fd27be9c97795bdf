#include "store/store.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <random>

#include <sys/mman.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/checksum.h"
#include "common/mutex.h"
#include "io/posted_handler.h"
#include "store/allocator.h"
#include "store/checkpoint.h"
#include "store/dram_cache.h"
#include "store/error.h"
#include "store/index.h"
#include "store/journal_format.h"

namespace memkv::store {
namespace asio = boost::asio;
using io::Awaitable;

namespace {

uint64_t PagesOf(uint64_t bytes) { return (bytes + kPageSize - 1) / kPageSize; }
uint64_t TablePagesFor(uint64_t pages) { return PagesOf(pages * sizeof(uint64_t)); }

uint64_t RandomU64() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          static_cast<uint64_t>(std::chrono::steady_clock::now()
                                                                    .time_since_epoch()
                                                                    .count()));
  return rng();
}

Uuid RandomUuid() {
  Uuid id;
  const uint64_t a = RandomU64(), b = RandomU64();
  std::memcpy(id.data(), &a, 8);
  std::memcpy(id.data() + 8, &b, 8);
  return id;
}

uint64_t NowUnix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// A page-aligned buffer, as O_DIRECT needs.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t bytes)
      : size_((bytes + kPageSize - 1) / kPageSize * kPageSize),
        data_(static_cast<std::byte*>(std::aligned_alloc(kPageSize, size_ ? size_ : kPageSize))) {
    if (!data_) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  std::byte* data() { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> first(size_t n) { return {data_, n}; }

 private:
  size_t size_;
  std::byte* data_;
};

Awaitable<Status> WriteAligned(io::BlockDevice& dev, uint64_t offset, Bytes bytes) {
  AlignedBuffer buf(bytes.size());
  std::memcpy(buf.data(), bytes.data(), bytes.size());
  std::memset(buf.data() + bytes.size(), 0, buf.size() - bytes.size());
  co_return co_await dev.Write(offset, std::span<const std::byte>(buf.data(), buf.size()));
}

Awaitable<Status> WriteSuperblocks(io::BlockDevice& dev, const Superblock& sb) {
  const Page page = EncodeSuperblock(sb);
  // Primary, flushed, then the mirror: a write torn in one copy leaves the
  // other whole.
  auto st = co_await WriteAligned(dev, 0, page);
  if (st) st = co_await dev.Flush();
  if (st) st = co_await WriteAligned(dev, sb.layout.mirror_offset(), page);
  if (st) st = co_await dev.Flush();
  co_return st;
}

// ---- the journal of one drive ----

// One unit of work handed to a drive's journal: operations to record (a put,
// a delete, a batch of evictions) or a checkpoint or reset to run.
struct PendingOp {
  enum class Kind { kOps, kCheckpoint, kReset };
  Kind kind = Kind::kOps;
  bool secure = false;  // kReset

  struct Op {
    OpKind kind = OpKind::kPut;
    std::string key;
    uint64_t value_size = 0;
    std::vector<Extent> extents;
    std::vector<uint64_t> checksums;
    std::shared_ptr<Entry> entry;  // put: published once durable
    uint64_t version = 0;
    // Put: for each drive holding its data, that drive's flushes_started
    // once every write had completed (see Drive::flushed_through).
    std::vector<std::pair<uint16_t, uint64_t>> data_marks;
  };
  std::vector<Op> ops;

  // Completion; guarded by the journal's mu.
  bool done = false;
  bool lead = false;  // handed the leadership instead of a result
  Status status;
  io::detail::PostedHandler<bool> handler;
};

// A drive's journal. mu guards the queue and `committing`, and the completion
// fields of each queued PendingOp; it is never held across an await.
struct Journal {
  Mutex mu;
  std::deque<PendingOp*> pending GUARDED_BY(mu);
  bool committing GUARDED_BY(mu) = false;
  // Owned by the leader (the one coroutine that has committing set).
  uint64_t tail = 0;      // offset in the ring of the next record
  uint64_t used = 0;      // bytes written since the last checkpoint
  uint64_t next_seq = 1;
  std::atomic<uint64_t> records{0};
};

// Runs fn(0) .. fn(n - 1), at most `width` at a time, on the caller's
// executor, and returns when all have finished. An exception from fn is
// rethrown here (fn's own errors travel in what it writes).
Awaitable<void> ForEachConcurrently(size_t n, size_t width,
                                    std::function<Awaitable<void>(size_t)> fn) {
  struct Shared {
    Mutex mu;
    size_t next GUARDED_BY(mu) = 0;
    size_t running GUARDED_BY(mu) = 0;
    std::exception_ptr failure GUARDED_BY(mu);
    io::detail::PostedHandler<> done GUARDED_BY(mu);
    bool finished GUARDED_BY(mu) = false;
  };
  auto shared = std::make_shared<Shared>();
  auto ex = co_await asio::this_coro::executor;
  const size_t workers = std::min(n, std::max<size_t>(width, 1));
  if (workers == 0) co_return;
  {
    MutexLock lock(shared->mu);
    shared->running = workers;
  }
  auto worker = [shared, n, fn]() -> Awaitable<void> {
    for (;;) {
      size_t i;
      {
        MutexLock lock(shared->mu);
        if (shared->next >= n || shared->failure) break;
        i = shared->next++;
      }
      co_await fn(i);
    }
  };
  for (size_t w = 0; w < workers; ++w) {
    asio::co_spawn(ex, worker(), [shared](std::exception_ptr e) {
      MutexLock lock(shared->mu);
      if (e && !shared->failure) shared->failure = e;
      if (--shared->running == 0) {
        shared->finished = true;
        if (shared->done) shared->done.Post();
      }
    });
  }
  // A named lambda, not a temporary: GCC 12 destroys a lambda made inside
  // a co_await expression twice (in the client that released a shared_ptr
  // it captured once too often), and this one holds `shared`.
  auto wait_for_workers = [shared](auto handler) {
    io::detail::PostedHandler<> h(std::move(handler));
    MutexLock lock(shared->mu);
    if (shared->finished) {
      h.Post();
    } else {
      shared->done = std::move(h);
    }
  };
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(wait_for_workers,
                                                                         asio::use_awaitable);
  std::exception_ptr failure;
  {
    MutexLock lock(shared->mu);
    failure = shared->failure;
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

// One drive of the set. `layout` is constant after open; `sb` is read and
// written only by the journal's leader (and by open); the rest is atomic or
// locks itself.
struct Drive {
  size_t index = 0;
  std::unique_ptr<io::BlockDevice> dev;
  Layout layout;
  Superblock sb;
  std::unique_ptr<PageAllocator> alloc;  // the pointer is constant after open
  std::atomic<bool> online{true};
  std::atomic<uint64_t> generation{0};
  // Pages of values chosen for eviction whose deletes are not done yet:
  // space on its way back, which other allocations count as free.
  std::atomic<uint64_t> evicting_pages{0};
  // Flushes of the group commit, numbered as they start, and the highest
  // number of one that succeeded. A put's data is durable once a flush
  // numbered above its mark (flushes_started read after its writes
  // completed) has succeeded: the journal's own flush of one group usually
  // covers the data of the next, whose data flush is then skipped.
  std::atomic<uint64_t> flushes_started{0};
  std::atomic<uint64_t> flushed_through{0};
  // Index::Tick of the snapshot of this drive's last checkpoint (or of its
  // reset): everything this drive's metadata holds was in the index then,
  // so a tombstone born before it is no longer needed against this drive.
  // 0 until then, and frozen while the drive is out of service: its journal
  // still holds whatever it held.
  std::atomic<uint64_t> snapshot_tick{0};
  Journal journal;

  uint64_t DataOffset(uint64_t page) const { return layout.data_offset + page * kPageSize; }
};

class Store::Impl {
 public:
  StoreOptions opt;
  std::vector<std::unique_ptr<Drive>> drives;
  uint64_t stripe_pages = 1024;
  std::unique_ptr<DramCache> cache;  // drive modes
  // Declared after drives: entries give their pages back to the drives'
  // allocators when the index drops them, so it goes first.
  Index index{64};

  std::atomic<uint64_t> next_version{1};
  std::atomic<uint64_t> clock{1};
  std::atomic<bool> closed{false};
  std::atomic<uint64_t> mem_used{0};  // memory mode: value bytes held

  std::atomic<uint64_t> puts{0}, gets{0}, deletes{0}, misses{0}, cache_hits{0}, evictions{0},
      checksum_errors{0}, checkpoints{0};

  Mutex rng_mu;
  std::mt19937_64 rng GUARDED_BY(rng_mu) = std::mt19937_64(0x6d656d6b76);

  ~Impl() {
    // Entries release into the allocators; drop them while drives exist.
    std::vector<EntryRef> all;
    index.ForEach([&](const EntryRef& e) { all.push_back(e); });
    for (const EntryRef& e : all) index.RemoveIf(e);
  }

  bool memory() const { return opt.mode == Mode::kMemory; }

  // ---- placement ----

  size_t FirstDrive(std::string_view key) const { return Xxh3(key) % drives.size(); }

  // The first online drive at or after `start`, or drives.size() if none.
  size_t NextOnline(size_t start) const {
    for (size_t i = 0; i < drives.size(); ++i) {
      const size_t d = (start + i) % drives.size();
      if (drives[d]->online.load()) return d;
    }
    return drives.size();
  }

  std::shared_ptr<Entry> NewEntry(std::string_view key) {
    auto e = std::make_shared<Entry>();
    e->key.assign(key);
    e->last_access.store(clock.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
    e->release = [this](Entry& dead) { Release(dead); };
    return e;
  }

  // Gives an entry's storage back: DRAM bytes, or its drive pages (only on
  // drives still of the generation the pages were allocated in).
  // (DRAM bytes go back through their own deleter: see OwnBytes.)
  void Release(Entry& e) {
    if (!e.allocated) return;
    for (const Extent& x : e.extents) {
      if (x.drive >= drives.size()) continue;
      // Only pages of the drive's current generation are this entry's to free.
      drives[x.drive]->alloc->FreeIn(x.drive_generation, x.page, x.pages + x.table_pages);
    }
  }

  // ---- group commit ----

  Awaitable<bool> WaitTurn(Journal& j, PendingOp& op) {
    return asio::async_initiate<decltype(asio::use_awaitable), void(bool)>(
        [&j, &op](auto handler) {
          io::detail::PostedHandler<bool> h(std::move(handler));
          MutexLock lock(j.mu);
          if (op.done || op.lead) {
            h.Post(op.lead);
          } else {
            op.handler = std::move(h);
          }
        },
        asio::use_awaitable);
  }

  // Wakes a waiter (journal mu held): with its result, or with leadership.
  static void Wake(PendingOp& op, bool lead) {
    if (lead) {
      op.lead = true;
    } else {
      op.done = true;
    }
    if (op.handler) op.handler.Post(lead);
  }

  // Runs `op` through drive d's journal and returns its status once it is
  // durable (or failed). The caller's coroutine either waits for the leader
  // or becomes the leader and writes records itself.
  Awaitable<Status> Commit(Drive& d, PendingOp& op) {
    Journal& j = d.journal;
    bool lead;
    {
      MutexLock lock(j.mu);
      j.pending.push_back(&op);
      lead = !j.committing;
      if (lead) j.committing = true;
    }
    if (!lead && !co_await WaitTurn(j, op)) co_return op.status;
    for (;;) {
      std::vector<PendingOp*> batch;
      {
        MutexLock lock(j.mu);
        size_t bytes = 0;
        const size_t limit = std::min<uint64_t>(4ull << 20, d.layout.journal_size / 4);
        while (!j.pending.empty()) {
          PendingOp* p = j.pending.front();
          size_t need = 0;
          for (const auto& o : p->ops)
            need += 64 + o.key.size() + o.extents.size() * 32 + o.checksums.size() * 8;
          if (!batch.empty() && (bytes + need > limit || p->kind != PendingOp::Kind::kOps ||
                                 batch.back()->kind != PendingOp::Kind::kOps))
            break;
          bytes += need;
          batch.push_back(p);
          j.pending.pop_front();
        }
      }
      co_await RunBatch(d, batch);
      MutexLock lock(j.mu);
      bool mine = false;
      for (PendingOp* p : batch) {
        if (p == &op) {
          mine = true;
          op.done = true;
        } else {
          Wake(*p, false);
        }
      }
      if (mine) {
        if (!j.pending.empty()) {
          Wake(*j.pending.front(), true);  // the next leader
        } else {
          j.committing = false;
        }
        break;
      }
    }
    co_return op.status;
  }

  // Leader only. Writes one record for a batch of ops (or runs a checkpoint
  // or a reset), sets every op's status and applies durable ops to the index.
  Awaitable<void> RunBatch(Drive& d, std::vector<PendingOp*>& batch) {
    if (batch.size() == 1 && batch[0]->kind == PendingOp::Kind::kCheckpoint) {
      batch[0]->status = co_await WriteCheckpoint(d);
      co_return;
    }
    if (batch.size() == 1 && batch[0]->kind == PendingOp::Kind::kReset) {
      batch[0]->status = co_await ResetInService(d, batch[0]->secure);
      co_return;
    }
    Status st = co_await WriteRecord(d, batch);
    for (PendingOp* p : batch) p->status = st;
    if (!st) co_return;
    for (PendingOp* p : batch) {
      for (auto& o : p->ops) {
        if (o.kind == OpKind::kPut) {
          o.entry->version = o.version;
          index.Publish(std::move(o.entry));
        } else {
          index.Remove(o.key, o.version, static_cast<uint16_t>(d.index));
        }
      }
    }
  }

  Awaitable<Status> WriteRecord(Drive& d, std::vector<PendingOp*>& batch) {
    if (!d.online.load()) co_return errc::unavailable;
    // 1. The data of every put in the batch is durable before its record:
    //    a drive is flushed unless a flush that started after the last of
    //    the batch's writes there completed has already succeeded.
    std::map<uint16_t, uint64_t> data_drives;  // drive -> highest mark
    for (PendingOp* p : batch)
      for (const auto& o : p->ops)
        for (const auto& [dd, mark] : o.data_marks)
          data_drives[dd] = std::max(data_drives[dd], mark);
    for (const auto& [dd, mark] : data_drives) {
      if (mark < drives[dd]->flushed_through.load()) continue;
      auto st = co_await FlushCounted(*drives[dd]);
      if (!st) co_return FailDrive(*drives[dd], st.error(), "flushing data");
    }
    // 2. The record, with the set-wide versions of its ops.
    JournalRecordBuilder builder;
    for (PendingOp* p : batch) {
      for (auto& o : p->ops) {
        o.version = next_version.fetch_add(1);
        builder.Add({o.kind, o.key, o.version, o.value_size, o.extents, o.checksums});
      }
    }
    Journal& j = d.journal;
    const uint64_t ring = d.sb.layout.journal_size;
    const uint64_t bytes = builder.PagesNeeded() * kPageSize;
    if (bytes > ring / 2) co_return errc::too_large;
    const uint64_t skip = j.tail + bytes > ring ? ring - j.tail : 0;
    // The ring never fills up completely: a replay that comes back round to
    // the head could not tell a full ring from an empty one.
    if (j.used + skip + bytes >= ring) {
      // The ring is full: a checkpoint covers everything so far and frees it.
      auto st = co_await WriteCheckpoint(d);
      if (!st) co_return st;
    }
    if (j.tail + bytes > ring) {
      if (j.tail < ring) {
        auto st = co_await WriteAligned(*d.dev, d.sb.layout.journal_offset + j.tail,
                                        WrapRecord(d.sb.format_epoch, j.next_seq));
        if (!st) co_return FailDrive(d, st.error(), "writing the journal");
        ++j.next_seq;
        j.used += ring - j.tail;
      }
      j.tail = 0;
    }
    const Buffer record = builder.Finish(d.sb.format_epoch, j.next_seq);
    auto st = co_await WriteAligned(*d.dev, d.sb.layout.journal_offset + j.tail, record);
    if (st) st = co_await FlushCounted(d);
    if (!st) {
      KeepPagesUntilRestart(d, batch);
      co_return FailDrive(d, st.error(), "writing the journal");
    }
    ++j.next_seq;
    ++j.records;
    j.tail += record.size();
    j.used += record.size();
    if (j.tail >= ring) j.tail = 0;
    co_return Status{};
  }

  // The puts of a record whose write or flush failed: the record may have
  // reached the drive all the same, and a restart would replay it, so their
  // pages stay taken (on every drive) until then instead of going to other
  // values. The restart rebuilds allocation from what it finds.
  void KeepPagesUntilRestart(const Drive& d, std::vector<PendingOp*>& batch) {
    uint64_t pages = 0;
    for (PendingOp* p : batch) {
      for (auto& o : p->ops) {
        if (o.kind != OpKind::kPut || !o.entry) continue;
        // A rename's pages are its origin's, which is published: only its
        // release reads the flag, after the last reference (this one too).
        Entry& owner = o.entry->origin ? const_cast<Entry&>(*o.entry->origin) : *o.entry;
        if (!owner.allocated) continue;
        owner.allocated = false;  // unpublished, or see above
        for (const Extent& x : owner.extents) pages += uint64_t{x.pages} + x.table_pages;
      }
    }
    if (pages > 0)
      spdlog::warn("drive {} ({}): {} pages of puts whose journal record may have landed stay "
                   "taken until a restart",
                   d.index, d.dev->name(), pages);
  }

  // A flush of the group commit, counted (Drive::flushed_through).
  Awaitable<Status> FlushCounted(Drive& d) {
    const uint64_t ticket = d.flushes_started.fetch_add(1) + 1;
    auto st = co_await d.dev->Flush();
    if (st) {
      uint64_t seen = d.flushed_through.load();
      while (seen < ticket && !d.flushed_through.compare_exchange_weak(seen, ticket)) {
      }
    }
    co_return st;
  }

  // Marks of a put whose writes have all completed (PendingOp::Op::data_marks).
  std::vector<std::pair<uint16_t, uint64_t>> DataMarks(std::span<const Extent> extents) const {
    std::vector<std::pair<uint16_t, uint64_t>> marks;
    for (const Extent& x : extents) {
      if (std::any_of(marks.begin(), marks.end(), [&](const auto& m) { return m.first == x.drive; }))
        continue;
      marks.emplace_back(x.drive, drives[x.drive]->flushes_started.load());
    }
    return marks;
  }

  error_code FailDrive(Drive& d, error_code ec, const char* what) {
    if (d.online.exchange(false))
      spdlog::error("drive {} ({}) taken out of service after an error {}: {}", d.index,
                    d.dev->name(), what, ec.message());
    return ec;
  }

  // Leader only: writes the drive's part of the index (its entries and the
  // tombstones still needed) and its allocation into the inactive checkpoint
  // slot, then a superblock that points at it.
  Awaitable<Status> WriteCheckpoint(Drive& d) {
    if (!d.online.load()) co_return errc::unavailable;
    Journal& j = d.journal;
    const auto home = static_cast<uint16_t>(d.index);
    // A tombstone is needed while another drive may still hold an older put
    // of its key: until every other drive has checkpointed (or been reset)
    // since it was made. Each drive drops its own.
    uint64_t floor = UINT64_MAX;
    for (const auto& other : drives)
      if (other.get() != &d) floor = std::min(floor, other->snapshot_tick.load());
    index.PruneTombstones(home, floor);
    const uint64_t tick = index.Tick();
    CheckpointWriter w;
    index.ForEach([&](const EntryRef& e) {
      if (e->home == d.index)
        w.Add(e->key, e->value_size, e->version, e->home, e->extents, e->page_checksums);
    });
    index.ForEachTombstone(home, [&](std::string_view key, const Index::Tombstone& t) {
      w.Add(key, 0, t.version, home, {}, {});
    });
    const uint64_t last_seq = j.next_seq - 1;
    const Buffer image = w.Finish(d.sb.format_epoch, last_seq, d.alloc->Serialize());
    if (image.size() > d.sb.layout.slot_size) co_return errc::metadata_full;
    const uint32_t slot = 1 - d.sb.active_slot;
    auto st = co_await WriteAligned(*d.dev, d.sb.layout.slot_offset[slot], image);
    if (st) st = co_await d.dev->Flush();
    if (!st) co_return FailDrive(d, st.error(), "writing a checkpoint");
    Superblock sb = d.sb;
    ++sb.generation;
    sb.active_slot = slot;
    sb.checkpoint_seq = last_seq;
    sb.checkpoint_bytes = image.size();
    sb.checkpoint_checksum = Xxh3(image.data(), image.size());
    sb.journal_head = j.tail;
    st = co_await WriteSuperblocks(*d.dev, sb);
    if (!st) co_return FailDrive(d, st.error(), "writing the superblock");
    d.sb = sb;
    j.used = 0;
    d.snapshot_tick.store(tick);
    checkpoints.fetch_add(1);
    co_return Status{};
  }

  // Leader only: the drive is out of service; resets it and brings it back.
  Awaitable<Status> ResetInService(Drive& d, bool secure) {
    d.online.store(false);
    // Values with any part on this drive, or recorded in its journal, are
    // gone: tombstones in their place, since another drive may hold older
    // puts of their keys. Their pages on this drive are not freed (the
    // generation moves on); their pages elsewhere are.
    std::vector<EntryRef> gone;
    index.ForEach([&](const EntryRef& e) {
      bool here = e->home == d.index;
      for (const Extent& x : e->extents) here = here || x.drive == d.index;
      if (here) gone.push_back(e);
    });
    // Before the drop: pages on this drive are not the dropped entries' to free.
    d.alloc->Reset(d.generation.fetch_add(1) + 1);
    for (const EntryRef& e : gone) {
      index.Drop(e);
      if (cache) cache->Erase(e->key);
    }
    gone.clear();
    // The reset erases this drive's record of its tombstones: another drive
    // in service keeps them, durably (a checkpoint), before it does. With
    // none, they stay here and go into the checkpoint written after the reset.
    const auto home = static_cast<uint16_t>(d.index);
    const size_t heir = NextOnline(d.index + 1);
    if (heir != drives.size()) {
      index.RehomeTombstones(home, static_cast<uint16_t>(heir));
      PendingOp keep;
      keep.kind = PendingOp::Kind::kCheckpoint;
      auto kept = co_await Commit(*drives[heir], keep);
      if (!kept) co_return kept.error();  // not reset: its journal still holds them
    }
    auto st = co_await ResetDrive(*d.dev, secure, {});
    if (!st) co_return FailDrive(d, st.error(), "resetting");
    auto chosen = co_await ReadSuperblock(*d.dev);
    if (!chosen) co_return chosen.error();
    d.sb = chosen->sb;
    d.generation.store(d.sb.drive_generation);
    d.alloc->Reset(d.sb.drive_generation);
    d.journal.tail = 0;
    d.journal.used = 0;
    d.journal.next_seq = 1;
    d.snapshot_tick.store(index.Tick());  // it holds nothing now
    d.online.store(true);
    if (heir == drives.size()) {
      st = co_await WriteCheckpoint(d);
      if (!st) co_return st;
    }
    spdlog::info("drive {} ({}) reset{} and back in service", d.index, d.dev->name(),
                 secure ? " (zero-filled)" : "");
    co_return Status{};
  }

  // ---- eviction ----

  // Evicts least recently used values (sampled) until `enough()` holds or
  // nothing is left to evict. Drive modes journal each eviction as a delete
  // before its pages can be reused. Returns how many were evicted.
  Awaitable<size_t> Evict(const std::function<bool()>& enough,
                          const std::function<bool(const Entry&)>& useful) {
    size_t evicted = 0;
    for (int round = 0; round < 64 && !enough(); ++round) {
      std::vector<EntryRef> sample;
      {
        MutexLock lock(rng_mu);
        sample = index.Sample(32, rng);
      }
      std::vector<EntryRef> victims;
      std::sort(sample.begin(), sample.end(), [](const EntryRef& a, const EntryRef& b) {
        return a->last_access.load(std::memory_order_relaxed) <
               b->last_access.load(std::memory_order_relaxed);
      });
      for (const EntryRef& e : sample) {
        if (victims.size() >= 8) break;
        if (useful(*e)) victims.push_back(e);
      }
      if (victims.empty()) {
        if (index.size() == 0) break;
        continue;
      }
      if (memory()) {
        for (const EntryRef& e : victims) evicted += index.RemoveIf(e) ? 1 : 0;
      } else {
        // One delete record per home drive.
        std::vector<PendingOp> per_drive(drives.size());
        std::vector<std::vector<EntryRef>> chosen(drives.size());
        for (const EntryRef& e : victims) {
          if (e->home >= drives.size() || !drives[e->home]->online.load()) {
            evicted += index.Drop(e) ? 1 : 0;  // its journal is gone with its drive
            continue;
          }
          if (e->evicting.exchange(true)) continue;  // another evictor has it
          for (const Extent& x : e->extents)
            drives[x.drive]->evicting_pages.fetch_add(uint64_t{x.pages} + x.table_pages);
          PendingOp::Op op;
          op.kind = OpKind::kDelete;
          op.key = e->key;
          per_drive[e->home].ops.push_back(std::move(op));
          chosen[e->home].push_back(e);
          if (cache) cache->Erase(e->key);
        }
        // Only `chosen` holds the victims now: their pages go back to the
        // allocator as it lets go of them, before they stop being counted.
        sample.clear();
        victims.clear();
        for (size_t dd = 0; dd < drives.size(); ++dd) {
          if (per_drive[dd].ops.empty()) continue;
          auto st = co_await Commit(*drives[dd], per_drive[dd]);
          if (st) evicted += per_drive[dd].ops.size();
          std::vector<uint64_t> pages(drives.size());
          for (const EntryRef& e : chosen[dd]) {
            if (!st) e->evicting.store(false);  // still there: a later evictor may try again
            for (const Extent& x : e->extents) pages[x.drive] += uint64_t{x.pages} + x.table_pages;
          }
          chosen[dd].clear();
          for (size_t i = 0; i < pages.size(); ++i) drives[i]->evicting_pages.fetch_sub(pages[i]);
        }
      }
    }
    evictions.fetch_add(evicted);
    co_return evicted;
  }

  // ---- operations ----

  Status CheckKey(std::string_view key) const {
    if (key.empty() || key.size() > 1024) return errc::bad_key;
    return {};
  }

  // Memory mode: counts `size` more bytes as held, evicting to make room;
  // no_space when they cannot be had.
  Awaitable<Status> AccountMemory(uint64_t size) {
    const uint64_t cap = opt.memory_max_size;
    if (size > cap) co_return errc::no_space;
    const uint64_t high = static_cast<uint64_t>(cap * opt.high_watermark);
    const uint64_t low = static_cast<uint64_t>(cap * opt.low_watermark);
    if (mem_used.load() + size > high) {
      const uint64_t target = low > size ? low - size : 0;
      co_await Evict([&] { return mem_used.load() <= target; },
                     [](const Entry&) { return true; });
    }
    if (mem_used.fetch_add(size) + size > cap) {
      mem_used.fetch_sub(size);
      co_return errc::no_space;
    }
    co_return Status{};
  }

  // Memory mode: `counted` bytes of mem_used that go with `p`: the last
  // entry holding them (a renamed value has two for a while) frees them and
  // uncounts them, so shared bytes are counted once.
  std::shared_ptr<std::byte[]> OwnBytes(std::byte* p, uint64_t counted) {
    return std::shared_ptr<std::byte[]>(p, [this, counted](std::byte* q) {
      delete[] q;
      mem_used.fetch_sub(counted, std::memory_order_relaxed);
    });
  }

  // Memory mode: accounts for `size` bytes (evicting to make room) and
  // returns an unpublished entry that holds them; dropping it gives them back.
  Awaitable<Result<std::shared_ptr<Entry>>> ReserveMemory(std::string_view key, uint64_t size) {
    MEMKV_CO_TRY(co_await AccountMemory(size));
    auto e = NewEntry(key);
    e->value_size = size;
    e->bytes = OwnBytes(new std::byte[size], size);
    co_return e;
  }

  // The value is copied in and summed piece by piece in one pass; `expect`,
  // when given, are the sender's piece sums, checked against the copy kept.
  Awaitable<Status> PutMemory(std::string_view key, Bytes value, std::span<const uint64_t> expect) {
    if (!expect.empty() && expect.size() != PiecesOf(value.size())) co_return errc::checksum_mismatch;
    auto e = co_await ReserveMemory(key, value.size());
    if (!e) co_return e.error();
    std::vector<uint64_t>& sums = (*e)->page_checksums;
    sums.resize(PiecesOf(value.size()));
    CopyWithPieceSums((*e)->bytes.get(), value.data(), value.size(), sums.data());
    if (!expect.empty() && !std::equal(sums.begin(), sums.end(), expect.begin()))
      co_return errc::checksum_mismatch;  // the reservation goes with the entry
    (*e)->version = next_version.fetch_add(1);
    index.Publish(std::move(*e));
    co_return Status{};
  }

  // Allocates `pages` on drive d, evicting when the drive is above its high
  // watermark or full. nullopt: nothing more could be evicted.
  Awaitable<std::optional<uint64_t>> AllocatePages(Drive& d, uint32_t pages) {
    const uint64_t total = d.alloc->pages();
    const uint64_t high = static_cast<uint64_t>(total * opt.high_watermark);
    const uint64_t low = static_cast<uint64_t>(total * opt.low_watermark);
    const uint64_t target = low > pages ? low - pages : 0;
    // Used pages, less those of values other evictors are deleting: without
    // that, every put that finds the drive above its high watermark while
    // deletes are in flight would evict the same space again.
    auto settled = [&d] {
      const uint64_t used = d.alloc->used_pages();
      return used - std::min(used, d.evicting_pages.load());
    };
    // Waits for other evictors this many times (1 ms each) when the drive is
    // full and only their deletes can make room.
    int waits = 2000;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (settled() + pages <= high || attempt > 0) {
        if (auto p = d.alloc->Allocate(pages)) co_return p;
      }
      const size_t drive = d.index;
      const size_t n = co_await Evict([&] { return settled() <= target; },
                                      [drive](const Entry& e) {
                                        for (const Extent& x : e.extents)
                                          if (x.drive == drive) return true;
                                        return false;
                                      });
      if (n == 0 && attempt > 0) {
        if (d.evicting_pages.load() == 0 || waits-- == 0) break;
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
        co_await t.async_wait(asio::use_awaitable);
        attempt = 0;  // the loop makes it 1: allocate, else evict, again
      }
    }
    co_return d.alloc->Allocate(pages);
  }

  // Drive modes: plans and allocates the pages of a value of `size` bytes
  // and returns an unpublished entry that owns them (dropping it frees them).
  Awaitable<Result<std::shared_ptr<Entry>>> ReserveDrives(std::string_view key, uint64_t size) {
    const uint64_t pages = PagesOf(size);
    const size_t home = NextOnline(FirstDrive(key));
    if (home == drives.size()) co_return errc::unavailable;

    // Plan: one extent if the value fits a stripe unit, else stripes
    // round-robin from the home drive over the drives in service.
    auto entry = NewEntry(key);
    entry->value_size = size;
    entry->home = static_cast<uint16_t>(home);
    const bool inline_sums = pages <= kInlineChecksumPages;
    size_t drive = home;
    for (uint64_t done = 0; done < pages;) {
      const uint32_t n = static_cast<uint32_t>(std::min(stripe_pages, pages - done));
      Extent x;
      x.drive = static_cast<uint16_t>(drive);
      x.pages = n;
      x.table_pages = inline_sums ? 0 : static_cast<uint16_t>(TablePagesFor(n));
      entry->extents.push_back(x);
      done += n;
      drive = NextOnline(drive + 1);
      if (drive == drives.size()) co_return errc::unavailable;
    }
    // Allocate. Pages are the entry's from here: dropping it frees them.
    entry->allocated = true;
    for (size_t i = 0; i < entry->extents.size(); ++i) {
      Extent& x = entry->extents[i];
      Drive& d = *drives[x.drive];
      x.drive_generation = d.generation.load();
      auto p = co_await AllocatePages(d, x.pages + x.table_pages);
      if (!p) {
        // Nothing to free for this extent nor for those not allocated yet.
        for (size_t k = i; k < entry->extents.size(); ++k)
          entry->extents[k].pages = entry->extents[k].table_pages = 0;
        co_return errc::no_space;
      }
      x.page = *p;
    }
    co_return entry;
  }

  Awaitable<Status> PutDrives(std::string_view key, Bytes value) {
    auto reserved = co_await ReserveDrives(key, value.size());
    if (!reserved) co_return reserved.error();
    std::shared_ptr<Entry> entry = std::move(*reserved);
    const size_t home = entry->home;
    const bool inline_sums = PagesOf(value.size()) <= kInlineChecksumPages;
    // Write data (and checksum tables), a staging chunk at a time. An extent
    // that fits one chunk with its table goes down in a single write.
    const uint64_t chunk_pages = std::max<uint64_t>(1, opt.staging_chunk / kPageSize);
    uint64_t largest = 0;
    for (const Extent& x : entry->extents)
      largest = std::max<uint64_t>(largest, uint64_t{x.pages} + x.table_pages);
    AlignedBuffer stage(std::min<uint64_t>(chunk_pages, largest) * kPageSize);
    uint64_t value_at = 0;
    for (Extent& x : entry->extents) {
      Drive& d = *drives[x.drive];
      const bool single = uint64_t{x.pages} + x.table_pages <= stage.size() / kPageSize;
      std::vector<uint64_t> sums;
      sums.reserve(x.pages);
      const uint64_t step = single ? x.pages : stage.size() / kPageSize;
      for (uint64_t p = 0; p < x.pages; p += step) {
        const uint64_t n = std::min<uint64_t>(step, x.pages - p);
        for (uint64_t i = 0; i < n; ++i) {
          std::byte* page = stage.data() + i * kPageSize;
          const uint64_t take = std::min<uint64_t>(kPageSize, value.size() - value_at);
          std::memcpy(page, value.data() + value_at, take);
          if (take < kPageSize) std::memset(page + take, 0, kPageSize - take);
          sums.push_back(Xxh3(page, kPageSize));  // fused: the page is still in cache
          value_at += take;
        }
        uint64_t write_pages = n;
        if (single && x.table_pages > 0) {
          std::byte* table = stage.data() + n * kPageSize;
          const uint64_t table_bytes = uint64_t{x.table_pages} * kPageSize;
          std::memset(table, 0, table_bytes);
          std::memcpy(table, sums.data(), sums.size() * sizeof(uint64_t));
          x.table_checksum = Xxh3(table, table_bytes);
          write_pages += x.table_pages;
        }
        auto st = co_await d.dev->Write(d.DataOffset(x.page + p), stage.first(write_pages * kPageSize));
        if (!st) co_return FailDrive(d, st.error(), "writing data");
      }
      if (inline_sums) {
        entry->page_checksums = std::move(sums);
      } else if (!single) {
        AlignedBuffer table(x.table_pages * kPageSize);
        std::memset(table.data(), 0, table.size());
        std::memcpy(table.data(), sums.data(), sums.size() * sizeof(uint64_t));
        x.table_checksum = Xxh3(table.data(), table.size());
        auto st = co_await d.dev->Write(d.DataOffset(x.page + x.pages),
                                        std::span<const std::byte>(table.data(), table.size()));
        if (!st) co_return FailDrive(d, st.error(), "writing a checksum table");
      }
    }
    // Commit in the home drive's journal.
    PendingOp op;
    PendingOp::Op o;
    o.kind = OpKind::kPut;
    o.key.assign(key);
    o.value_size = value.size();
    o.extents = entry->extents;
    o.checksums = entry->page_checksums;
    o.data_marks = DataMarks(o.extents);
    o.entry = entry;
    op.ops.push_back(std::move(o));
    entry.reset();  // the op owns it now; published by the leader once durable
    auto st = co_await Commit(*drives[home], op);
    if (st && cache) {
      // The version is the one the leader gave it.
      cache->Insert(key, op.ops[0].version, value);
    }
    co_return st;
  }

  // Commits a written, unpublished drive entry in its home drive's journal;
  // the leader publishes it once durable.
  Awaitable<Status> CommitDrives(std::shared_ptr<Entry> entry) {
    const size_t home = entry->home;
    PendingOp op;
    PendingOp::Op o;
    o.kind = OpKind::kPut;
    o.key = entry->key;
    o.value_size = entry->value_size;
    o.extents = entry->extents;
    o.checksums = entry->page_checksums;
    o.data_marks = DataMarks(o.extents);
    o.entry = std::move(entry);
    op.ops.push_back(std::move(o));
    co_return co_await Commit(*drives[home], op);
  }

  Awaitable<Status> DeleteDrives(std::string_view key, const EntryRef& e) {
    size_t home = e->home;
    if (home >= drives.size() || !drives[home]->online.load()) {
      // Its journal is out of service: the value is a miss already and
      // stays one while this store runs, but no record can say it was
      // deleted, so the delete is not acknowledged. (A drive that opens
      // again after a restart still holds it.)
      index.Drop(e);
      if (cache) cache->Erase(key);
      co_return errc::unavailable;
    }
    PendingOp op;
    PendingOp::Op o;
    o.kind = OpKind::kDelete;
    o.key.assign(key);
    op.ops.push_back(std::move(o));
    auto st = co_await Commit(*drives[home], op);
    if (cache) cache->Erase(key);
    co_return st;
  }

  // Renames a drive entry: one journal record on its home drive holds the
  // put of `to` (the same extents and checksums) and the delete of its key,
  // so a crash leaves the value under one key or the other, never both and
  // never neither; the data is not touched. The new entry's pages stay
  // owned by `e` (Entry::origin) until a restart.
  Awaitable<Status> RenameDrives(std::string_view to, const EntryRef& e) {
    if (e->renaming.exchange(true)) co_return errc::not_found;  // renamed by another
    auto st = co_await RenameDrivesOnce(to, e);
    if (!st) e->renaming.store(false);
    co_return st;
  }
  Awaitable<Status> RenameDrivesOnce(std::string_view to, const EntryRef& e) {
    const size_t home = e->home;
    if (home >= drives.size() || !drives[home]->online.load()) co_return errc::unavailable;
    for (const Extent& x : e->extents)
      if (x.drive >= drives.size() || !drives[x.drive]->online.load() ||
          drives[x.drive]->generation.load() != x.drive_generation)
        co_return errc::unavailable;
    auto moved = NewEntry(to);
    moved->value_size = e->value_size;
    moved->home = e->home;
    moved->extents = e->extents;
    moved->page_checksums = e->page_checksums;
    moved->origin = e->origin ? e->origin : e;
    PendingOp op;
    PendingOp::Op put;
    put.kind = OpKind::kPut;
    put.key.assign(to);
    put.value_size = moved->value_size;
    put.extents = moved->extents;
    put.checksums = moved->page_checksums;
    put.entry = std::move(moved);  // its data is durable already: no data marks
    op.ops.push_back(std::move(put));
    PendingOp::Op del;
    del.kind = OpKind::kDelete;
    del.key = e->key;
    op.ops.push_back(std::move(del));
    auto st = co_await Commit(*drives[home], op);
    if (cache) cache->Erase(e->key);
    co_return st;
  }

  // Reads [offset, offset + out.size()) of a drive-resident value, verifying
  // every page it reads.
  Awaitable<Status> ReadDrives(const Entry& e, uint64_t offset, std::span<std::byte> out) {
    const uint64_t end = offset + out.size();
    const uint64_t chunk_pages = std::max<uint64_t>(1, opt.staging_chunk / kPageSize);
    uint64_t extent_start = 0;  // value offset of the extent's first byte
    std::optional<AlignedBuffer> stage;
    for (const Extent& x : e.extents) {
      const uint64_t extent_end = extent_start + uint64_t{x.pages} * kPageSize;
      if (extent_end <= offset || extent_start >= end) {
        extent_start = extent_end;
        continue;
      }
      if (x.drive >= drives.size()) co_return errc::bad_record;
      Drive& d = *drives[x.drive];
      if (!d.online.load() || d.generation.load() != x.drive_generation)
        co_return errc::unavailable;
      const uint64_t first = (std::max(offset, extent_start) - extent_start) / kPageSize;
      const uint64_t last = PagesOf(std::min(end, extent_end) - extent_start);  // exclusive
      // A range that runs to the extent's end is read together with the
      // checksum table right after it: one I/O instead of two in a row.
      const bool fused = x.table_pages > 0 && last == x.pages &&
                         (last - first + x.table_pages) * kPageSize <=
                             std::max<uint64_t>(opt.staging_chunk, 2 * kPageSize);
      std::optional<AlignedBuffer> fused_buf;
      std::vector<uint64_t> table;
      const uint64_t* sums = e.page_checksums.data();
      if (fused) {
        fused_buf.emplace((last - first + x.table_pages) * kPageSize);
        auto st = co_await io::ReadFull(*d.dev, d.DataOffset(x.page + first),
                                        std::span<std::byte>(fused_buf->data(), fused_buf->size()));
        if (!st) co_return st.error();
        const std::byte* t = fused_buf->data() + (last - first) * kPageSize;
        if (Xxh3(t, uint64_t{x.table_pages} * kPageSize) != x.table_checksum)
          co_return errc::checksum_mismatch;
        table.resize(x.pages);
        std::memcpy(table.data(), t, x.pages * sizeof(uint64_t));
        sums = table.data();
      } else if (x.table_pages > 0) {
        AlignedBuffer t(uint64_t{x.table_pages} * kPageSize);
        auto st = co_await io::ReadFull(*d.dev, d.DataOffset(x.page + x.pages),
                                        std::span<std::byte>(t.data(), t.size()));
        if (!st) co_return st.error();
        if (Xxh3(t.data(), t.size()) != x.table_checksum) co_return errc::checksum_mismatch;
        table.resize(x.pages);
        std::memcpy(table.data(), t.data(), x.pages * sizeof(uint64_t));
        sums = table.data();
      } else if (e.page_checksums.size() != x.pages) {
        co_return errc::bad_record;
      }
      auto verify_copy = [&](const std::byte* page, uint64_t p) -> bool {
        if (Xxh3(page, kPageSize) != sums[p]) return false;
        const uint64_t page_start = extent_start + p * kPageSize;
        const uint64_t from = std::max(offset, page_start);
        const uint64_t to = std::min(end, page_start + kPageSize);
        std::memcpy(out.data() + (from - offset), page + (from - page_start), to - from);
        return true;
      };
      if (fused) {
        for (uint64_t p = first; p < last; ++p)
          if (!verify_copy(fused_buf->data() + (p - first) * kPageSize, p))
            co_return errc::checksum_mismatch;
        extent_start = extent_end;
        continue;
      }
      if (!stage) stage.emplace(std::min<uint64_t>(chunk_pages, last - first) * kPageSize);
      const uint64_t stage_pages = stage->size() / kPageSize;
      for (uint64_t p = first; p < last; p += stage_pages) {
        const uint64_t n = std::min<uint64_t>(stage_pages, last - p);
        auto st = co_await io::ReadFull(*d.dev, d.DataOffset(x.page + p),
                                        stage->first(n * kPageSize));
        if (!st) co_return st.error();
        for (uint64_t i = 0; i < n; ++i)
          if (!verify_copy(stage->data() + i * kPageSize, p + i)) co_return errc::checksum_mismatch;
      }
      extent_start = extent_end;
    }
    co_return Status{};
  }

  // ---- recovery ----

  Awaitable<Status> OpenDrives(std::vector<std::unique_ptr<io::BlockDevice>> devs) {
    std::vector<std::unique_ptr<Drive>> found(devs.size());
    std::optional<Superblock> first;
    for (auto& dev : devs) {
      auto chosen = co_await ReadSuperblock(*dev);
      if (!chosen) {
        spdlog::error("{}: {}", dev->name(), chosen.error().message());
        co_return chosen.error();
      }
      if (chosen->from_mirror)
        spdlog::warn("{}: primary superblock unusable ({}); opened from the mirror", dev->name(),
                     chosen->primary_error.message());
      const Superblock& sb = chosen->sb;
      if (!first) first = sb;
      if (sb.set_id != first->set_id || sb.set_size != devs.size() ||
          sb.stripe_unit != first->stripe_unit || sb.drive_index >= devs.size() ||
          found[sb.drive_index]) {
        spdlog::error("{}: drive {} of a set of {}, not part of this set of {} drives",
                      dev->name(), sb.drive_index, sb.set_size, devs.size());
        co_return errc::set_mismatch;
      }
      auto d = std::make_unique<Drive>();
      d->index = sb.drive_index;
      d->layout = sb.layout;
      d->sb = sb;
      d->generation.store(sb.drive_generation);
      d->alloc = std::make_unique<PageAllocator>(sb.layout.data_pages());
      d->alloc->Reset(sb.drive_generation);
      d->dev = std::move(dev);
      found[sb.drive_index] = std::move(d);
    }
    drives = std::move(found);
    stripe_pages = first->stripe_unit / kPageSize;

    uint64_t max_version = 0;
    for (auto& dp : drives) {
      Drive& d = *dp;
      // The checkpoint.
      if (d.sb.checkpoint_bytes > 0) {
        AlignedBuffer image(d.sb.checkpoint_bytes);
        auto st = co_await io::ReadFull(*d.dev, d.sb.layout.slot_offset[d.sb.active_slot],
                                        std::span<std::byte>(image.data(), image.size()));
        if (!st) co_return st.error();
        const Bytes bytes(image.data(), d.sb.checkpoint_bytes);
        if (Xxh3(bytes.data(), bytes.size()) != d.sb.checkpoint_checksum) {
          spdlog::error("{}: checkpoint checksum mismatch", d.dev->name());
          co_return errc::bad_checksum;
        }
        auto loaded = ReadCheckpoint(bytes, [&](const CheckpointEntry& c) {
          max_version = std::max(max_version, c.version);
          if (c.tombstone()) {
            index.Remove(c.key, c.version, static_cast<uint16_t>(d.index));
            return;
          }
          auto e = NewEntry(c.key);
          e->value_size = c.value_size;
          e->version = c.version;
          e->home = static_cast<uint16_t>(d.index);
          e->extents = c.extents;
          e->page_checksums = c.page_checksums;
          index.Publish(std::move(e));
        });
        if (!loaded) {
          spdlog::error("{}: checkpoint unreadable: {}", d.dev->name(), loaded.error().message());
          co_return loaded.error();
        }
      }
      // The journal, from the checkpoint on.
      AlignedBuffer ring(d.sb.layout.journal_size);
      auto st = co_await io::ReadFull(*d.dev, d.sb.layout.journal_offset,
                                      std::span<std::byte>(ring.data(), ring.size()));
      if (!st) co_return st.error();
      const ReplayEnd end = Replay(
          Bytes(ring.data(), ring.size()), d.sb.journal_head, d.sb.checkpoint_seq + 1,
          d.sb.format_epoch, [&](const JournalOp& op) {
            max_version = std::max(max_version, op.version);
            if (op.kind == OpKind::kDelete) {
              index.Remove(op.key, op.version, static_cast<uint16_t>(d.index));
              return;
            }
            auto e = NewEntry(op.key);
            e->value_size = op.value_size;
            e->version = op.version;
            e->home = static_cast<uint16_t>(d.index);
            e->extents.assign(op.extents.begin(), op.extents.end());
            e->page_checksums.assign(op.page_checksums.begin(), op.page_checksums.end());
            index.Publish(std::move(e));
          });
      d.journal.tail = end.next_offset;
      d.journal.next_seq = end.next_seq;
      d.journal.used = end.next_offset >= d.sb.journal_head
                           ? end.next_offset - d.sb.journal_head
                           : d.sb.layout.journal_size - d.sb.journal_head + end.next_offset;
      // Records that end back at the head filled the whole ring (a journal
      // written before the ring kept a gap): full, not empty.
      if (end.records > 0 && end.next_offset == d.sb.journal_head)
        d.journal.used = d.sb.layout.journal_size;
      if (end.records == 0) d.journal.used = 0;
      spdlog::info("{}: drive {} of {}: checkpoint at seq {}, replayed {} records ({} ops)",
                   d.dev->name(), d.index, drives.size(), d.sb.checkpoint_seq, end.records,
                   end.ops);
    }
    next_version.store(max_version + 1);

    // Allocation, rebuilt from the entries that survived. An entry with a
    // part on a drive of another generation (reset since) is a miss.
    std::vector<EntryRef> drop;
    index.ForEach([&](const EntryRef& e) {
      bool ok = !e->extents.empty();
      size_t marked = 0;
      for (const Extent& x : e->extents) {
        if (x.drive >= drives.size() || drives[x.drive]->generation.load() != x.drive_generation ||
            !drives[x.drive]->alloc->MarkUsed(x.page, x.pages + x.table_pages)) {
          ok = false;
          break;
        }
        ++marked;
      }
      if (!ok) {
        for (size_t i = 0; i < marked; ++i) {
          const Extent& x = e->extents[i];
          drives[x.drive]->alloc->Free(x.page, x.pages + x.table_pages);
        }
        drop.push_back(e);
        return;
      }
      const_cast<Entry&>(*e).allocated = true;  // single-threaded here
    });
    for (const EntryRef& e : drop) index.Drop(e);
    if (!drop.empty()) spdlog::warn("{} entries refer to reset drives: dropped", drop.size());
    co_return Status{};
  }
};

// ---- free functions ----

Awaitable<Result<ChosenSuperblock>> ReadSuperblock(io::BlockDevice& drive) {
  if (drive.size() < kMinDriveSize) co_return errc::drive_too_small;
  AlignedBuffer page(kPageSize);
  const uint64_t mirror_at = drive.size() / kPageSize * kPageSize - kPageSize;
  Result<Superblock> primary = errc::bad_magic, mirror = errc::bad_magic;
  auto st = co_await io::ReadFull(drive, 0, page.first(kPageSize));
  primary = st ? DecodeSuperblock(page.first(kPageSize)) : Result<Superblock>(st.error());
  st = co_await io::ReadFull(drive, mirror_at, page.first(kPageSize));
  mirror = st ? DecodeSuperblock(page.first(kPageSize)) : Result<Superblock>(st.error());
  co_return ChooseSuperblock(std::move(primary), std::move(mirror));
}

Awaitable<Status> FormatSet(std::span<io::BlockDevice* const> drives, const FormatOptions& o) {
  if (drives.empty() || drives.size() > 4096) co_return errc::set_mismatch;
  const Uuid set_id = RandomUuid();
  for (size_t i = 0; i < drives.size(); ++i) {
    io::BlockDevice& dev = *drives[i];
    auto layout = ComputeLayout(dev.size(), o.stripe_unit);
    if (!layout) co_return layout.error();
    Superblock sb;
    sb.generation = 1;
    sb.set_id = set_id;
    sb.device_id = RandomUuid();
    sb.set_size = static_cast<uint32_t>(drives.size());
    sb.drive_index = static_cast<uint32_t>(i);
    sb.drive_generation = 1;
    sb.format_epoch = RandomU64() | 1;
    sb.stripe_unit = o.stripe_unit;
    sb.created_unix = NowUnix();
    sb.layout = *layout;
    // A zero first journal page: nothing replays from a fresh drive, whatever
    // it held (the random epoch already guarantees it; this keeps tools quiet).
    auto st = co_await WriteAligned(dev, layout->journal_offset, Page{});
    if (st) st = co_await WriteSuperblocks(dev, sb);
    if (!st) co_return st;
  }
  co_return Status{};
}

Awaitable<Status> ResetDrive(io::BlockDevice& drive, bool secure,
                             const std::function<void(uint64_t, uint64_t)>& progress) {
  auto chosen = co_await ReadSuperblock(drive);
  if (!chosen) co_return chosen.error();
  Superblock sb = chosen->sb;
  const Layout& l = sb.layout;
  // Metadata first: the journal and both checkpoint slots zeroed.
  auto st = co_await drive.ZeroFill(l.journal_offset, l.journal_size);
  if (st) st = co_await drive.ZeroFill(l.slot_offset[0], l.slot_size * 2);
  if (!st) co_return st;
  // Data: discarded, or zero-filled a piece at a time with progress.
  if (secure) {
    const uint64_t piece = 64ull << 20;
    for (uint64_t done = 0; done < l.data_size;) {
      const uint64_t n = std::min(piece, l.data_size - done);
      st = co_await drive.ZeroFill(l.data_offset + done, n);
      if (!st) co_return st;
      done += n;
      if (progress) progress(done, l.data_size);
    }
  } else {
    st = co_await drive.Discard(l.data_offset, l.data_size);
    if (!st) co_return st;
  }
  st = co_await drive.Flush();
  if (!st) co_return st;
  ++sb.generation;
  ++sb.drive_generation;
  sb.format_epoch = (sb.format_epoch + 1) | 1;
  sb.reset_unix = NowUnix();
  sb.active_slot = 0;
  sb.checkpoint_seq = 0;
  sb.checkpoint_bytes = 0;
  sb.checkpoint_checksum = 0;
  sb.journal_head = 0;
  co_return co_await WriteSuperblocks(drive, sb);
}

// ---- Store ----

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Awaitable<Result<std::unique_ptr<Store>>> Store::Open(
    std::vector<std::unique_ptr<io::BlockDevice>> drives, const StoreOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  if (options.mode == Mode::kMemory) {
    if (!drives.empty()) co_return errc::set_mismatch;
  } else {
    if (drives.empty()) co_return errc::set_mismatch;
    const uint64_t staging = std::min<uint64_t>(options.memory_max_size / 4, 64ull << 20);
    impl->cache = std::make_unique<DramCache>(
        options.memory_max_size > staging ? options.memory_max_size - staging : 0);
    auto st = co_await impl->OpenDrives(std::move(drives));
    if (!st) co_return st.error();
  }
  co_return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Awaitable<Status> Store::Put(std::string_view key, Bytes value) {
  co_return co_await Put(key, value, {});
}

Awaitable<Status> Store::Put(std::string_view key, Bytes value,
                             std::span<const uint64_t> piece_sums) {
  Impl& s = *impl_;
  MEMKV_CO_TRY(s.CheckKey(key));
  if (value.empty()) co_return errc::empty_value;
  if (value.size() > s.opt.max_value_size) co_return errc::too_large;
  if (s.closed.load()) co_return errc::closed;
  s.puts.fetch_add(1, std::memory_order_relaxed);
  if (s.memory()) co_return co_await s.PutMemory(key, value, piece_sums);
  if (!piece_sums.empty()) {
    // Drive modes keep whole-page sums of their own: the sender's are
    // checked here, before anything is written.
    if (piece_sums.size() != PiecesOf(value.size())) co_return errc::checksum_mismatch;
    for (size_t i = 0; i < piece_sums.size(); ++i) {
      const size_t at = i * kSumPiece;
      if (Xxh3(value.data() + at, std::min(kSumPiece, value.size() - at)) != piece_sums[i])
        co_return errc::checksum_mismatch;
    }
  }
  co_return co_await s.PutDrives(key, value);
}

Result<ValueInfo> Store::Stat(std::string_view key) const {
  EntryRef e = impl_->index.Find(key);
  if (!e) return errc::not_found;
  return ValueInfo{e->value_size, e->version};
}

Awaitable<Result<size_t>> Store::Get(std::string_view key, uint64_t offset,
                                     std::span<std::byte> out) {
  Impl& s = *impl_;
  EntryRef e = s.index.Find(key);  // held to the end: its pages stay put
  if (!e) {
    s.gets.fetch_add(1, std::memory_order_relaxed);
    s.misses.fetch_add(1, std::memory_order_relaxed);
    co_return errc::not_found;
  }
  // A named pin, not a temporary: GCC 12 may destroy a temporary of a
  // co_await expression twice.
  const Pinned pinned{e, e->value_size};
  co_return co_await Get(pinned, offset, out);
}

Result<Store::Pinned> Store::Pin(std::string_view key) const {
  EntryRef e = impl_->index.Find(key);
  if (!e) return errc::not_found;
  return Pinned{e, e->value_size, e->version};
}

std::optional<Store::View> Store::Peek(const Pinned& value) const {
  auto e = std::static_pointer_cast<const Entry>(value.entry);
  if (!e || !e->bytes || e->page_checksums.size() != PiecesOf(e->value_size)) return std::nullopt;
  Impl& s = *impl_;
  s.gets.fetch_add(1, std::memory_order_relaxed);
  e->last_access.store(s.clock.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
  return View{Bytes(e->bytes.get(), e->value_size), e->page_checksums};
}

Awaitable<Result<size_t>> Store::Get(const Pinned& value, uint64_t offset,
                                     std::span<std::byte> out) {
  Impl& s = *impl_;
  s.gets.fetch_add(1, std::memory_order_relaxed);
  auto e = std::static_pointer_cast<const Entry>(value.entry);
  if (!e) co_return errc::not_found;
  const std::string_view key = e->key;
  if (offset > e->value_size || out.size() > e->value_size - offset)
    co_return errc::range_out_of_bounds;
  e->last_access.store(s.clock.fetch_add(1, std::memory_order_relaxed),
                       std::memory_order_relaxed);
  if (e->bytes) {
    std::memcpy(out.data(), e->bytes.get() + offset, out.size());
    co_return out.size();
  }
  if (s.cache) {
    if (auto hit = s.cache->Lookup(key, e->version)) {
      s.cache_hits.fetch_add(1, std::memory_order_relaxed);
      std::memcpy(out.data(), hit->bytes.data() + offset, out.size());
      co_return out.size();
    }
  }
  auto st = co_await s.ReadDrives(*e, offset, out);
  if (!st) {
    if (st.error() == errc::checksum_mismatch) {
      s.checksum_errors.fetch_add(1);
      spdlog::error("checksum mismatch reading a value of {} bytes: entry dropped", e->value_size);
      s.index.Drop(e);
    }
    co_return st.error();
  }
  if (offset == 0 && out.size() == e->value_size && s.cache) s.cache->Insert(key, e->version, out);
  co_return out.size();
}

Awaitable<Status> Store::Delete(std::string_view key) {
  Impl& s = *impl_;
  MEMKV_CO_TRY(s.CheckKey(key));
  if (s.closed.load()) co_return errc::closed;
  s.deletes.fetch_add(1, std::memory_order_relaxed);
  EntryRef e = s.index.Find(key);
  if (!e) co_return errc::not_found;
  if (s.memory()) {
    s.index.RemoveIf(e);
    co_return Status{};
  }
  co_return co_await s.DeleteDrives(key, e);
}

Awaitable<Status> Store::Rename(std::string_view from, std::string_view to) {
  Impl& s = *impl_;
  MEMKV_CO_TRY(s.CheckKey(from));
  MEMKV_CO_TRY(s.CheckKey(to));
  if (s.closed.load()) co_return errc::closed;
  EntryRef e = s.index.Find(from);
  if (!e) co_return errc::not_found;
  if (from == to) co_return Status{};
  if (!s.memory()) co_return co_await s.RenameDrives(to, e);
  // The same bytes under the new key, then the old key gone: a reader of
  // either key sees the whole value or none, and a reader that pinned
  // `from` keeps it. Published first, so the value is never under neither.
  auto moved = s.NewEntry(to);
  moved->value_size = e->value_size;
  moved->page_checksums = e->page_checksums;
  moved->bytes = e->bytes;
  moved->version = s.next_version.fetch_add(1);
  s.index.Publish(std::move(moved));
  // Only the value that was renamed: a put to `from` since then stays.
  s.index.RemoveIf(e);
  co_return Status{};
}

Store::Listing Store::List(std::string_view prefix, std::string_view cursor, size_t limit) const {
  Listing out;
  const std::vector<EntryRef> found = impl_->index.List(prefix, cursor, limit, &out.more);
  out.keys.reserve(found.size());
  for (const EntryRef& e : found) out.keys.push_back({e->key, e->value_size, e->version});
  return out;
}

// ---- a value written in pieces ----

class Store::PendingPut::State {
 public:
  Store::Impl* s = nullptr;
  std::shared_ptr<Entry> entry;  // unpublished until Commit
  uint64_t written = 0;
  bool committed = false;
  // An open put (BeginOpenPut): its size is what has been written by Commit.
  bool open = false;
  // Drive modes: the pages being filled and the extent they belong to.
  std::unique_ptr<AlignedBuffer> stage;
  uint64_t stage_fill = 0;    // bytes in stage
  size_t extent = 0;          // the extent being written
  uint64_t extent_page = 0;   // its pages already written
  std::vector<uint64_t> sums; // its page checksums so far
  size_t next_drive = 0;      // an open put: where its next extent goes
  // Memory mode, an open put: the reserved address space the value fills
  // (pages are taken as they are touched) and the bytes of it counted in
  // mem_used so far. Given back here unless Commit hands them to the entry.
  std::byte* map = nullptr;
  uint64_t map_len = 0;
  uint64_t counted = 0;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (map) ::munmap(map, map_len);
    if (counted) s->mem_used.fetch_sub(counted, std::memory_order_relaxed);
  }

  // Writes the staged bytes (the last page zero-padded) to the current
  // extent, and the extent's checksum table once it is full.
  Awaitable<Status> Flush() {
    Extent& x = entry->extents[extent];
    Drive& d = *s->drives[x.drive];
    const uint64_t pages = PagesOf(stage_fill);
    if (stage_fill < pages * kPageSize)
      std::memset(stage->data() + stage_fill, 0, pages * kPageSize - stage_fill);
    for (uint64_t i = 0; i < pages; ++i) sums.push_back(Xxh3(stage->data() + i * kPageSize, kPageSize));
    if (pages > 0) {
      auto st = co_await d.dev->Write(d.DataOffset(x.page + extent_page),
                                      stage->first(pages * kPageSize));
      if (!st) co_return s->FailDrive(d, st.error(), "writing data");
    }
    extent_page += pages;
    stage_fill = 0;
    if (extent_page < x.pages) co_return Status{};
    if (x.table_pages == 0) {
      entry->page_checksums = std::move(sums);  // a small value: checksums in its record
    } else {
      AlignedBuffer table(uint64_t{x.table_pages} * kPageSize);
      std::memset(table.data(), 0, table.size());
      std::memcpy(table.data(), sums.data(), sums.size() * sizeof(uint64_t));
      x.table_checksum = Xxh3(table.data(), table.size());
      auto tst = co_await d.dev->Write(d.DataOffset(x.page + x.pages),
                                       std::span<const std::byte>(table.data(), table.size()));
      if (!tst) co_return s->FailDrive(d, tst.error(), "writing a checksum table");
    }
    sums.clear();
    extent_page = 0;
    ++extent;
    co_return Status{};
  }

  // An open put on drives: one more extent of a stripe unit (with its
  // checksum table), on the next drive in service. Its pages are the
  // entry's from here.
  Awaitable<Status> Grow() {
    if (next_drive >= s->drives.size()) co_return errc::unavailable;
    Drive& d = *s->drives[next_drive];
    Extent x;
    x.drive = static_cast<uint16_t>(next_drive);
    x.pages = static_cast<uint32_t>(s->stripe_pages);
    x.table_pages = static_cast<uint16_t>(TablePagesFor(x.pages));
    x.drive_generation = d.generation.load();
    auto p = co_await s->AllocatePages(d, x.pages + x.table_pages);
    if (!p) co_return errc::no_space;
    x.page = *p;
    entry->extents.push_back(x);
    next_drive = s->NextOnline(next_drive + 1);
    co_return Status{};
  }

  // An open put on drives, at Commit: the extent being filled is cut to the
  // pages written (its table moves up behind them; the pages past it go
  // back), then its last pages and its table are written.
  Awaitable<Status> Seal() {
    if (extent == entry->extents.size()) co_return Status{};  // ended on an extent's end
    Extent& x = entry->extents[extent];
    const uint64_t used = extent_page + PagesOf(stage_fill);
    const auto table = static_cast<uint16_t>(TablePagesFor(used));
    const uint64_t keep = used + table;
    const uint64_t had = uint64_t{x.pages} + x.table_pages;
    if (keep < had)
      s->drives[x.drive]->alloc->FreeIn(x.drive_generation, x.page + keep,
                                        static_cast<uint32_t>(had - keep));
    x.pages = static_cast<uint32_t>(used);
    x.table_pages = table;
    co_return co_await Flush();
  }
};

Store::PendingPut::PendingPut(std::unique_ptr<State> state) : state_(std::move(state)) {}
// Not committed: the entry goes, and with it the space it held.
Store::PendingPut::~PendingPut() = default;
uint64_t Store::PendingPut::size() const { return state_->entry->value_size; }
uint64_t Store::PendingPut::written() const { return state_->written; }

Awaitable<Status> Store::PendingPut::Append(Bytes bytes) {
  State& w = *state_;
  Entry& e = *w.entry;
  if (w.committed) co_return errc::range_out_of_bounds;
  if (w.open) {
    if (bytes.size() > w.s->opt.max_value_size - w.written) co_return errc::too_large;
    if (w.map) {
      // Counted a MiB at a time ahead of the bytes, against memory_max_size.
      const uint64_t end = w.written + bytes.size();
      if (end > w.counted) {
        const uint64_t want = std::min(w.map_len, (end + (1u << 20) - 1) / (1u << 20) * (1u << 20));
        MEMKV_CO_TRY(co_await w.s->AccountMemory(want - w.counted));
        w.counted = want;
      }
      std::memcpy(w.map + w.written, bytes.data(), bytes.size());
      w.written = end;
      co_return Status{};
    }
  } else if (bytes.size() > e.value_size - w.written) {
    co_return errc::range_out_of_bounds;
  }
  if (e.bytes) {
    std::memcpy(e.bytes.get() + w.written, bytes.data(), bytes.size());
    w.written += bytes.size();
    co_return Status{};
  }
  while (!bytes.empty()) {
    if (w.open && w.extent == e.extents.size()) MEMKV_CO_TRY(co_await w.Grow());
    const Extent& x = e.extents[w.extent];
    // Room in the stage, and in the extent past what is staged.
    const uint64_t extent_left = (x.pages - w.extent_page) * kPageSize - w.stage_fill;
    const uint64_t take = std::min<uint64_t>(
        {w.stage->size() - w.stage_fill, extent_left, bytes.size()});
    std::memcpy(w.stage->data() + w.stage_fill, bytes.data(), take);
    w.stage_fill += take;
    w.written += take;
    bytes = bytes.subspan(take);
    if (w.stage_fill == w.stage->size() || take == extent_left ||
        (!w.open && w.written == e.value_size))
      MEMKV_CO_TRY(co_await w.Flush());
  }
  co_return Status{};
}

Awaitable<Status> Store::PendingPut::Commit() {
  State& w = *state_;
  if (w.committed) co_return errc::truncated;
  if (w.open) {
    if (w.written == 0) co_return errc::empty_value;
    w.entry->value_size = w.written;
  }
  if (w.written != w.entry->value_size) co_return errc::truncated;
  w.committed = true;
  if (w.map) {
    // The address space past the value's last page goes back, and the
    // count comes down to the value's size; the entry owns the rest.
    const uint64_t keep = PagesOf(w.written) * kPageSize;
    if (keep < w.map_len) ::munmap(w.map + keep, w.map_len - keep);
    Store::Impl* s = w.s;
    s->mem_used.fetch_sub(w.counted - w.written, std::memory_order_relaxed);
    const uint64_t counted = w.written;
    w.entry->bytes = std::shared_ptr<std::byte[]>(w.map, [s, keep, counted](std::byte* q) {
      ::munmap(q, keep);
      s->mem_used.fetch_sub(counted, std::memory_order_relaxed);
    });
    w.map = nullptr;
    w.counted = 0;
  }
  if (w.entry->bytes) {
    w.entry->page_checksums.resize(PiecesOf(w.entry->value_size));
    PieceSums(w.entry->bytes.get(), w.entry->value_size, w.entry->page_checksums.data());
    w.entry->version = w.s->next_version.fetch_add(1);
    w.s->index.Publish(std::move(w.entry));
    co_return Status{};
  }
  if (w.open) MEMKV_CO_TRY(co_await w.Seal());
  w.stage.reset();
  co_return co_await w.s->CommitDrives(std::move(w.entry));
}

std::span<std::byte> Store::PendingPut::Place() {
  State& w = *state_;
  if (w.committed || !w.entry || !w.entry->bytes) return {};
  return {w.entry->bytes.get(), w.entry->value_size};
}

Awaitable<Status> Store::PendingPut::CommitPlaced(std::span<const uint64_t> piece_sums) {
  State& w = *state_;
  if (w.committed || !w.entry || !w.entry->bytes) co_return errc::truncated;
  if (piece_sums.size() != PiecesOf(w.entry->value_size)) co_return errc::checksum_mismatch;
  w.committed = true;
  w.written = w.entry->value_size;
  w.entry->page_checksums.assign(piece_sums.begin(), piece_sums.end());
  w.entry->version = w.s->next_version.fetch_add(1);
  w.s->index.Publish(std::move(w.entry));
  co_return Status{};
}

Awaitable<Result<std::unique_ptr<Store::PendingPut>>> Store::BeginPut(std::string_view key,
                                                                      uint64_t size) {
  Impl& s = *impl_;
  MEMKV_CO_TRY(s.CheckKey(key));
  if (size == 0) co_return errc::empty_value;
  if (size > s.opt.max_value_size) co_return errc::too_large;
  if (s.closed.load()) co_return errc::closed;
  s.puts.fetch_add(1, std::memory_order_relaxed);
  auto w = std::make_unique<PendingPut::State>();
  w->s = &s;
  Result<std::shared_ptr<Entry>> entry = errc::closed;
  if (s.memory()) {
    entry = co_await s.ReserveMemory(key, size);
  } else {
    entry = co_await s.ReserveDrives(key, size);
  }
  if (!entry) co_return entry.error();
  w->entry = std::move(*entry);
  if (!s.memory()) {
    const uint64_t chunk_pages = std::max<uint64_t>(1, s.opt.staging_chunk / kPageSize);
    uint64_t largest = 0;
    for (const Extent& x : w->entry->extents) largest = std::max<uint64_t>(largest, x.pages);
    w->stage = std::make_unique<AlignedBuffer>(std::min(chunk_pages, largest) * kPageSize);
  }
  co_return std::make_unique<PendingPut>(std::move(w));
}

Result<std::unique_ptr<Store::PendingPut>> Store::BeginOpenPut(std::string_view key) {
  Impl& s = *impl_;
  MEMKV_TRY(s.CheckKey(key));
  if (s.closed.load()) return errc::closed;
  s.puts.fetch_add(1, std::memory_order_relaxed);
  auto w = std::make_unique<PendingPut::State>();
  w->s = &s;
  w->open = true;
  w->entry = s.NewEntry(key);
  if (s.memory()) {
    // Address space only: pages are taken as the bytes land, and counted
    // (Append) before they are.
    w->map_len = PagesOf(s.opt.max_value_size) * kPageSize;
    void* p = ::mmap(nullptr, w->map_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return errc::no_space;
    w->map = static_cast<std::byte*>(p);
  } else {
    const size_t home = s.NextOnline(s.FirstDrive(key));
    if (home == s.drives.size()) return errc::unavailable;
    w->entry->home = static_cast<uint16_t>(home);
    w->entry->allocated = true;  // the extents, as Grow adds them
    w->next_drive = home;
    const uint64_t chunk_pages = std::max<uint64_t>(1, s.opt.staging_chunk / kPageSize);
    w->stage = std::make_unique<AlignedBuffer>(std::min(chunk_pages, s.stripe_pages) * kPageSize);
  }
  return std::make_unique<PendingPut>(std::move(w));
}

Awaitable<std::vector<Status>> Store::PutBatch(std::span<const PutItem> items,
                                               size_t concurrency) {
  std::vector<Status> out(items.size());
  co_await ForEachConcurrently(items.size(), concurrency, [&](size_t i) -> Awaitable<void> {
    out[i] = co_await Put(items[i].key, items[i].value, items[i].piece_sums);
  });
  co_return out;
}

Awaitable<std::vector<Result<size_t>>> Store::GetBatch(std::span<const GetItem> items,
                                                       size_t concurrency) {
  std::vector<Result<size_t>> out(items.size(), Result<size_t>(errc::not_found));
  co_await ForEachConcurrently(items.size(), concurrency, [&](size_t i) -> Awaitable<void> {
    out[i] = co_await Get(items[i].key, items[i].offset, items[i].out);
  });
  co_return out;
}

Awaitable<std::vector<Status>> Store::DeleteBatch(std::span<const std::string_view> keys,
                                                  size_t concurrency) {
  std::vector<Status> out(keys.size());
  co_await ForEachConcurrently(keys.size(), concurrency, [&](size_t i) -> Awaitable<void> {
    out[i] = co_await Delete(keys[i]);
  });
  co_return out;
}

Awaitable<Status> Store::ResetDriveOnline(size_t drive, bool secure) {
  Impl& s = *impl_;
  if (drive >= s.drives.size()) co_return errc::set_mismatch;
  PendingOp op;
  op.kind = PendingOp::Kind::kReset;
  op.secure = secure;
  co_return co_await s.Commit(*s.drives[drive], op);
}

void Store::TakeOffline(size_t drive) {
  if (drive < impl_->drives.size() && impl_->drives[drive]->online.exchange(false))
    spdlog::warn("drive {} ({}) taken out of service", drive, impl_->drives[drive]->dev->name());
}

Awaitable<Status> Store::Checkpoint() {
  Impl& s = *impl_;
  Status result;
  for (auto& d : s.drives) {
    if (!d->online.load()) continue;
    PendingOp op;
    op.kind = PendingOp::Kind::kCheckpoint;
    auto st = co_await s.Commit(*d, op);
    if (!st && result) result = st;
  }
  co_return result;
}

Awaitable<Status> Store::Close() {
  impl_->closed.store(true);
  co_return co_await Checkpoint();
}

StoreStats Store::stats() const {
  const Impl& s = *impl_;
  StoreStats st;
  st.keys = s.index.size();
  st.puts = s.puts.load();
  st.gets = s.gets.load();
  st.deletes = s.deletes.load();
  st.misses = s.misses.load();
  st.cache_hits = s.cache_hits.load();
  st.evictions = s.evictions.load();
  st.checksum_errors = s.checksum_errors.load();
  st.checkpoints = s.checkpoints.load();
  st.memory_used = s.memory() ? s.mem_used.load() : 0;
  st.memory_capacity = s.opt.memory_max_size;
  for (const auto& d : s.drives) {
    DriveStats ds;
    ds.name = d->dev->name();
    ds.online = d->online.load();
    ds.generation = d->generation.load();
    ds.raw_bytes = d->dev->size();
    ds.usable_bytes = d->layout.data_size;
    ds.used_bytes = d->alloc->used_pages() * kPageSize;
    st.journal_records += d->journal.records.load();
    st.drives.push_back(std::move(ds));
  }
  return st;
}

size_t Store::drive_count() const { return impl_->drives.size(); }
Mode Store::mode() const { return impl_->opt.mode; }

}  // namespace memkv::store
