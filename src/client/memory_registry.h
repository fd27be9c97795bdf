#pragma once
// MemoryRegistry: the ranges of the caller's memory that the engine knows
// (RegisterMemory) and the shared regions it handed out (AllocateShared),
// looked up by address on every batch to choose a rail and to skip copies.
//
// Thread-safe. Lookups and the re-registration of a known range take the
// lock shared; a first registration runs its slow work (`Prepare`: pinning,
// and RDMA registration once that rail exists) with no lock held, then
// inserts under the exclusive lock; when two threads register the same
// range at once, one registration wins and the other's work is dropped.
// mu_ guards the registrations (by_base_); the id and Prepare counters are
// atomic; prepare_ is constant after construction.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "client/shared_region.h"
#include "common/mutex.h"
#include "common/result.h"
#include "common/thread_annotations.h"

namespace memkv::client {

struct Registration {
  uint64_t id = 0;
  std::byte* base = nullptr;
  size_t size = 0;
  std::shared_ptr<SharedRegion> region;  // set for shared memory
  std::shared_ptr<const void> prepared;  // what Prepare returned (held until unregistered)

  bool Covers(const void* p, size_t n) const {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= base && n <= size && static_cast<size_t>(b - base) <= size - n;
  }
};

class MemoryRegistry {
 public:
  // The slow work of a first registration, run outside the lock.
  using Prepare = std::function<Result<std::shared_ptr<const void>>(void* base, size_t size)>;

  explicit MemoryRegistry(Prepare prepare = {}) : prepare_(std::move(prepare)) {}

  // Registers [p, p + n) (n > 0). A range covered by a registration returns
  // it (shared lock only).
  Result<std::shared_ptr<const Registration>> Register(void* p, size_t n);
  // Registers a whole shared region.
  std::shared_ptr<const Registration> AddRegion(std::shared_ptr<SharedRegion> region);
  // Removes registration `id`; false if there is none.
  bool Unregister(uint64_t id);
  // The registration covering [p, p + n), or null.
  std::shared_ptr<const Registration> Find(const void* p, size_t n) const;

  size_t size() const;
  // First registrations that ran Prepare (tests).
  uint64_t prepared_count() const { return prepared_.load(); }

 private:
  std::shared_ptr<const Registration> FindLocked(const void* p, size_t n) const
      REQUIRES_SHARED(mu_);

  const Prepare prepare_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> prepared_{0};

  mutable SharedMutex mu_;
  // Registrations by base address (ranges may overlap).
  std::multimap<const std::byte*, std::shared_ptr<const Registration>> by_base_ GUARDED_BY(mu_);
};

}  // namespace memkv::client
