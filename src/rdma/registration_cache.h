#pragma once
// RegistrationCache: the one cache of memory registrations of a process (the
// client's MemoryRegistry is built on it): the ranges its owner registered
// explicitly, each registered once with the NIC (through a Registrar), looked
// up by address on every batch.
//
// Only explicit registrations are cached (Register/Insert, until
// Deregister): an address the caller never registered is never registered
// behind its back, since a freed and reused address behind a cached
// registration would move the wrong pages.
//
// Host or GPU: a new registration is classified once, through the process's
// CUDA loader (common::Cuda: host memory where there is no driver), and the
// registrar gets the classification with the range. A registration of CUDA
// device memory is keyed by its allocation's buffer id as well as its
// address: a lookup that lands in one asks the driver for the buffer id
// there (one cuPointerGetAttribute) and matches only the same buffer, so a
// device range freed and reallocated at the same address is not
// registered (until registered again; the stale entry stays until its
// owner deregisters it). Lookups in host memory make no driver call.
//
// Thread-safe. Lookups, and the registration of a range inside a known
// registration (which reuses it), take mu_ shared only. A first
// registration runs the registrar with no lock held, so first registrations
// of different ranges run in parallel; callers asking for a range that a
// registration in progress will cover wait for it instead of registering it
// again, so each range reaches the registrar once. Ranges may overlap: a
// range not inside one registration gets its own.
//
// mu_ guards the entries (by_base_) and the registrations in progress
// (pending_); each Pending has its own mutex for its waiters; the counters
// are atomic; registrar_ and cuda_ are constant after construction.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/cuda.h"
#include "common/mutex.h"
#include "common/result.h"
#include "common/thread_annotations.h"
#include "rdma/memory_descriptor.h"

namespace memkv::rdma {

class Fabric;

// What actually registers memory (with the NIC). An interface, so that a
// recording stand-in can count and hold its calls in tests.
class Registrar {
 public:
  virtual ~Registrar() = default;
  // Registers `memory` (the range and what memory it is, classified by the
  // cache). The handle is the registration: it is released (deregistered)
  // with its last reference. On failure `why`, if given, may say why.
  virtual Result<std::shared_ptr<const void>> Register(const MemoryDescriptor& memory,
                                                       std::string* why) = 0;
};

// A Registrar over a Fabric: each handle is a rdma::MemoryRegion with
// `access` (access::k*), device memory registered the provider's way (ofi:
// FI_HMEM_CUDA) or refused (errc::device_memory_unsupported). The fabric
// must outlive the registrar's calls.
class FabricRegistrar final : public Registrar {
 public:
  FabricRegistrar(Fabric& fabric, uint32_t access) : fabric_(fabric), access_(access) {}
  Result<std::shared_ptr<const void>> Register(const MemoryDescriptor& memory,
                                               std::string* why) override;

 private:
  Fabric& fabric_;
  const uint32_t access_;
};

struct CachedRegistration {
  uint64_t id = 0;
  std::byte* base = nullptr;
  size_t size = 0;
  // What memory it is (host for entries added with Insert).
  common::MemoryKind kind = common::MemoryKind::kHost;
  int device = -1;         // device memory: the CUDA device ordinal
  uint64_t buffer_id = 0;  // device memory: the allocation's buffer id, part of the key
  // What the registrar returned (a MemoryRegion for a FabricRegistrar);
  // empty without a registrar, and for entries added with Insert.
  std::shared_ptr<const void> handle;
  // What the owner attached with Insert (the client: its shared region).
  std::shared_ptr<void> attachment;

  bool is_device() const { return kind == common::MemoryKind::kDevice; }
  bool Covers(const void* p, size_t n) const {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= base && n <= size && static_cast<size_t>(b - base) <= size - n;
  }
};

class RegistrationCache {
 public:
  // Without a registrar, registrations only record the range (and what
  // memory it is). `cuda` classifies memory; null: common::Cuda::Process(),
  // asked at each registration. It must outlive the cache.
  explicit RegistrationCache(std::shared_ptr<Registrar> registrar = nullptr,
                             const common::Cuda* cuda = nullptr)
      : registrar_(std::move(registrar)), cuda_(cuda) {}

  // Registers [p, p + n) (n > 0), or returns the registration covering it
  // (for device memory: of the same buffer). errc::bad_argument for a null
  // or empty range, or a device range that leaves its allocation; the
  // driver's error (common::errc::cuda_failed) when the memory cannot be
  // classified; the registrar's error. `why`, if given, says why.
  Result<std::shared_ptr<const CachedRegistration>> Register(void* p, size_t n,
                                                             std::string* why = nullptr);
  // Adds [p, p + n) as registered by its owner (no registrar call), with
  // `attachment` held until it is deregistered.
  std::shared_ptr<const CachedRegistration> Insert(void* p, size_t n,
                                                   std::shared_ptr<void> attachment);
  // Drops registration `id` from the cache; its handle is released once
  // the operations still holding the entry let go. False if there is none.
  bool Deregister(uint64_t id);
  // The registration covering [p, p + n) (for device memory: of the
  // buffer there now), or null.
  std::shared_ptr<const CachedRegistration> Find(const void* p, size_t n) const;

  size_t size() const;
  // Registrar calls made (first registrations; tests).
  uint64_t registrar_calls() const { return registrar_calls_.load(); }

 private:
  // A first registration running outside the lock; callers wanting a range
  // it covers wait for it.
  struct Pending {
    MemoryDescriptor memory;
    Mutex mu;
    CondVar done_cv;
    bool done GUARDED_BY(mu) = false;
  };

  const common::Cuda& cuda() const { return cuda_ ? *cuda_ : common::Cuda::Process(); }
  // The registration covering [p, p + n) whose device buffer, if any, is
  // the one there now (asked of the driver at most once).
  std::shared_ptr<const CachedRegistration> FindLocked(const void* p, size_t n) const
      REQUIRES_SHARED(mu_);
  // The registration covering `memory` of the same kind and buffer.
  std::shared_ptr<const CachedRegistration> FindLocked(const MemoryDescriptor& memory) const
      REQUIRES_SHARED(mu_);

  const std::shared_ptr<Registrar> registrar_;
  const common::Cuda* const cuda_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> registrar_calls_{0};

  mutable SharedMutex mu_;
  // Registrations by base address (ranges may overlap).
  std::multimap<const std::byte*, std::shared_ptr<const CachedRegistration>> by_base_
      GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Pending>> pending_ GUARDED_BY(mu_);
};

}  // namespace memkv::rdma
