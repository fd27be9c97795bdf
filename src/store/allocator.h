#pragma once
// Page allocation on one drive's data region: a bitmap with one bit per
// 4 KiB page (1 = used). Finds contiguous runs next-fit from a cursor so
// that consecutive puts land next to each other.
//
// Thread-safe: every member takes mu_. Owned by the drive it describes.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/bytes.h"
#include "common/mutex.h"
#include "common/result.h"

namespace memkv::store {

class PageAllocator {
 public:
  explicit PageAllocator(uint64_t pages);

  // Marks a run of `n` free pages used and returns its first page; nullopt
  // when no free run of that length exists.
  std::optional<uint64_t> Allocate(uint32_t n);
  // Returns a run to the free pool. Freeing a page that is free is a bug in
  // the caller; it is counted (double_frees()) and ignored.
  void Free(uint64_t page, uint32_t n);
  // Frees a run allocated in `generation` only if the allocator is still in
  // it: pages of a drive reset since are not the caller's to free.
  void FreeIn(uint64_t generation, uint64_t page, uint32_t n);
  // Everything free again, in a new generation (a drive reset).
  void Reset(uint64_t generation);
  uint64_t generation() const;
  // Recovery: marks a run used. False if any page of it was already used
  // (two entries claim the same page) or the run is outside the region.
  bool MarkUsed(uint64_t page, uint32_t n);

  uint64_t pages() const { return pages_; }
  uint64_t used_pages() const;
  uint64_t free_pages() const { return pages_ - used_pages(); }
  uint64_t double_frees() const;
  bool IsUsed(uint64_t page) const;

  // The bitmap as bytes (little-endian words), for a checkpoint.
  Buffer Serialize() const;
  // Loads a bitmap written by Serialize for the same number of pages.
  Status Load(Bytes bits);

 private:
  bool RunFree(uint64_t page, uint32_t n) const REQUIRES(mu_);
  void FreeLocked(uint64_t page, uint32_t n) REQUIRES(mu_);
  void Set(uint64_t page, uint32_t n, bool used) REQUIRES(mu_);
  std::optional<uint64_t> FindRun(uint64_t from, uint64_t to, uint32_t n) const REQUIRES(mu_);

  const uint64_t pages_;  // constant after construction
  mutable Mutex mu_;
  std::vector<uint64_t> words_ GUARDED_BY(mu_);
  uint64_t used_ GUARDED_BY(mu_) = 0;
  uint64_t cursor_ GUARDED_BY(mu_) = 0;
  uint64_t double_frees_ GUARDED_BY(mu_) = 0;
  uint64_t generation_ GUARDED_BY(mu_) = 0;
};

}  // namespace memkv::store
