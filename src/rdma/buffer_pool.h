#pragma once
// BufferPool: registered memory for bytes whose own memory is not
// registered, on the rdma rail: the client's bounce buffers (transport rdma
// with plain buffers: a put copies each value into a lease before the
// server READs it; a get has the server WRITE into the lease and copies out
// after the reply), and the server's staging of the values it transfers.
//
// The pool keeps slabs of `slab_size` bytes, registered once and reused by
// one request after another, so a steady stream of batches costs no
// registration per request. A lease packs a request's values into slabs,
// taking a fresh slab when the current one is full; a value larger than a
// slab gets a registration of its own, released with the lease. At most
// `max_idle_slabs` slabs stay registered between requests (pinned memory
// the process keeps); slabs beyond that are deregistered when their lease
// ends. Nothing waits: a lease that finds no idle slab registers a new one
// (callers bound what one request may take).
//
// Thread-safe: Lease() and a lease's end take the pool's mutex; a Lease
// itself belongs to one request (one thread at a time).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "common/thread_annotations.h"
#include "rdma/registration_cache.h"

namespace memkv::rdma {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  struct Options {
    size_t slab_size = size_t{16} << 20;
    size_t max_idle_slabs = 4;
  };
  struct Stats {
    uint64_t registrations = 0;  // registrar calls: slabs and oversized values
    size_t idle_slabs = 0;
  };

  // Registered memory: its registrar handle (an rdma::MemoryRegion on the
  // rail) and bytes.
  struct Slab {
    std::byte* data = nullptr;
    size_t size = 0;
    std::shared_ptr<const void> handle;
    ~Slab();
  };

  // A request's share of the pool: places for its values, all valid until
  // the lease is dropped.
  class Lease {
   public:
    struct Place {
      std::byte* data;
      const void* handle;  // the registration holding data
    };
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    // Room for n bytes (n == 0 is taken as 1), aligned to 64 bytes; the
    // registrar's error when a new slab cannot be registered.
    Result<Place> Take(size_t n);

   private:
    friend class BufferPool;
    explicit Lease(std::shared_ptr<BufferPool> pool) : pool_(std::move(pool)) {}

    const std::shared_ptr<BufferPool> pool_;
    std::vector<std::unique_ptr<Slab>> slabs_;  // pooled slabs, the last being filled
    std::vector<std::unique_ptr<Slab>> own_;    // oversized values' registrations
    size_t used_ = 0;                           // of slabs_.back()
  };

  static std::shared_ptr<BufferPool> Create(std::shared_ptr<Registrar> registrar,
                                            Options options);

  std::unique_ptr<Lease> NewLease();
  Stats stats() const;
  const Options& options() const { return options_; }

 private:
  BufferPool(std::shared_ptr<Registrar> registrar, Options options)
      : registrar_(std::move(registrar)), options_(options) {}

  Result<std::unique_ptr<Slab>> Allocate(size_t n);
  Result<std::unique_ptr<Slab>> TakeSlab();
  void Return(std::vector<std::unique_ptr<Slab>> slabs);

  const std::shared_ptr<Registrar> registrar_;
  const Options options_;
  mutable Mutex mu_;
  std::vector<std::unique_ptr<Slab>> idle_ GUARDED_BY(mu_);
  uint64_t registrations_ GUARDED_BY(mu_) = 0;
};

}  // namespace memkv::rdma
