#include "client/memory_registry.h"

#include "client/error.h"

namespace memkv::client {

std::shared_ptr<const Registration> MemoryRegistry::FindLocked(const void* p, size_t n) const {
  const auto* b = static_cast<const std::byte*>(p);
  // Every registration starting at or before p, nearest first (few exist).
  for (auto it = by_base_.upper_bound(b); it != by_base_.begin();) {
    --it;
    if (it->second->Covers(p, n)) return it->second;
  }
  return nullptr;
}

Result<std::shared_ptr<const Registration>> MemoryRegistry::Register(void* p, size_t n) {
  if (p == nullptr || n == 0) return errc::bad_argument;
  {
    ReaderLock lock(mu_);
    if (auto r = FindLocked(p, n)) return r;
  }
  // Slow work with no lock held: other threads register and look up meanwhile.
  std::shared_ptr<const void> prepared;
  if (prepare_) {
    auto r = prepare_(p, n);
    if (!r) return r.error();
    prepared = std::move(*r);
    prepared_.fetch_add(1);
  }
  auto reg = std::make_shared<Registration>();
  reg->base = static_cast<std::byte*>(p);
  reg->size = n;
  reg->prepared = std::move(prepared);
  WriterLock lock(mu_);
  if (auto r = FindLocked(p, n)) return r;  // another thread won the race; ours is dropped
  reg->id = next_id_.fetch_add(1);
  by_base_.emplace(reg->base, reg);
  return std::shared_ptr<const Registration>(std::move(reg));
}

std::shared_ptr<const Registration> MemoryRegistry::AddRegion(
    std::shared_ptr<SharedRegion> region) {
  auto reg = std::make_shared<Registration>();
  reg->base = region->data();
  reg->size = region->size();
  reg->region = std::move(region);
  WriterLock lock(mu_);
  reg->id = next_id_.fetch_add(1);
  by_base_.emplace(reg->base, reg);
  return reg;
}

bool MemoryRegistry::Unregister(uint64_t id) {
  std::shared_ptr<const Registration> gone;  // released after the lock
  WriterLock lock(mu_);
  for (auto it = by_base_.begin(); it != by_base_.end(); ++it) {
    if (it->second->id == id) {
      gone = std::move(it->second);
      by_base_.erase(it);
      return true;
    }
  }
  return false;
}

std::shared_ptr<const Registration> MemoryRegistry::Find(const void* p, size_t n) const {
  ReaderLock lock(mu_);
  return FindLocked(p, n);
}

size_t MemoryRegistry::size() const {
  ReaderLock lock(mu_);
  return by_base_.size();
}

}  // namespace memkv::client
