#pragma once
// MemoryRegistry: the ranges of the caller's memory that the engine knows
// (RegisterMemory) and the shared regions it handed out (AllocateShared),
// looked up by address on every batch to choose a rail and to skip copies.
//
// It is the client's view of the process's one registration cache
// (rdma::RegistrationCache): explicit registrations go through the cache's
// registrar (the NIC registration, for the rdma rail; `Prepare` in tests),
// once per range, with lookups and re-registrations under a shared lock and
// first registrations of different ranges in parallel outside it. Shared
// regions are entries that carry their SharedRegion. Thread-safe, as the
// cache is.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "client/shared_region.h"
#include "common/result.h"
#include "rdma/registration_cache.h"

namespace memkv::client {

// A registration: its id, range, the registrar's handle and, for shared
// memory, the SharedRegion (RegionOf).
using Registration = rdma::CachedRegistration;

// The shared region a registration is, or null for registered memory.
inline std::shared_ptr<SharedRegion> RegionOf(const Registration& reg) {
  return std::static_pointer_cast<SharedRegion>(reg.attachment);
}

// A registrar that hands host memory to `inner` (null: none) and records
// CUDA device memory without it: the engine stages device memory through
// host memory, so the NIC never needs it.
std::shared_ptr<rdma::Registrar> HostMemoryOnly(std::shared_ptr<rdma::Registrar> inner);

class MemoryRegistry {
 public:
  // The slow work of a first registration, run outside the lock.
  using Prepare = std::function<Result<std::shared_ptr<const void>>(void* base, size_t size)>;

  explicit MemoryRegistry(Prepare prepare = {});
  // Registrations through `registrar` (an rdma::FabricRegistrar for the rail).
  explicit MemoryRegistry(std::shared_ptr<rdma::Registrar> registrar)
      : cache_(std::move(registrar)) {}

  // Registers [p, p + n) (n > 0). A range covered by a registration returns
  // it (shared lock only). Host or CUDA device memory, classified once by
  // the cache (see rdma::RegistrationCache); `why`, if given, says why not.
  Result<std::shared_ptr<const Registration>> Register(void* p, size_t n,
                                                       std::string* why = nullptr) {
    return cache_.Register(p, n, why);
  }
  // Registers a whole shared region.
  std::shared_ptr<const Registration> AddRegion(std::shared_ptr<SharedRegion> region) {
    void* base = region->data();
    const size_t size = region->size();
    return cache_.Insert(base, size, std::move(region));
  }
  // Removes registration `id`; false if there is none.
  bool Unregister(uint64_t id) { return cache_.Deregister(id); }
  // The registration covering [p, p + n), or null.
  std::shared_ptr<const Registration> Find(const void* p, size_t n) const {
    return cache_.Find(p, n);
  }

  size_t size() const { return cache_.size(); }
  // First registrations that ran the registrar (tests).
  uint64_t prepared_count() const { return cache_.registrar_calls(); }

 private:
  rdma::RegistrationCache cache_;
};

}  // namespace memkv::client
