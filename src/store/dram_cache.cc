#include "store/dram_cache.h"

#include <algorithm>
#include <functional>

#include "common/checksum.h"

namespace memkv::store {
namespace {

// Shards by a hash other than the maps' own, so that one shard's keys still
// spread over its map's buckets.
constexpr uint64_t kShardSeed = 0x4452414D;

uint64_t Charge(const CachedValue& v) { return v.key.size() + v.bytes.size(); }

}  // namespace

size_t DramCache::Hash::operator()(std::string_view s) const {
  return std::hash<std::string_view>{}(s);
}

DramCache::DramCache(uint64_t capacity_bytes, size_t shards) : capacity_(capacity_bytes) {
  shards = std::max<size_t>(shards, 1);
  shard_capacity_ = capacity_ / shards;
  // One value may not wipe out a shard: at most an eighth of the whole, and
  // never more than its shard holds.
  max_value_bytes_ = std::min(capacity_ / 8, shard_capacity_);
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

DramCache::Shard& DramCache::ShardOf(std::string_view key) {
  return *shards_[Xxh3(key, kShardSeed) % shards_.size()];
}

DramCache::Ref DramCache::Unlink(Shard& s, std::list<Ref>::iterator it) {
  Ref ref = std::move(*it);
  s.map.erase(std::string_view(ref->key));
  s.lru.erase(it);
  s.bytes -= Charge(*ref);
  return ref;
}

void DramCache::Insert(std::string_view key, uint64_t version, std::span<const std::byte> bytes) {
  if (bytes.size() > max_value_bytes_ || key.size() + bytes.size() > shard_capacity_) return;
  // The copy is made before taking the lock, and whatever leaves the cache is
  // freed after releasing it.
  auto copy = std::make_shared<CachedValue>();
  copy->key = key;
  copy->version = version;
  copy->bytes.assign(bytes.begin(), bytes.end());
  const uint64_t charge = Charge(*copy);
  std::vector<Ref> dropped;  // declared before `lock`, so destroyed after it
  Shard& s = ShardOf(key);
  MutexLock lock(s.mu);
  if (auto it = s.map.find(key); it != s.map.end()) {
    if ((*it->second)->version > version) return;  // a newer copy stays
    dropped.push_back(Unlink(s, it->second));
  }
  while (s.bytes + charge > shard_capacity_ && !s.lru.empty()) {
    dropped.push_back(Unlink(s, std::prev(s.lru.end())));
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  s.lru.push_front(std::move(copy));
  s.map.emplace(s.lru.front()->key, s.lru.begin());
  s.bytes += charge;
}

std::shared_ptr<const CachedValue> DramCache::Lookup(std::string_view key, uint64_t version) {
  Ref stale;  // freed after the lock is released
  Shard& s = ShardOf(key);
  MutexLock lock(s.mu);
  auto it = s.map.find(key);
  if (it != s.map.end()) {
    const auto node = it->second;
    if ((*node)->version == version) {
      s.lru.splice(s.lru.begin(), s.lru, node);
      hits_.fetch_add(1, std::memory_order_relaxed);
      return *node;
    }
    // An older copy can never be asked for again: the index has moved on.
    if ((*node)->version < version) stale = Unlink(s, node);
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

void DramCache::Erase(std::string_view key) {
  Ref dropped;  // freed after the lock is released
  Shard& s = ShardOf(key);
  MutexLock lock(s.mu);
  if (auto it = s.map.find(key); it != s.map.end()) dropped = Unlink(s, it->second);
}

DramCacheStats DramCache::stats() const {
  DramCacheStats st;
  st.hits = hits_.load(std::memory_order_relaxed);
  st.misses = misses_.load(std::memory_order_relaxed);
  st.evictions = evictions_.load(std::memory_order_relaxed);
  for (const auto& s : shards_) {
    MutexLock lock(s->mu);
    st.bytes += s->bytes;
    st.entries += s->lru.size();
  }
  return st;
}

}  // namespace memkv::store
