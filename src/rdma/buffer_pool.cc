#include "rdma/buffer_pool.h"

#include <cstdlib>

#include <boost/system/errc.hpp>

namespace memkv::rdma {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kAlign = 64;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

BufferPool::Slab::~Slab() {
  handle.reset();  // deregistered before its memory goes
  std::free(data);
}

std::shared_ptr<BufferPool> BufferPool::Create(std::shared_ptr<Registrar> registrar,
                                               Options options) {
  if (options.slab_size == 0) options.slab_size = kPage;
  options.slab_size = RoundUp(options.slab_size, kPage);
  return std::shared_ptr<BufferPool>(new BufferPool(std::move(registrar), options));
}

std::unique_ptr<BufferPool::Lease> BufferPool::NewLease() {
  return std::unique_ptr<Lease>(new Lease(shared_from_this()));
}

BufferPool::Stats BufferPool::stats() const {
  MutexLock lock(mu_);
  return {registrations_, idle_.size()};
}

Result<std::unique_ptr<BufferPool::Slab>> BufferPool::Allocate(size_t n) {
  auto slab = std::make_unique<Slab>();
  slab->size = RoundUp(n, kPage);
  slab->data = static_cast<std::byte*>(std::aligned_alloc(kPage, slab->size));
  if (slab->data == nullptr)
    return boost::system::errc::make_error_code(boost::system::errc::not_enough_memory);
  {
    MutexLock lock(mu_);
    ++registrations_;
  }
  if (registrar_) {
    auto h = registrar_->Register(MemoryDescriptor::Host(slab->data, slab->size), nullptr);
    if (!h) return h.error();
    slab->handle = std::move(*h);
  }
  return slab;
}

Result<std::unique_ptr<BufferPool::Slab>> BufferPool::TakeSlab() {
  {
    MutexLock lock(mu_);
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
  }
  return Allocate(options_.slab_size);  // registered outside the lock
}

void BufferPool::Return(std::vector<std::unique_ptr<Slab>> slabs) {
  {
    MutexLock lock(mu_);
    while (!slabs.empty() && idle_.size() < options_.max_idle_slabs) {
      idle_.push_back(std::move(slabs.back()));
      slabs.pop_back();
    }
  }
  slabs.clear();  // beyond the cap: deregistered and freed outside the lock
}

BufferPool::Lease::~Lease() { pool_->Return(std::move(slabs_)); }

Result<BufferPool::Lease::Place> BufferPool::Lease::Take(size_t n) {
  n = RoundUp(n == 0 ? 1 : n, kAlign);
  if (n > pool_->options_.slab_size) {
    auto s = pool_->Allocate(n);
    if (!s) return s.error();
    own_.push_back(std::move(*s));
    return Place{own_.back()->data, own_.back()->handle.get()};
  }
  if (slabs_.empty() || slabs_.back()->size - used_ < n) {
    auto s = pool_->TakeSlab();
    if (!s) return s.error();
    slabs_.push_back(std::move(*s));
    used_ = 0;
  }
  Slab& s = *slabs_.back();
  Place p{s.data + used_, s.handle.get()};
  used_ += n;
  return p;
}

}  // namespace memkv::rdma
