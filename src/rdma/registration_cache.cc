#include "rdma/registration_cache.h"

#include <algorithm>

#include "rdma/error.h"
#include "rdma/fabric_api.h"

namespace memkv::rdma {

Result<std::shared_ptr<const void>> FabricRegistrar::Register(void* base, size_t size) {
  auto region = fabric_.Register(base, size, access_);
  if (!region) return region.error();
  return std::shared_ptr<const void>(std::shared_ptr<const MemoryRegion>(std::move(*region)));
}

std::shared_ptr<const CachedRegistration> RegistrationCache::FindLocked(const void* p,
                                                                       size_t n) const {
  const auto* b = static_cast<const std::byte*>(p);
  // Every registration starting at or before p, nearest first (few exist).
  for (auto it = by_base_.upper_bound(b); it != by_base_.begin();) {
    --it;
    if (it->second->Covers(p, n)) return it->second;
  }
  return nullptr;
}

Result<std::shared_ptr<const CachedRegistration>> RegistrationCache::Register(void* p, size_t n) {
  if (p == nullptr || n == 0) return errc::bad_argument;
  auto* b = static_cast<std::byte*>(p);
  for (;;) {
    {
      ReaderLock lock(mu_);
      if (auto r = FindLocked(p, n)) return r;
    }
    std::shared_ptr<Pending> wait_for;
    std::shared_ptr<Pending> mine;
    {
      WriterLock lock(mu_);
      if (auto r = FindLocked(p, n)) return r;
      for (const auto& pending : pending_) {
        if (b >= pending->base && n <= pending->size &&
            static_cast<size_t>(b - pending->base) <= pending->size - n) {
          wait_for = pending;
          break;
        }
      }
      if (!wait_for) {
        mine = std::make_shared<Pending>();
        mine->base = b;
        mine->size = n;
        pending_.push_back(mine);
      }
    }
    if (wait_for) {
      // Its outcome is in by_base_ once done (or, if it failed, this caller
      // registers the range itself on the next turn).
      MutexLock lock(wait_for->mu);
      while (!wait_for->done) wait_for->done_cv.Wait(wait_for->mu);
      continue;
    }

    // The slow work, with no lock held.
    Result<std::shared_ptr<const void>> handle = std::shared_ptr<const void>();
    if (registrar_) {
      registrar_calls_.fetch_add(1);
      handle = registrar_->Register(p, n);
    }
    std::shared_ptr<CachedRegistration> reg;
    if (handle) {
      reg = std::make_shared<CachedRegistration>();
      reg->base = b;
      reg->size = n;
      reg->handle = std::move(*handle);
    }
    {
      WriterLock lock(mu_);
      pending_.erase(std::find(pending_.begin(), pending_.end(), mine));
      if (reg) {
        reg->id = next_id_.fetch_add(1);
        by_base_.emplace(reg->base, reg);
      }
    }
    {
      MutexLock lock(mine->mu);
      mine->done = true;
    }
    mine->done_cv.SignalAll();
    if (!handle) return handle.error();
    return std::shared_ptr<const CachedRegistration>(std::move(reg));
  }
}

std::shared_ptr<const CachedRegistration> RegistrationCache::Insert(
    void* p, size_t n, std::shared_ptr<void> attachment) {
  auto reg = std::make_shared<CachedRegistration>();
  reg->base = static_cast<std::byte*>(p);
  reg->size = n;
  reg->attachment = std::move(attachment);
  WriterLock lock(mu_);
  reg->id = next_id_.fetch_add(1);
  by_base_.emplace(reg->base, reg);
  return reg;
}

bool RegistrationCache::Deregister(uint64_t id) {
  std::shared_ptr<const CachedRegistration> gone;  // released after the lock
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

std::shared_ptr<const CachedRegistration> RegistrationCache::Find(const void* p, size_t n) const {
  ReaderLock lock(mu_);
  return FindLocked(p, n);
}

size_t RegistrationCache::size() const {
  ReaderLock lock(mu_);
  return by_base_.size();
}

}  // namespace memkv::rdma
