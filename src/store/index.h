#pragma once
// The in-memory index: key -> the committed entry of that key. Sharded by
// key hash, each shard under its own short lock (never held across an I/O or
// a co_await). Entries are immutable once published and shared by
// reference: a reader holds its EntryRef for the length of its read, and an
// entry's storage is released (its Release callback runs) only when the
// index has dropped it and the last reader is done.
//
// Thread-safe; owned by the Store.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/journal_format.h"

namespace memkv::store {

struct Entry {
  std::string key;
  uint64_t value_size = 0;
  uint64_t version = 0;   // set-wide commit order: the higher version of a key wins
  uint16_t home = 0;      // drive whose journal holds the entry
  std::vector<Extent> extents;
  std::vector<uint64_t> page_checksums;  // inline checksums (small values)
  std::unique_ptr<std::byte[]> bytes;    // memory mode: the value itself
  // Whether the extents' pages are allocated to this entry (set before it is
  // published; during recovery, once allocation is rebuilt).
  bool allocated = false;
  // Coarse clock of the last access, for eviction. Relaxed: a hint only.
  mutable std::atomic<uint64_t> last_access{0};
  // Chosen by an evictor whose delete is on its way: other evictors pass it
  // over, so concurrent puts on a full drive do not evict the same space
  // twice.
  mutable std::atomic<bool> evicting{false};
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
  // (then `e` is not published and is returned, to be released). Returns the
  // entry it replaced, or `e` when refused, or nullptr.
  EntryRef Publish(EntryRef e);

  // Removes the key's entry if its version is at most `version`; returns it.
  EntryRef Remove(std::string_view key, uint64_t version);
  // Removes the key's entry only if it is `expected` (eviction of what was
  // chosen, not of a newer value written since); returns whether it did.
  bool RemoveIf(const EntryRef& expected);

  size_t size() const;
  // Calls fn for every entry, one shard at a time: a snapshot of each shard
  // taken under its lock, fn called outside it.
  void ForEach(const std::function<void(const EntryRef&)>& fn) const;
  // Up to n entries picked at random (for sampled LRU eviction).
  std::vector<EntryRef> Sample(size_t n, std::mt19937_64& rng) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const;
  };
  struct Shard {
    mutable std::mutex mu;
    // The key views point into the entries' own key strings. Guarded by mu.
    std::unordered_map<std::string_view, EntryRef, Hash, std::equal_to<>> map;
  };
  Shard& ShardOf(std::string_view key) const;

  std::vector<std::unique_ptr<Shard>> shards_;  // constant after construction
  std::atomic<size_t> size_{0};
};

}  // namespace memkv::store
