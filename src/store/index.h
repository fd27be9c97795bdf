#pragma once
// The in-memory index: key -> the committed entry of that key, and in drive
// modes the tombstones of removed keys (see Remove). Sharded by
// key hash, each shard under its own short lock (never held across an I/O or
// a co_await). Entries are immutable once published and shared by
// reference: a reader holds its EntryRef for the length of its read, and an
// entry's storage is released (its Release callback runs) only when the
// index has dropped it and the last reader is done.
//
// Thread-safe; owned by the Store. Each shard's maps are guarded by the
// shard's mu; the size and tick counters are atomic.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"
#include "store/journal_format.h"

namespace memkv::store {

struct Entry {
  std::string key;
  uint64_t value_size = 0;
  uint64_t version = 0;   // set-wide commit order: the higher version of a key wins
  uint16_t home = 0;      // drive whose journal holds the entry
  std::vector<Extent> extents;
  std::vector<uint64_t> page_checksums;  // inline checksums (small values)
  // Memory mode: the value itself, shared by the entries of a renamed key
  // (its deleter gives the bytes back to the store's accounting, once).
  std::shared_ptr<std::byte[]> bytes;
  // Whether the extents' pages are allocated to this entry (set before it is
  // published; during recovery, once allocation is rebuilt).
  bool allocated = false;
  // Drive modes, a renamed value: the entry that owns its pages (it gives
  // them back when the last entry renamed from it, and its last reader, are
  // gone). Until a restart, after which the renamed entry owns them itself.
  std::shared_ptr<const Entry> origin;
  // Coarse clock of the last access, for eviction. Relaxed: a hint only.
  mutable std::atomic<uint64_t> last_access{0};
  // Chosen by an evictor whose delete is on its way: other evictors pass it
  // over, so concurrent puts on a full drive do not evict the same space
  // twice.
  mutable std::atomic<bool> evicting{false};
  // Drive modes: a rename of this entry is on its way. A second one finds
  // the key gone (not_found), so two keys never own the same pages.
  mutable std::atomic<bool> renaming{false};
  // Runs when the last reference goes: gives the storage back.
  std::function<void(Entry&)> release;

  ~Entry() {
    if (release) release(*this);
  }
};

using EntryRef = std::shared_ptr<const Entry>;

class Index {
 public:
  explicit Index(size_t shards = 64);

  EntryRef Find(std::string_view key) const;

  // Publishes `e` as its key's entry unless the index holds a newer version
  // or a tombstone of at least e's version (then `e` is not published and is
  // returned, to be released). A newer entry replaces the tombstone. Returns
  // the entry it replaced, or `e` when refused, or nullptr.
  EntryRef Publish(EntryRef e);

  // Removes the key's entry if its version is at most `version`, returns it,
  // and leaves a tombstone of `version` homed on drive `home`: drives' journals
  // are replayed and checkpointed one by one, so an older put of the key on
  // another drive (one that was out of service, say) would otherwise come
  // back once the record of this delete is checkpointed away. Drive modes.
  EntryRef Remove(std::string_view key, uint64_t version, uint16_t home);
  // Removes the key's entry only if it is `expected` (eviction of what was
  // chosen, not of a newer value written since); returns whether it did.
  // Memory mode, and teardown: leaves no tombstone.
  bool RemoveIf(const EntryRef& expected);
  // RemoveIf, leaving a tombstone of expected's version on its home: a drive
  // entry dropped without a delete record of its own.
  bool Drop(const EntryRef& expected);

  // Tombstones. Each is stamped with the tick (see Tick) current when it was
  // made, so that a checkpoint can tell which ones every drive has seen.
  struct Tombstone {
    uint64_t version = 0;
    uint16_t home = 0;
    uint64_t born = 0;
  };
  // Advances the tick and returns the new value. A checkpoint takes one
  // before its snapshot: every tombstone born before it is in the snapshot.
  uint64_t Tick() { return tick_.fetch_add(1) + 1; }
  size_t tombstones() const;
  // Calls fn(key, tombstone) for each tombstone homed on `home`, one shard at
  // a time, under the shard's lock (fn must not call the index).
  void ForEachTombstone(uint16_t home,
                        const std::function<void(std::string_view, const Tombstone&)>& fn) const;
  // Forgets tombstones homed on `home` born before `tick`.
  void PruneTombstones(uint16_t home, uint64_t tick);
  // Moves the tombstones homed on `from` to `to`.
  void RehomeTombstones(uint16_t from, uint16_t to);

  size_t size() const;
  // Calls fn for every entry, one shard at a time: a snapshot of each shard
  // taken under its lock, fn called outside it.
  void ForEach(const std::function<void(const EntryRef&)>& fn) const;
  // Up to n entries picked at random (for sampled LRU eviction).
  std::vector<EntryRef> Sample(size_t n, std::mt19937_64& rng) const;

  // Up to `limit` entries whose keys start with `prefix`, in key order,
  // starting after `cursor` (empty: from the first). Each shard keeps its
  // keys ordered; this merges the shards, taking each shard's lock only for
  // a short run of its keys at a time, so no listing scans every key. Not a
  // snapshot: a key published or removed meanwhile may or may not be seen.
  // `more` is set when keys past the last one returned may follow.
  std::vector<EntryRef> List(std::string_view prefix, std::string_view cursor, size_t limit,
                             bool* more = nullptr) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const;
  };
  struct Shard {
    mutable Mutex mu;
    // The key views point into the entries' own key strings.
    std::unordered_map<std::string_view, EntryRef, Hash, std::equal_to<>> map GUARDED_BY(mu);
    // The same keys in order (views into the entries' keys, as in map).
    std::set<std::string_view> ordered GUARDED_BY(mu);
    std::unordered_map<std::string, Tombstone, Hash, std::equal_to<>> tombstones GUARDED_BY(mu);
  };
  void Bury(Shard& s, std::string_view key, uint64_t version, uint16_t home) REQUIRES(s.mu);
  Shard& ShardOf(std::string_view key) const;

  std::vector<std::unique_ptr<Shard>> shards_;  // constant after construction
  std::atomic<size_t> size_{0};
  std::atomic<uint64_t> tick_{0};
};

}  // namespace memkv::store
