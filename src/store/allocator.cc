#include "store/allocator.h"

#include <bit>
#include <algorithm>
#include <cstring>

#include "store/error.h"

namespace memkv::store {

PageAllocator::PageAllocator(uint64_t pages) : pages_(pages), words_((pages + 63) / 64, 0) {
  // Bits past the last page read as used, so no run ever reaches them.
  if (pages % 64) words_.back() = ~uint64_t{0} << (pages % 64);
}

bool PageAllocator::RunFree(uint64_t page, uint32_t n) const {
  for (uint64_t p = page; p < page + n;) {
    const uint64_t w = p / 64, bit = p % 64;
    const uint64_t span = std::min<uint64_t>(64 - bit, page + n - p);
    const uint64_t mask = (span == 64 ? ~uint64_t{0} : ((uint64_t{1} << span) - 1)) << bit;
    if (words_[w] & mask) return false;
    p += span;
  }
  return true;
}

void PageAllocator::Set(uint64_t page, uint32_t n, bool used) {
  for (uint64_t p = page; p < page + n;) {
    const uint64_t w = p / 64, bit = p % 64;
    const uint64_t span = std::min<uint64_t>(64 - bit, page + n - p);
    const uint64_t mask = (span == 64 ? ~uint64_t{0} : ((uint64_t{1} << span) - 1)) << bit;
    if (used) {
      words_[w] |= mask;
    } else {
      words_[w] &= ~mask;
    }
    p += span;
  }
}

std::optional<uint64_t> PageAllocator::FindRun(uint64_t from, uint64_t to, uint32_t n) const {
  uint64_t p = from;
  while (p + n <= to) {
    const uint64_t here = words_[p / 64] >> (p % 64);
    if (here & 1) {
      p += std::countr_one(here);  // skip the used pages from p
      continue;
    }
    // Measure the free run at p, a word at a time, up to n pages.
    uint64_t end = p;
    while (end < p + n) {
      const uint64_t bits = words_[end / 64] >> (end % 64);
      const uint64_t left_in_word = 64 - end % 64;
      const uint64_t zeros = bits == 0 ? left_in_word : std::countr_zero(bits);
      end += zeros;
      if (zeros < left_in_word) break;  // reached a used page
    }
    if (end - p >= n) return p;
    p = end;
  }
  return std::nullopt;
}

std::optional<uint64_t> PageAllocator::Allocate(uint32_t n) {
  if (n == 0 || n > pages_) return std::nullopt;
  MutexLock lock(mu_);
  if (pages_ - used_ < n) return std::nullopt;
  auto found = FindRun(cursor_, pages_, n);
  if (!found) found = FindRun(0, std::min(pages_, cursor_ + n), n);
  if (!found) return std::nullopt;
  Set(*found, n, true);
  used_ += n;
  cursor_ = *found + n;
  if (cursor_ >= pages_) cursor_ = 0;
  return found;
}

void PageAllocator::Free(uint64_t page, uint32_t n) {
  MutexLock lock(mu_);
  FreeLocked(page, n);
}

void PageAllocator::FreeLocked(uint64_t page, uint32_t n) {
  if (page + n > pages_) {
    ++double_frees_;
    return;
  }
  for (uint64_t p = page; p < page + n; ++p) {
    if (!(words_[p / 64] >> (p % 64) & 1)) {
      ++double_frees_;
      return;
    }
  }
  Set(page, n, false);
  used_ -= n;
}

void PageAllocator::FreeIn(uint64_t generation, uint64_t page, uint32_t n) {
  MutexLock lock(mu_);
  if (generation == generation_) FreeLocked(page, n);
}

void PageAllocator::Reset(uint64_t generation) {
  MutexLock lock(mu_);
  std::fill(words_.begin(), words_.end(), 0);
  if (pages_ % 64) words_.back() = ~uint64_t{0} << (pages_ % 64);
  used_ = 0;
  cursor_ = 0;
  generation_ = generation;
}

uint64_t PageAllocator::generation() const {
  MutexLock lock(mu_);
  return generation_;
}

bool PageAllocator::MarkUsed(uint64_t page, uint32_t n) {
  MutexLock lock(mu_);
  if (n == 0 || page + n > pages_ || page + n < page) return false;
  if (!RunFree(page, n)) return false;
  Set(page, n, true);
  used_ += n;
  return true;
}

uint64_t PageAllocator::used_pages() const {
  MutexLock lock(mu_);
  return used_;
}

uint64_t PageAllocator::double_frees() const {
  MutexLock lock(mu_);
  return double_frees_;
}

bool PageAllocator::IsUsed(uint64_t page) const {
  MutexLock lock(mu_);
  return page >= pages_ || (words_[page / 64] >> (page % 64) & 1);
}

Buffer PageAllocator::Serialize() const {
  MutexLock lock(mu_);
  Buffer out(words_.size() * 8);
  std::memcpy(out.data(), words_.data(), out.size());
  return out;
}

Status PageAllocator::Load(Bytes bits) {
  MutexLock lock(mu_);
  if (bits.size() != words_.size() * 8) return errc::bad_record;
  std::memcpy(words_.data(), bits.data(), bits.size());
  if (pages_ % 64) words_.back() |= ~uint64_t{0} << (pages_ % 64);
  used_ = 0;
  for (uint64_t w : words_) used_ += std::popcount(w);
  if (pages_ % 64) used_ -= 64 - pages_ % 64;
  cursor_ = 0;
  return {};
}

}  // namespace memkv::store
