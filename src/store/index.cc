#include "store/index.h"

#include <queue>

#include "common/checksum.h"

namespace memkv::store {

size_t Index::Hash::operator()(std::string_view s) const { return Xxh3(s); }

Index::Index(size_t shards) {
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

Index::Shard& Index::ShardOf(std::string_view key) const {
  // The high bits pick the shard; the map uses all of them for buckets.
  return *shards_[(Xxh3(key) >> 40) % shards_.size()];
}

EntryRef Index::Find(std::string_view key) const {
  Shard& s = ShardOf(key);
  MutexLock lock(s.mu);
  auto it = s.map.find(key);
  return it == s.map.end() ? nullptr : it->second;
}

EntryRef Index::Publish(EntryRef e) {
  Shard& s = ShardOf(e->key);
  MutexLock lock(s.mu);
  if (auto t = s.tombstones.find(std::string_view(e->key)); t != s.tombstones.end()) {
    if (t->second.version >= e->version) return e;
    // The newer put's record now stands between the key and anything older.
    s.tombstones.erase(t);
  }
  auto it = s.map.find(std::string_view(e->key));
  if (it == s.map.end()) {
    s.ordered.insert(std::string_view(e->key));
    s.map.emplace(std::string_view(e->key), std::move(e));
    size_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (it->second->version > e->version) return e;
  // The map's key must view the new entry's string: re-key the node.
  auto node = s.map.extract(it);
  EntryRef old = std::move(node.mapped());
  node.key() = std::string_view(e->key);
  // So must the ordered set's: the old entry's string goes with it.
  auto ordered = s.ordered.extract(std::string_view(e->key));
  ordered.value() = std::string_view(e->key);
  s.ordered.insert(std::move(ordered));
  node.mapped() = std::move(e);
  s.map.insert(std::move(node));
  return old;
}

void Index::Bury(Shard& s, std::string_view key, uint64_t version, uint16_t home) {
  // Read under the shard lock, after the removal: a checkpoint whose tick
  // is above `born` snapshots this shard after the removal.
  const Tombstone t{version, home, tick_.load()};
  auto it = s.tombstones.find(key);
  if (it == s.tombstones.end()) {
    s.tombstones.emplace(std::string(key), t);
  } else if (it->second.version <= version) {
    it->second = t;
  }
}

EntryRef Index::Remove(std::string_view key, uint64_t version, uint16_t home) {
  Shard& s = ShardOf(key);
  MutexLock lock(s.mu);
  auto it = s.map.find(key);
  if (it != s.map.end() && it->second->version > version) return nullptr;  // newer than the delete
  EntryRef old;
  if (it != s.map.end()) {
    old = std::move(it->second);
    s.ordered.erase(key);
    s.map.erase(it);
    size_.fetch_sub(1, std::memory_order_relaxed);
  }
  Bury(s, key, version, home);
  return old;
}

bool Index::RemoveIf(const EntryRef& expected) {
  Shard& s = ShardOf(expected->key);
  MutexLock lock(s.mu);
  auto it = s.map.find(std::string_view(expected->key));
  if (it == s.map.end() || it->second != expected) return false;
  s.ordered.erase(std::string_view(expected->key));
  s.map.erase(it);
  size_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

bool Index::Drop(const EntryRef& expected) {
  Shard& s = ShardOf(expected->key);
  MutexLock lock(s.mu);
  auto it = s.map.find(std::string_view(expected->key));
  if (it == s.map.end() || it->second != expected) return false;
  s.ordered.erase(std::string_view(expected->key));
  s.map.erase(it);
  size_.fetch_sub(1, std::memory_order_relaxed);
  Bury(s, expected->key, expected->version, expected->home);
  return true;
}

size_t Index::tombstones() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    MutexLock lock(s->mu);
    n += s->tombstones.size();
  }
  return n;
}

void Index::ForEachTombstone(
    uint16_t home, const std::function<void(std::string_view, const Tombstone&)>& fn) const {
  for (const auto& s : shards_) {
    MutexLock lock(s->mu);
    for (const auto& [k, t] : s->tombstones)
      if (t.home == home) fn(k, t);
  }
}

void Index::PruneTombstones(uint16_t home, uint64_t tick) {
  for (const auto& s : shards_) {
    MutexLock lock(s->mu);
    std::erase_if(s->tombstones, [&](const auto& kv) {
      return kv.second.home == home && kv.second.born < tick;
    });
  }
}

void Index::RehomeTombstones(uint16_t from, uint16_t to) {
  for (const auto& s : shards_) {
    MutexLock lock(s->mu);
    for (auto& [k, t] : s->tombstones)
      if (t.home == from) t.home = to;
  }
}

size_t Index::size() const { return size_.load(std::memory_order_relaxed); }

void Index::ForEach(const std::function<void(const EntryRef&)>& fn) const {
  std::vector<EntryRef> snapshot;
  for (const auto& s : shards_) {
    snapshot.clear();
    {
      MutexLock lock(s->mu);
      snapshot.reserve(s->map.size());
      for (const auto& [k, e] : s->map) snapshot.push_back(e);
    }
    for (const EntryRef& e : snapshot) fn(e);
  }
}

std::vector<EntryRef> Index::Sample(size_t n, std::mt19937_64& rng) const {
  std::vector<EntryRef> out;
  if (size() == 0) return out;
  for (size_t tries = 0; out.size() < n && tries < n * 4; ++tries) {
    Shard& s = *shards_[rng() % shards_.size()];
    MutexLock lock(s.mu);
    if (s.map.empty()) continue;
    // A random bucket, then its first entry: cheap and close enough to uniform.
    const size_t buckets = s.map.bucket_count();
    for (size_t probe = 0; probe < 8; ++probe) {
      const size_t b = rng() % buckets;
      if (s.map.bucket_size(b) == 0) continue;
      out.push_back(s.map.begin(b)->second);
      break;
    }
  }
  return out;
}

std::vector<EntryRef> Index::List(std::string_view prefix, std::string_view cursor, size_t limit,
                                  bool* more) const {
  // Each shard is read a run at a time into its own queue; a heap over the
  // queues' heads yields the keys in order. A run is refilled from past the
  // last key it held, so a shard is never locked for more than a run.
  constexpr size_t kRun = 64;
  struct Source {
    std::vector<EntryRef> run;
    size_t pos = 0;
    bool done = false;  // no key of the prefix past the run
  };
  std::vector<Source> sources(shards_.size());
  // One more than wanted, so that a shard can say whether it has more.
  const size_t run = limit < kRun ? limit + 1 : kRun;
  auto fill = [&](size_t i) {
    Source& src = sources[i];
    std::string_view after = cursor;
    std::string last;  // the run's last key, kept while the run is replaced
    if (!src.run.empty()) {
      last = src.run.back()->key;
      after = last;
    }
    src.run.clear();
    src.pos = 0;
    const Shard& s = *shards_[i];
    MutexLock lock(s.mu);
    auto it = s.ordered.lower_bound(prefix);
    if (!after.empty() && after >= prefix) it = s.ordered.upper_bound(after);
    for (; it != s.ordered.end() && src.run.size() < run; ++it) {
      if (!it->starts_with(prefix)) break;
      src.run.push_back(s.map.find(*it)->second);
    }
    src.done = src.run.size() < run;
  };
  auto greater = [&](size_t a, size_t b) {
    return sources[a].run[sources[a].pos]->key > sources[b].run[sources[b].pos]->key;
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(greater)> heads(greater);
  for (size_t i = 0; i < sources.size(); ++i) {
    fill(i);
    if (!sources[i].run.empty()) heads.push(i);
  }
  std::vector<EntryRef> out;
  while (!heads.empty() && out.size() < limit) {
    const size_t i = heads.top();
    heads.pop();
    Source& src = sources[i];
    out.push_back(src.run[src.pos++]);
    if (src.pos == src.run.size()) {
      if (src.done) continue;
      fill(i);
      if (src.run.empty()) continue;
    }
    heads.push(i);
  }
  if (more) *more = !heads.empty();
  return out;
}

}  // namespace memkv::store
