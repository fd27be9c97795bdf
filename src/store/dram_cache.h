#pragma once
// The DRAM tier in front of the drives: clean copies of recently written and
// read values, kept in LRU order within a byte capacity. Each copy carries
// its value's version and a lookup names the version it wants (the index's
// current one), so a copy of an overwritten value is never served: it only
// misses, and is dropped. A copy handed to a reader is shared: eviction or
// Erase drops the cache's reference, never the bytes under the reader.
//
// Thread-safe. Sharded by key hash; each shard has its own mutex guarding
// its LRU list, map and byte count, held only for list and map updates (the
// copy of a value's bytes is made outside it). Capacity is split evenly over
// the shards. Owned by the Store.

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/bytes.h"
#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace memkv::store {

// An immutable copy of one version of a value.
struct CachedValue {
  std::string key;
  uint64_t version = 0;
  Buffer bytes;
};

struct DramCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t bytes = 0;  // charged: each copy's key and value bytes
  uint64_t entries = 0;
  uint64_t evictions = 0;  // copies dropped to make room (not Erase, not replacement)
};

class DramCache {
 public:
  explicit DramCache(uint64_t capacity_bytes, size_t shards = 16);
  DramCache(const DramCache&) = delete;
  DramCache& operator=(const DramCache&) = delete;

  // Caches a copy of `bytes` as `key`'s value at `version`, replacing a copy
  // of an older (or the same) version and evicting the least recently used
  // copies of the shard to make room. Ignored when a newer version is cached
  // or the value is larger than max_value_bytes().
  void Insert(std::string_view key, uint64_t version, std::span<const std::byte> bytes);

  // The copy of `key` at exactly `version`, now the most recently used; or
  // nullptr. A cached copy of an older version is dropped on the way.
  std::shared_ptr<const CachedValue> Lookup(std::string_view key, uint64_t version);

  // Drops `key`'s copy, whatever its version.
  void Erase(std::string_view key);

  DramCacheStats stats() const;
  uint64_t capacity() const { return capacity_; }
  // The largest value cached: an eighth of the capacity, and never more than
  // a shard's share of it.
  uint64_t max_value_bytes() const { return max_value_bytes_; }

 private:
  using Ref = std::shared_ptr<const CachedValue>;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const;
  };
  struct Shard {
    Mutex mu;
    // Front is the most recently used; the map's key views point into the
    // copies' own keys.
    std::list<Ref> lru GUARDED_BY(mu);
    std::unordered_map<std::string_view, std::list<Ref>::iterator, Hash, std::equal_to<>> map
        GUARDED_BY(mu);
    uint64_t bytes GUARDED_BY(mu) = 0;
  };
  Shard& ShardOf(std::string_view key);
  // Unlinks `it` from its shard; returns the reference it held.
  static Ref Unlink(Shard& s, std::list<Ref>::iterator it) REQUIRES(s.mu);

  // Constant after construction.
  const uint64_t capacity_;
  uint64_t shard_capacity_;
  uint64_t max_value_bytes_;
  std::vector<std::unique_ptr<Shard>> shards_;

  // Counters only: relaxed.
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace memkv::store
