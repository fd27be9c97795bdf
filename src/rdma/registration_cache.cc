#include "rdma/registration_cache.h"

#include <algorithm>

#include <fmt/format.h>

#include "rdma/error.h"
#include "rdma/fabric_api.h"

namespace memkv::rdma {

namespace {

// Whether `reg` is a registration of `memory`'s kind and, for device
// memory, of the same allocation.
bool SameMemory(const CachedRegistration& reg, const MemoryDescriptor& memory) {
  return reg.kind == memory.kind() && (!memory.is_device() || reg.buffer_id == memory.buffer_id());
}

bool Inside(const std::byte* base, size_t size, const std::byte* b, size_t n) {
  return b >= base && n <= size && static_cast<size_t>(b - base) <= size - n;
}

}  // namespace

Result<std::shared_ptr<const void>> FabricRegistrar::Register(const MemoryDescriptor& memory,
                                                              std::string* why) {
  auto region = fabric_.Register(memory, access_, why);
  if (!region) return region.error();
  return std::shared_ptr<const void>(std::shared_ptr<const MemoryRegion>(std::move(*region)));
}

std::shared_ptr<const CachedRegistration> RegistrationCache::FindLocked(const void* p,
                                                                       size_t n) const {
  const auto* b = static_cast<const std::byte*>(p);
  uint64_t buffer_id = 0;  // the device buffer at p, asked for once
  bool asked = false;
  // Every registration starting at or before p, nearest first (few exist).
  for (auto it = by_base_.upper_bound(b); it != by_base_.begin();) {
    --it;
    const CachedRegistration& reg = *it->second;
    if (!reg.Covers(p, n)) continue;
    if (reg.is_device()) {
      if (!asked) {
        buffer_id = cuda().BufferIdOf(p);
        asked = true;
      }
      // Freed (0) or freed and reallocated (another id): not this one.
      if (buffer_id == 0 || buffer_id != reg.buffer_id) continue;
    }
    return it->second;
  }
  return nullptr;
}

std::shared_ptr<const CachedRegistration> RegistrationCache::FindLocked(
    const MemoryDescriptor& memory) const {
  for (auto it = by_base_.upper_bound(memory.base); it != by_base_.begin();) {
    --it;
    if (it->second->Covers(memory.base, memory.size) && SameMemory(*it->second, memory))
      return it->second;
  }
  return nullptr;
}

Result<std::shared_ptr<const CachedRegistration>> RegistrationCache::Register(void* p, size_t n,
                                                                              std::string* why) {
  if (p == nullptr || n == 0) return errc::bad_argument;
  auto* b = static_cast<std::byte*>(p);
  {
    ReaderLock lock(mu_);
    if (auto r = FindLocked(p, n)) return r;
  }
  // Not registered: what memory is it? Asked once, here; the registrar and
  // the entry keep the answer.
  auto info = cuda().Classify(p, why);
  if (!info) return info.error();
  const MemoryDescriptor memory{b, n, *info};
  if (memory.is_device() && !Inside(reinterpret_cast<std::byte*>(info->base), info->size, b, n)) {
    if (why)
      *why = fmt::format("{} + {} bytes leaves its CUDA allocation [{:#x}, +{}) on device {}", p, n,
                         info->base, info->size, info->device);
    return errc::bad_argument;
  }

  for (;;) {
    std::shared_ptr<Pending> wait_for;
    std::shared_ptr<Pending> mine;
    {
      WriterLock lock(mu_);
      if (auto r = FindLocked(memory)) return r;
      for (const auto& pending : pending_) {
        const MemoryDescriptor& m = pending->memory;
        if (Inside(m.base, m.size, b, n) && m.kind() == memory.kind() &&
            m.buffer_id() == memory.buffer_id()) {
          wait_for = pending;
          break;
        }
      }
      if (!wait_for) {
        mine = std::make_shared<Pending>();
        mine->memory = memory;
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
      handle = registrar_->Register(memory, why);
    }
    std::shared_ptr<CachedRegistration> reg;
    if (handle) {
      reg = std::make_shared<CachedRegistration>();
      reg->base = b;
      reg->size = n;
      reg->kind = memory.kind();
      reg->device = memory.device();
      reg->buffer_id = memory.buffer_id();
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
